"""The common layer: what every layer uses, and nothing of SHIP's own. ``errors`` (ShipError, the one ``error:`` line),
``runtime`` (devices, precision, seeds, atomic files), ``progress`` (tqdm bars), ``run_log`` (the header and
timestamps of log.txt), ``scalars`` (per-epoch records, TensorBoard), ``options`` (how the running entry point spells
a setting), ``known_datasets`` (dataset names and prompt templates), ``ranges`` (the settings vocabulary: ``Num``,
``Int``, ``Choice``, ...). Imports nothing of the project."""
