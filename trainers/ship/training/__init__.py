"""The training layer: optimisers and learning-rate schedules (``schedules``), the training loops of the generator and
the prompt heads (``loops``), fingerprinted stages that train once and load after (``stages``: the generator stage,
checkpoints), and Tip-Adapter's cache model (``tip_cache``)."""
