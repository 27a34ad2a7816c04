"""This project's dataset readers, wherever they are installed: the package ``datasets`` here, ``ship_datasets``
inside a CoOp checkout (``trainers.ship.tools.install_into``), where ``datasets`` is CoOp's own package."""
from __future__ import annotations

import importlib

try:  # inside a CoOp checkout: the installer's copy
    from ship_datasets import catalog, image_folder, splits
except ModuleNotFoundError as exc:
    if exc.name != "ship_datasets":
        raise
    from datasets import catalog, image_folder, splits

PACKAGE = catalog.__name__.rsplit(".", 1)[0]

SPECS = catalog.SPECS
load_dataset = catalog.load_dataset
read_image_folder = image_folder.read_image_folder
DatasetSplits = splits.DatasetSplits
Item = splits.Item
subsample_classes = splits.subsample_classes
base_new_split = splits.base_new_split
few_shot_splits = splits.few_shot_splits
val_from_train = splits.val_from_train


def download(*args, **kwargs):
    """:func:`datasets.download.download` of the package above."""
    return importlib.import_module(f"{PACKAGE}.download").download(*args, **kwargs)
