"""A folder with one sub-folder of images per class, optionally with a CoOp split file.

Without a split file, each class's images (sorted by name) are shuffled with a
fixed seed and cut 50 / 20 / 30 % into train / val / test, so the split is
the same on every machine.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

from trainers.ship.common.errors import ShipError

from .splits import DatasetSplits, Item

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def read_coop_split(split_file: Path, image_dir: Path) -> tuple[list[Item], list[Item], list[Item]]:
    """Items of a CoOp ``split_zhou_*.json``: ``{"train": [[relative path, label, class name], ...], ...}``."""
    try:
        split = json.loads(split_file.read_text())
        parts = tuple(
            [Item(str(image_dir / path), int(label), str(name)) for path, label, name in split[key]]
            for key in ("train", "val", "test")
        )
    except FileNotFoundError:
        raise ShipError(f"split file not found: {split_file}") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ShipError(
            f"bad split file {split_file}: expected CoOp's JSON with train/val/test lists of "
            f"[path, label, classname] ({type(exc).__name__}: {exc})"
        ) from None
    return parts


def _classnames_from(items: list[Item]) -> list[str]:
    names: dict[int, str] = {}
    for item in items:
        names.setdefault(item.label, item.classname)
    if sorted(names) != list(range(len(names))):
        raise ShipError(f"labels in the split must be 0..{len(names) - 1} without gaps; got {sorted(names)[:10]}...")
    return [names[label] for label in range(len(names))]


def split_class(files: list[Path], rng: random.Random) -> tuple[list[Path], list[Path], list[Path]]:
    """One class's images shuffled by ``rng`` and cut 50 / 20 / 30 % into train / val / test (CoOp's proportions)."""
    files = list(files)
    rng.shuffle(files)
    n_train = max(1, round(0.5 * len(files)))
    n_val = max(1, round(0.2 * len(files))) if len(files) >= 3 else 0
    return files[:n_train], files[n_train : n_train + n_val], files[n_train + n_val :]


def read_image_folder(root: str | Path, split_file: str | Path | None = None, name: str | None = None) -> DatasetSplits:
    """Read ``root/<class>/<image>``; class labels follow the sorted folder names.

    With ``split_file`` (CoOp's format, paths relative to ``root``) the split
    and class names come from the file instead.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ShipError(f"dataset folder not found: {root} (expected one sub-folder of images per class)")
    name = name or root.name
    if split_file:
        train, val, test = read_coop_split(Path(split_file).expanduser(), root)
        return DatasetSplits(name, _classnames_from(train + val + test), train, val, test)

    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(class_dirs) < 2:
        raise ShipError(f"{root} has {len(class_dirs)} class sub-folders; base-to-new needs at least 2")
    for class_dir in class_dirs:
        try:
            class_dir.name.encode("utf-8")
        except UnicodeEncodeError:
            raise ShipError(f"class folder name {os.fsencode(class_dir.name)!r} in {root} is not valid UTF-8; rename "
                            f"it (a class's folder name is its name in the text prompts)") from None
    rng = random.Random(0)
    train, val, test = [], [], []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(f for f in class_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ShipError(f"class folder {class_dir} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        classname = class_dir.name.replace("_", " ")
        for part, paths in zip((train, val, test), split_class(files, rng)):
            part.extend(Item(str(p), label, classname) for p in paths)
    return DatasetSplits(name, [d.name.replace("_", " ") for d in class_dirs], train, val, test)
