"""Labelled image lists, CoOp's few-shot sampling and its base/new class split."""
from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Callable, Literal, Sequence, TypeVar

from trainers.ship.common.errors import ShipError
from trainers.ship.common.ranges import SHOTS, require


@dataclass(frozen=True)
class Item:
    """One labelled image (Dassl calls it ``Datum``)."""

    path: str
    label: int
    classname: str


@dataclass
class DatasetSplits:
    """train / val / test item lists and the class names in label order."""

    name: str
    classnames: list[str]
    train: list[Item]
    val: list[Item]
    test: list[Item]
    templates: list[str] = field(default_factory=lambda: ["a photo of a {}."])
    num_base: int = 0  # the dataset's own number of base (seen) classes; 0: the first half

    @property
    def num_classes(self) -> int:
        return len(self.classnames)


def sample_few_shot(items: Sequence[Item], shots: int, rng: random.Random) -> list[Item]:
    """``shots`` items per label, as Dassl's ``generate_fewshot_dataset`` picks them.

    Labels are visited in order of first appearance; a label with fewer items
    keeps all of them. Given a ``random.Random`` seeded like Dassl's
    ``set_random_seed``, the same images are chosen.
    """
    by_label: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        by_label[item.label].append(item)
    picked: list[Item] = []
    for group in by_label.values():
        picked.extend(rng.sample(group, shots) if len(group) >= shots else group)
    return picked


T = TypeVar("T")


def val_from_train(train: Sequence[T], few_shot: Sequence[T], shots: int, seed: int,
                   path: Callable[[T], str] = attrgetter("path")) -> list[T]:
    """The few-shot validation images of a dataset whose val split is its test set (ImageNet): ``min(shots, 4)``
    per class drawn, with ``random.Random(seed)``, from the training images ``train`` outside the few-shot
    training set ``few_shot``, so nothing is tuned on test images. ``path``: an item's image path (Dassl's
    ``Datum``: ``attrgetter("impath")``)."""
    chosen = {path(i) for i in few_shot}
    return sample_few_shot([i for i in train if path(i) not in chosen], min(shots, 4), random.Random(seed))


def few_shot_splits(dataset: DatasetSplits, shots: int, seed: int) -> DatasetSplits:
    """CoOp's few-shot protocol: ``shots`` training and ``min(shots, 4)`` validation images per class."""
    require("DATASET.NUM_SHOTS", shots, SHOTS)  # as the settings check words it: a reader may be called directly
    rng = random.Random(seed)
    train = sample_few_shot(dataset.train, shots, rng)
    val = sample_few_shot(dataset.val, min(shots, 4), rng)
    return replace(dataset, train=train, val=val)


def base_new_split(num_classes: int, num_base: int = 0) -> tuple[list[int], list[int]]:
    """Labels of base and new classes: the first ``num_base`` (default ⌈n/2⌉, CoCoOp's rule) and the rest."""
    num_base = num_base or math.ceil(num_classes / 2)
    if not 0 < num_base < num_classes:
        raise ShipError(f"num_base must be between 1 and {num_classes - 1} to leave label-only classes; got {num_base}")
    return list(range(num_base)), list(range(num_base, num_classes))


def subsample_classes(dataset: DatasetSplits, which: Literal["all", "base", "new"], num_base: int = 0) -> DatasetSplits:
    """Keep the base or new classes and relabel them from 0 (CoCoOp's ``subsample_classes``)."""
    if which == "all":
        return dataset
    if which not in ("base", "new"):
        raise ShipError(f"unknown class subset {which!r}; expected 'all', 'base' or 'new'")
    base, new = base_new_split(dataset.num_classes, num_base)
    keep = base if which == "base" else new
    relabel = {old: new_label for new_label, old in enumerate(keep)}

    def select(items: list[Item]) -> list[Item]:
        return [replace(i, label=relabel[i.label]) for i in items if i.label in relabel]

    return replace(
        dataset,
        classnames=[dataset.classnames[c] for c in keep],
        train=select(dataset.train),
        val=select(dataset.val),
        test=select(dataset.test),
    )
