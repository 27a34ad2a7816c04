"""Classes: display names, identities, and the label-only classes of a cross-dataset run.

A class's identity is its dataset and its label in the whole dataset (before any base/new subsampling).
Identities, never names, decide which class is which: two classes with one display name ("crane" the bird,
"crane" the machine) stay two classes. Names are compared only across datasets, where a target class whose
name is a known class is that class (and the log names it).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar

from trainers.ship.common.errors import ShipError

logger = logging.getLogger("ship")
T = TypeVar("T")


@dataclass(frozen=True)
class Classes:
    """Classes to score: display names (what text-based heads read) and identities (what cache columns follow)."""

    names: list[str]
    ids: list[str]


def class_ids(dataset: str, labels: Iterable[int]) -> list[str]:
    """Identities of the classes ``labels`` of ``dataset``."""
    return [f"{dataset}#{label}" for label in labels]


def normalised_name(name: str) -> str:
    """How class names are matched across datasets: "Golden_Retriever" and "golden retriever" are one class."""
    return " ".join(name.replace("_", " ").split()).lower()


def log_duplicate_names(dataset: str, classnames: Sequence[str]) -> None:
    """One line naming the classes whose display names coincide (ignoring case and ``_``): they stay distinct
    classes, but a head that scores a class by its name cannot tell them apart."""
    groups: dict[str, list[str]] = defaultdict(list)
    for name in classnames:
        groups[normalised_name(name)].append(name)
    duplicates = [" / ".join(g) for g in groups.values() if len(g) > 1]
    if duplicates:
        logger.info(f"{dataset}: {len(duplicates)} class names occur more than once ({'; '.join(duplicates[:10])}"
                    f"{' ...' if len(duplicates) > 10 else ''}); they stay distinct classes (Tip-Adapter keeps a cache "
                    f"column for each), but text-based heads give them identical scores")


def read_names_file(source: str) -> list[str]:
    """A ``.txt`` file of class names, one per line (a ``DATASET.LABEL_ONLY_FROM`` entry): UTF-8, at least one name,
    no name twice (ignoring case and ``_``, as names are matched)."""
    path = Path(source).expanduser()
    if not path.is_file():
        raise ShipError(f"class-name file not found: {path} (DATASET.LABEL_ONLY_FROM: dataset names or .txt files)")
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ShipError(f"cannot read class-name file {path}: {exc}") from None
    if not names:
        raise ShipError(f"class-name file {path} lists no class names (DATASET.LABEL_ONLY_FROM: one name per line)")
    seen: dict[str, str] = {}
    for name in names:
        if normalised_name(name) in seen:
            raise ShipError(f"class-name file {path} lists {name!r} twice (as {seen[normalised_name(name)]!r} before); "
                            f"each label-only class once, please")
        seen[normalised_name(name)] = name
    return names


def read_source_dataset(name: str, root: str, folder: str | None, read: Callable[[], T]) -> T:
    """``read()`` a ``DATASET.LABEL_ONLY_FROM`` dataset with a reader that may write into its folder before it finds
    the dataset incomplete (Dassl's make ``split_fewshot/`` first): one :class:`ShipError` if ``root/folder`` is
    missing, without calling the reader; one if the reader finds a file missing, and the folders it made are removed."""
    where = Path(root).expanduser() / folder if folder else None
    if where is not None and not where.is_dir():
        raise ShipError(f"{name} (DATASET.LABEL_ONLY_FROM) not found: {where} is not a folder; put the dataset under "
                        f"DATASET.ROOT or name a .txt file of class names")
    before = set(where.iterdir()) if where is not None else set()
    try:
        return read()
    except (FileNotFoundError, NotADirectoryError) as exc:
        for made in (set(where.iterdir()) - before if where is not None else ()):
            if made.is_dir() and not any(made.iterdir()):
                made.rmdir()
        raise ShipError(f"{name} (DATASET.LABEL_ONLY_FROM) is incomplete under {where or root}: "
                        f"{exc.strerror or exc}: {exc.filename or ''}") from None


def merge_label_only(known: Sequence[str], sources: Iterable[tuple[str, str, Sequence[str]]]
                     ) -> tuple[list[str], dict[str, int]]:
    """The label-only classes of a cross-dataset run and where every source class lands in the joint label
    space (the ``known`` classes of the trained dataset first, then the returned names).

    ``sources``: (what the user named, dataset name for identities, class names). Classes of one source stay
    distinct even where their names repeat. A class whose name (ignoring case and ``_``) is a known class or
    one of an earlier source is that class: it shares its column and text features, and the log names it.
    """
    names: list[str] = []
    index: dict[str, int] = {}
    column_of: dict[str, int] = {}
    for column, name in enumerate(known):
        column_of.setdefault(normalised_name(name), column)
    for given, dataset, classnames in sources:
        shared, fresh = [], {}
        for identity, name in zip(class_ids(dataset, range(len(classnames))), classnames):
            key = normalised_name(name)
            if key in column_of:
                index[identity] = column_of[key]
                shared.append(name)
            else:
                index[identity] = len(known) + len(names)
                fresh.setdefault(key, index[identity])
                names.append(name)
        column_of.update(fresh)
        logger.info(f"label-only classes from {given}: {len(classnames) - len(shared)} of {len(classnames)}"
                    + (f"; {len(shared)} share the name of a class known already and are scored as that class: "
                       f"{', '.join(shared[:10])}{' ...' if len(shared) > 10 else ''}" if shared else ""))
    return names, index
