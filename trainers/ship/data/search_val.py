"""The images a method searches its settings on (Tip-Adapter's α and β), for both routes: the whole val split of the
base classes, not CoOp's few-shot val of ≤ 4 images per class; for a dataset whose val split is its test set (CoOp's
ImageNet reader sets ``val = test``), validation images drawn from the training images the few-shot set left out
(``splits.val_from_train``), never test images.

It works on any item with a path and a label: the core's ``Item`` (``path``) and Dassl's ``Datum`` (``impath``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Generic, Sequence, TypeVar

from trainers.ship.common.errors import ShipError

logger = logging.getLogger("ship")
T = TypeVar("T")


@dataclass
class SearchVal(Generic[T]):
    """The search images and whether they were drawn for this run's shots and seed (its feature-cache key)."""

    items: list[T]
    drawn: bool


def search_val(dataset: str, trainer: str, n_base: int, whole: Sequence[T], test: Sequence[T],
               drawn: Callable[[], Sequence[T]], path: Callable[[T], str], label: Callable[[T], int]) -> SearchVal[T]:
    """The base classes' items of ``whole`` (the dataset's whole val split), or, when ``whole`` shares an image with
    ``test``, of ``drawn()`` (validation images drawn from the training images; over every class), with one log line
    saying which; no validation image of a base class is one :class:`ShipError` line."""
    test_paths = {path(i) for i in test}
    if any(path(i) in test_paths for i in whole):
        items = [i for i in drawn() if label(i) < n_base]
        logger.info(f"{dataset}'s val split is its test set; {trainer} searches on {len(items)} validation images "
                    f"drawn from its training images (min(shots, 4) per base class, none of the few-shot ones)")
        return SearchVal(items, True)
    items = [i for i in whole if label(i) < n_base]
    if not items:
        raise ShipError(f"{dataset} has no validation images of its base classes, but {trainer} searches its settings "
                        f"on them; give the dataset a val split")
    logger.info(f"{trainer} searches on the whole val split of the {n_base} base classes ({len(items)} images)")
    return SearchVal(items, False)
