"""Dataset readers that produce :class:`datasets.splits.DatasetSplits` (no dassl import)."""
