"""Few-shot subsets cached in ``<dataset>/split_fewshot/`` so every run of a seed trains on the same images.

A CoOp ``shot_{K}-seed_{S}.pkl`` written by a CoOp/Dassl run is read when present (its pickled
Dassl ``Datum`` objects are mapped to :class:`Item` without importing dassl, and their absolute
paths are re-rooted at the current dataset folder), so a run here uses exactly the images that
CoOp used. Otherwise the subset is sampled exactly as Dassl samples it and saved as
``shot_{K}-seed_{S}.json`` with paths relative to the dataset folder (a pickle of ours would
break CoOp, which has its own ``datasets`` package).
"""
from __future__ import annotations

import json
import logging
import pickle
import random
from pathlib import Path

from trainers.ship.common.errors import ShipError
from trainers.ship.common.ranges import SHOTS, require
from trainers.ship.common.runtime import atomic_write_json

from . import splits
from .splits import Item, sample_few_shot

logger = logging.getLogger("ship")


class _Datum:
    """Stand-in for ``dassl.data.datasets.Datum`` when unpickling CoOp's few-shot files."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class _CoOpUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if name == "Datum" and module.startswith("dassl."):
            return _Datum
        if module in ("collections", "builtins") and name in ("OrderedDict", "dict", "list"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CoOp few-shot file")


def _reroot(path: str, dataset_dir: Path) -> str:
    """An absolute path written on another machine, moved under ``dataset_dir``."""
    parts = Path(path).parts
    if dataset_dir.name in parts:
        tail = parts[len(parts) - 1 - parts[::-1].index(dataset_dir.name) + 1 :]
        return str(dataset_dir.joinpath(*tail))
    return path


def read_coop_pickle(path: Path, dataset_dir: Path) -> dict[str, list[Item]]:
    """A pickle of Dassl ``Datum`` lists written by CoOp (few-shot files, ImageNet's ``preprocessed.pkl``), without dassl."""
    with open(path, "rb") as f:
        data = _CoOpUnpickler(f).load()
    return {
        split: [Item(_reroot(d._impath, dataset_dir), int(d._label), str(d._classname)) for d in items]
        for split, items in data.items()
    }


def few_shot_subsets(
    dataset_dir: Path, train: list[Item], val: list[Item], shots: int, seed: int, val_from_train: bool = False
) -> tuple[list[Item], list[Item]]:
    """``shots`` training and ``min(shots, 4)`` validation images per class, cached on disk.

    ``val_from_train``: the dataset's val set is its test set (ImageNet), so the validation images are
    drawn from the training images the few-shot set left out; nothing is ever tuned on test images.
    """
    require("DATASET.NUM_SHOTS", shots, SHOTS)  # as the settings check words it: a reader may be called directly
    train_few, val_few = _cached_or_sampled(dataset_dir, train, [] if val_from_train else val, shots, seed)
    if val_from_train:
        val_few = splits.val_from_train(train, train_few, shots, seed)
    return train_few, val_few


def _cached_or_sampled(dataset_dir: Path, train: list[Item], val: list[Item], shots: int, seed: int):
    cache_dir = dataset_dir / "split_fewshot"
    coop_file = cache_dir / f"shot_{shots}-seed_{seed}.pkl"
    our_file = cache_dir / f"shot_{shots}-seed_{seed}.json"
    if coop_file.is_file():  # CoOp's images or none: another sample would silently train on other images
        try:
            data = read_coop_pickle(coop_file, dataset_dir)
            train_few, val_few = data["train"], data.get("val", val)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ShipError(f"cannot read CoOp's few-shot file {coop_file} ({type(exc).__name__}: {exc}); expected the "
                            "pickle of Dassl Datum lists CoOp writes. Move it away to sample the images again") from exc
        logger.info(f"Few-shot images from CoOp's {coop_file}")
        return train_few, val_few
    if our_file.is_file():
        try:
            data = json.loads(our_file.read_text())
            parts = {k: [Item(str(dataset_dir / p), int(label), name) for p, label, name in v] for k, v in data.items()}
            logger.info(f"Few-shot images from {our_file}")
            return parts["train"], parts["val"]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            logger.info(f"corrupt few-shot file {our_file} ({type(exc).__name__}: {exc}); sampling again")

    rng = random.Random(seed)  # the state Dassl's set_random_seed(seed) leaves
    train = sample_few_shot(train, shots, rng)
    val = sample_few_shot(val, min(shots, 4), rng)
    _save(our_file, dataset_dir, {"train": train, "val": val})
    return train, val


def _save(path: Path, dataset_dir: Path, parts: dict[str, list[Item]]) -> None:
    """Write atomically; a read-only dataset folder only costs the cache."""
    try:
        atomic_write_json({k: [[str(Path(i.path).relative_to(dataset_dir)), i.label, i.classname] for i in v]
                           for k, v in parts.items()}, path)
        logger.info(f"Saved few-shot images to {path}")
    except (OSError, ValueError, ShipError) as exc:  # read-only folder (ShipError of atomic writes), or an image outside it
        logger.info(f"few-shot images not cached ({path}: {exc})")
