"""The run layer: the three protocols (base-to-new, generalized zero-shot, cross-dataset) end to end. ``setup`` (what a
run was trained with, and the check of an evaluation against it), ``protocol_data`` (dataset, class split, cached
features of a protocol), ``heads`` (a trainer's method fitted as a stage, or loaded from a finished run) and
``pipeline`` (one run: train, evaluate, write log.txt and results.json)."""
