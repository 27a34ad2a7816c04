"""Dassl ``DATASET_REGISTRY`` entries for the catalog's datasets (imported only where dassl is installed).

Each wraps :func:`datasets.catalog.load_dataset` and CoCoOp's ``SUBSAMPLE_CLASSES``, and exposes the dataset's
zero-shot ``templates`` and its own number of base classes (``num_base``: CUB's 150 seen classes). A name that
is registered already (CoOp's own readers, imported first by CoOp's ``train.py``) is left to that reader, with
one line saying so when a SHIP trainer runs; so this module imports safely beside CoOp's ``datasets/``.
"""
from __future__ import annotations

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum

from trainers.ship.dassl.config import DASSL_NOTES
from trainers.ship.data.readers import SPECS, Item, load_dataset, subsample_classes


def _datums(items: list[Item]) -> list[Datum]:
    return [Datum(impath=i.path, label=i.label, classname=i.classname) for i in items]


class CoOpDataset(DatasetBase):
    """A catalog dataset under ``cfg.DATASET.ROOT``, few-shot and subsampled as CoOp/CoCoOp do."""

    spec_name = ""

    def __init__(self, cfg):
        full = load_dataset(self.spec_name, cfg.DATASET.ROOT, cfg.DATASET.NUM_SHOTS, cfg.SEED)
        part = subsample_classes(full, cfg.DATASET.SUBSAMPLE_CLASSES, full.num_base)
        self.templates = full.templates
        self.num_base = full.num_base
        train = _datums(part.train) or _datums(part.test)  # test-only variants: Dassl insists on a train_x
        super().__init__(train_x=train, val=_datums(part.val) or None, test=_datums(part.test))
        # Dassl infers the classes from train_x; few-shot sampling keeps every class, but be explicit
        self._classnames = part.classnames
        self._lab2cname = dict(enumerate(part.classnames))
        self._num_classes = len(part.classnames)


def register_missing() -> list[str]:
    """Register a reader for every catalog dataset whose name is free; returns the names left to other readers."""
    taken = set(DATASET_REGISTRY.registered_names())
    for name in SPECS:
        if name not in taken:
            DATASET_REGISTRY.register(type(name, (CoOpDataset,), {"spec_name": name, "__doc__": f"{name} ({CoOpDataset.__doc__})"}))
    kept = sorted(taken & set(SPECS))
    if kept:  # printed by the SHIP trainers when they run, never by CoOp's own
        DASSL_NOTES.append(f"SHIP datasets: {', '.join(kept)} keep the reader registered already; SHIP registers "
                           f"{', '.join(n for n in SPECS if n not in taken) or 'nothing'}")
    return kept


register_missing()
