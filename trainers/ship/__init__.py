"""SHIP (SyntHesIzed Prompts, ICCV 2023) on cached CLIP features, as a plug-in to CoOp / Dassl.

The layers, bottom to top; a module imports only from its own layer and the ones below (``.importlinter``,
checked by ``tests/test_layers.py``), and nothing below ``dassl`` imports Dassl:

- ``common``: errors, logs, progress, runtime, per-epoch scalars, the settings vocabulary;
- (the top-level ``datasets`` package: the dataset readers, where CoOp users expect them);
- ``model``: frozen CLIP and its text encoder, the SHIP generator (the VAE), prompt learners, synthesis;
- ``data``: classes, cached features, the features of a class split, the readers;
- ``training``: optimisers and schedules, training loops, fingerprinted stages, Tip-Adapter's cache;
- ``methods``: the fine-tuners, one file each, and their registry;
- ``config``: defaults, config files and overrides, the one settings check;
- ``reports``: metrics, the summary tables, figures, analyses;
- ``run``: the three protocols end to end;
- ``dassl``: every Dassl / CoOp adapter;
- ``tools``: the CoOp checkout installer.

Entry points: ``python -m trainers.ship`` (``__main__``), ``python -m trainers.ship.reports.summary``,
``python -m trainers.ship.reports.interpret``, ``python -m trainers.ship.tools.install_into``, and
``trainers/ship_methods.py`` for a CoOp ``train.py``. ``summary``, ``interpret`` and ``install_into`` here are
their old paths, kept so that old commands still run.
"""
