"""Which classes a Dassl run trains on, scores and synthesises, from the dataset object Dassl built (no dassl import).

Dassl derives a dataset's class names from its training images, so a ``SUBSAMPLE_CLASSES base`` dataset hides
the new classes, whatever reader built it (CoOp's or this project's). The label-only classes are therefore
found by building the same dataset over all its classes (``build``) and taking the classes after the base ones;
for cross-dataset runs they are the classes of ``DATASET.LABEL_ONLY_FROM``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from yacs.config import CfgNode

from trainers.ship.common.errors import ShipError
from trainers.ship.data.classes import Classes, class_ids, merge_label_only, read_names_file

# (dataset name as the user gave it) -> (its registry name, its class names over all classes)
BuildAll = Callable[[str], tuple[str, list[str]]]


@dataclass
class ClassSplit:
    """The classes of a Dassl run."""

    base: Classes  # the classes with training images
    evaluated: Classes  # the dataset's classes as Dassl built them: what a test scores (GZSL: base then new)
    label_only: list[str]  # the classes SHIP synthesises
    class_index: dict[str, int]  # identity -> column over base + label-only classes
    dataset_classes: list[str]  # every class of the dataset in label order (base then new), whatever Dassl subsampled
    gzsl: bool = False  # evaluated[:len(base)] are the seen classes of one joint label space


def dassl_class_split(cfg: CfgNode, classnames: Sequence[str], build_all: BuildAll, num_base: int = 0) -> ClassSplit:
    """The class split of a run of ``cfg`` whose Dassl dataset has ``classnames``.

    ``build_all`` builds a dataset over all its classes; ``num_base`` is the dataset's own number of base
    (seen) classes where it has one (CUB's proposed split), else CoCoOp's rule: the first half.
    """
    name, subsample = cfg.DATASET.NAME, cfg.DATASET.SUBSAMPLE_CLASSES
    names = list(classnames)
    if subsample == "gzsl":  # Dassl built every class (FeatureTrainerX.build_data_loader)
        n_base = num_base or math.ceil(len(names) / 2)
        every = Classes(names, class_ids(name, range(len(names))))
        return ClassSplit(Classes(names[:n_base], every.ids[:n_base]), every, names[n_base:], _columns(every.ids), names, True)
    if subsample in ("base", "new"):
        _, full = build_all(name)
        n_base = num_base or math.ceil(len(full) / 2)
        part = full[:n_base] if subsample == "base" else full[n_base:]
        if part != names:
            raise ShipError(f"the {subsample} classes of {name} as Dassl built them ({len(names)}: {names[:3]} ...) are not "
                            f"the {'first' if subsample == 'base' else 'last'} {len(part)} of its {len(full)} classes; "
                            f"the label-only classes cannot be told apart")
        every = class_ids(name, range(len(full)))
        base = Classes(full[:n_base], every[:n_base])
        evaluated = base if subsample == "base" else Classes(names, every[n_base:])
        return ClassSplit(base, evaluated, full[n_base:], _columns(every), list(full))
    # all (the one settings check allows nothing else): every class is a base class
    every = Classes(names, class_ids(name, range(len(names))))
    sources = []
    for source in cfg.DATASET.LABEL_ONLY_FROM:
        if source.endswith(".txt"):
            sources.append((source, source, read_names_file(source)))
        else:
            sources.append((source, *build_all(source)))
    label_only, index = merge_label_only(names, sources)
    return ClassSplit(every, every, label_only, {**_columns(every.ids), **index}, names)


def _columns(ids: list[str]) -> dict[str, int]:
    return {identity: column for column, identity in enumerate(ids)}
