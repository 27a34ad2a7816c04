"""Fetch the datasets that torchvision can download into CoOp's folder layout.

    python -m datasets.download DATASET --root DATA

EuroSAT, DTD, Caltech101, Food101, FGVCAircraft, OxfordPets and Flowers102 are downloaded by
torchvision into ``DATA/.downloads`` and moved into CoOp's layout. CoOp's ``split_zhou_*.json``
files live on Google Drive; where one is absent, a fixed split is generated (CoOp's proportions,
seed 0) and saved as ``split_ship_<Name>.json``. The reader uses it with a log line: such a split
differs from CoOp's published one, so numbers are not comparable with papers. Its class names are
CoOp's: SHIP synthesises features from names, so they are part of the method. Each dataset's
names are made as CoOp's reader makes them (folder names as they are, EuroSAT's and Caltech101's
renamings, Pets' breeds from the image names, Flowers102's ``cat_to_name.json`` when present).
FGVCAircraft needs no split file.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import urllib.error
from pathlib import Path
from typing import Callable

from trainers.ship.common.errors import ShipError, report_errors
from trainers.ship.common.runtime import atomic_write_json

from .catalog import DATASETS_DOC, dataset_spec, generated_split_file
from .image_folder import split_class

logger = logging.getLogger("ship")
Split = dict[str, list[list]]  # CoOp's split format: {"train": [[relative path, label, class name], ...], ...}
CALTECH_IGNORED = {"BACKGROUND_Google", "Faces_easy"}
CALTECH_NAMES = {"Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike", "airplanes": "airplane"}
EUROSAT_NAMES = {  # CoOp's datasets/eurosat.py renames the folders
    "AnnualCrop": "Annual Crop Land", "Forest": "Forest", "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road", "Industrial": "Industrial Buildings", "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land", "Residential": "Residential Buildings", "River": "River",
    "SeaLake": "Sea or Lake",
}


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))


def _folder_split(image_dir: Path, ignored=frozenset(), rename=None) -> Split:
    """Each class folder's images shuffled with seed 0 and cut as ``read_image_folder`` cuts them; a class is
    named as CoOp's ``read_and_split_data`` names it: its folder's name, or its entry in ``rename``."""
    rng, split = random.Random(0), {"train": [], "val": [], "test": []}
    folders = sorted(d.name for d in image_dir.iterdir() if d.is_dir() and d.name not in ignored)
    for label, folder in enumerate(folders):
        files = sorted(f for f in (image_dir / folder).iterdir() if not f.name.startswith("."))
        name = (rename or {}).get(folder, folder)
        for key, part in zip(("train", "val", "test"), split_class(files, rng)):
            split[key] += [[f"{folder}/{f.name}", label, name] for f in part]
    return split


def _tv(cls_name: str, staging: Path, **kwargs):
    """A torchvision dataset object, downloaded into ``staging``."""
    import torchvision.datasets as tvd  # heavy: only when a download is asked for

    return getattr(tvd, cls_name)(str(staging), download=True, **kwargs)


def _eurosat(staging: Path, folder: Path) -> Split:
    _tv("EuroSAT", staging)
    _move(staging / "eurosat" / "2750", folder / "2750")
    return _folder_split(folder / "2750", rename=EUROSAT_NAMES)


def _dtd(staging: Path, folder: Path) -> Split:
    _tv("DTD", staging)
    _move(staging / "dtd" / "dtd" / "images", folder / "images")
    return _folder_split(folder / "images")


def _caltech101(staging: Path, folder: Path) -> Split:
    _tv("Caltech101", staging)
    _move(staging / "caltech101" / "101_ObjectCategories", folder / "101_ObjectCategories")
    return _folder_split(folder / "101_ObjectCategories", CALTECH_IGNORED, CALTECH_NAMES)


def _food101(staging: Path, folder: Path) -> Split:
    _tv("Food101", staging)
    for part in ("images", "meta"):
        _move(staging / "food-101" / part, folder / part)
    return _folder_split(folder / "images")


def _fgvc_aircraft(staging: Path, folder: Path) -> None:
    _tv("FGVCAircraft", staging)
    _move(staging / "fgvc-aircraft-2013b" / "data", folder)


def _official_split(tv_splits: dict[str, tuple[list, list]], name_of: Callable[[Path, int], str], image_dir: Path,
                    p_val: float = 0.0) -> Split:
    """CoOp's format from torchvision's official splits, each image's class named by ``name_of(file, label)``;
    with ``p_val`` the val part is cut from train (seed 0)."""
    rng, split = random.Random(0), {"train": [], "val": [], "test": []}
    for key, (files, labels) in tv_splits.items():
        rows = [[str(Path(f).relative_to(image_dir)), int(y), name_of(Path(f), int(y))] for f, y in zip(files, labels)]
        if key == "trainval":
            rng.shuffle(rows)
            n_val = round(len(rows) * p_val)
            split["val"] += sorted(rows[:n_val])
            split["train"] += sorted(rows[n_val:])
        else:
            split[key] += rows
    return split


def _oxford_pets(staging: Path, folder: Path) -> Split:
    parts = {s: _tv("OxfordIIITPet", staging, split=s) for s in ("trainval", "test")}
    images = staging / "oxford-iiit-pet" / "images"
    # CoOp's reader: the breed is the image name without its number, lower-cased ("american_bulldog")
    split = _official_split({s: (d._images, d._labels) for s, d in parts.items()},
                            lambda f, y: f.stem.rsplit("_", 1)[0].lower(), images, p_val=0.2)
    for part in ("images", "annotations"):
        _move(staging / "oxford-iiit-pet" / part, folder / part)
    return split


def _flowers102(staging: Path, folder: Path) -> Split:
    parts = {s: _tv("Flowers102", staging, split=s) for s in ("train", "val", "test")}
    images = staging / "flowers-102" / "jpg"
    names = _flower_names(folder, parts["test"].classes)
    split = _official_split({s: (d._image_files, d._labels) for s, d in parts.items()}, lambda f, y: names[y], images)
    _move(images, folder / "jpg")
    _move(staging / "flowers-102" / "imagelabels.mat", folder / "imagelabels.mat")
    return split


def _flower_names(folder: Path, torchvision_names: list[str]) -> list[str]:
    """CoOp names the flowers from ``cat_to_name.json`` (its DATASETS.md links it); put it in ``folder`` to use
    those names. Otherwise torchvision's list, which may spell a few differently, with a log line."""
    cat_to_name = folder / "cat_to_name.json"
    if cat_to_name.is_file():
        names = json.loads(cat_to_name.read_text())
        logger.info(f"OxfordFlowers: class names from {cat_to_name}, as CoOp's reader")
        return [names[str(label + 1)] for label in range(len(torchvision_names))]
    logger.info(f"OxfordFlowers: class names from torchvision; CoOp's reader takes them from cat_to_name.json, whose "
                f"spelling may differ for a few classes: put that file at {cat_to_name} before downloading to use it")
    return list(torchvision_names)


