"""Dassl ``DATASET_REGISTRY`` entries for every catalog dataset (imported only where dassl is installed).

Each wraps :func:`datasets.catalog.load_dataset` and CoCoOp's ``SUBSAMPLE_CLASSES``. Because Dassl
derives ``classnames`` from ``train_x``, a ``base`` run would hide the new classes; the
wrappers keep them as ``label_only_classnames`` (what SHIP synthesises features for) and the
dataset's zero-shot ``templates``.
"""
from __future__ import annotations

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum

from .catalog import SPECS, load_dataset
from .splits import Item, base_new_split, subsample_classes


def _datums(items: list[Item]) -> list[Datum]:
    return [Datum(impath=i.path, label=i.label, classname=i.classname) for i in items]


class CoOpDataset(DatasetBase):
    """A catalog dataset under ``cfg.DATASET.ROOT``, few-shot and subsampled as CoOp/CoCoOp do."""

    spec_name = ""

    def __init__(self, cfg):
        full = load_dataset(self.spec_name, cfg.DATASET.ROOT, cfg.DATASET.NUM_SHOTS, cfg.SEED)
        subset = cfg.DATASET.SUBSAMPLE_CLASSES
        part = subsample_classes(full, subset, full.num_base)
        _, new = base_new_split(full.num_classes, full.num_base) if full.num_classes > 1 else ([], [])
        self.label_only_classnames = [full.classnames[c] for c in new] if subset == "base" else []
        self.templates = full.templates
        train = _datums(part.train) or _datums(part.test)  # test-only variants: Dassl insists on a train_x
        super().__init__(train_x=train, val=_datums(part.val) or None, test=_datums(part.test))
        # Dassl infers the classes from train_x; few-shot sampling keeps every class, but be explicit
        self._classnames = part.classnames
        self._lab2cname = dict(enumerate(part.classnames))
        self._num_classes = len(part.classnames)


for _name in SPECS:
    DATASET_REGISTRY.register(type(_name, (CoOpDataset,), {"spec_name": _name, "__doc__": f"{_name} ({CoOpDataset.__doc__})"}))