ARRANGERS: dict[str, Callable[[Path, Path], Split | None]] = {
    "EuroSAT": _eurosat, "DescribableTextures": _dtd, "Caltech101": _caltech101, "Food101": _food101,
    "FGVCAircraft": _fgvc_aircraft, "OxfordPets": _oxford_pets, "OxfordFlowers": _flowers102,
}


def download(name: str, root: str | Path) -> Path:
    """Download dataset ``name`` into ``root`` in CoOp's layout (nothing to do if its folder exists)."""
    spec = dataset_spec(name)
    root = Path(root).expanduser()
    folder = root / spec.folder
    images = folder / spec.image_dir
    if images.exists() and images != folder or folder.exists() and not spec.image_dir:
        logger.info(f"{spec.name}: {images} exists; nothing downloaded")
        return folder
    arrange = ARRANGERS.get(spec.name)
    if arrange is None:
        raise ShipError(f"{spec.name} cannot be downloaded automatically; put it at {folder} ({DATASETS_DOC}). "
                        f"Downloadable: {', '.join(ARRANGERS)}")
    staging = root / ".downloads"
    logger.info(f"{spec.name}: downloading with torchvision into {staging}")
    try:
        split = arrange(staging, folder)
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ShipError(f"could not download {spec.name} into {folder} ({type(exc).__name__}: {exc}); "
                        f"without network, put its files there yourself ({DATASETS_DOC})") from None
    if split is not None:
        atomic_write_json(split, folder / generated_split_file(spec))
        logger.info(f"{spec.name}: saved a generated split to {folder / generated_split_file(spec)}; it differs from "
                    f"CoOp's published split_zhou file, so results are not comparable with papers until you use that file")
    shutil.rmtree(staging, ignore_errors=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m datasets.download", description=__doc__.split("\n")[0])
    p.add_argument("dataset", help=f"one of {', '.join(ARRANGERS)} (or a CoOp config name, e.g. eurosat)")
    p.add_argument("--root", required=True, help="the DATA root")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    return report_errors(lambda: download(args.dataset, args.root))


if __name__ == "__main__":
    sys.exit(main())
