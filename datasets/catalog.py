"""The datasets of CoOp's protocol, read from the folder layouts of CoOp's DATASETS.md.

``load_dataset(name, root, shots, seed)`` returns :class:`DatasetSplits` with the few-shot
training (and validation) subsets already drawn; ``available_datasets()`` lists the names.
"""
from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from trainers.ship.common.errors import ShipError
from trainers.ship.common.known_datasets import ALIASES, DATASET_TEMPLATES

from .fewshot_cache import few_shot_subsets, read_coop_pickle
from .image_folder import read_coop_split
from .splits import DatasetSplits, Item

DATASETS_DOC = "see CoOp's DATASETS.md (https://github.com/KaiyangZhou/CoOp/blob/main/DATASETS.md)"

logger = logging.getLogger("ship")
Reader = Callable[["DatasetSpec", Path], tuple[list[Item], list[Item], list[Item]]]


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise ShipError(f"{what} not found: {path} ({DATASETS_DOC})")
    return path


def generated_split_file(spec: "DatasetSpec") -> str:
    """The split ``datasets.download`` writes when CoOp's split file is absent."""
    return f"split_ship_{spec.name}.json"


def _read_split_json(spec: "DatasetSpec", folder: Path):
    """Images listed by CoOp's ``split_zhou_*.json`` (else by a split that ``datasets.download`` generated),
    relative to ``spec.image_dir``."""
    _require(folder / spec.image_dir, f"{spec.name} image folder")
    split_file = folder / spec.split_file
    generated = folder / generated_split_file(spec)
    if not split_file.exists() and generated.exists():
        logger.info(f"{spec.name}: {split_file.name} is absent; using the generated {generated} "
                    f"(not CoOp's published split: results are not comparable with papers)")
        split_file = generated
    return read_coop_split(_require(split_file, f"{spec.name} split file"), folder / spec.image_dir)


def _read_fgvc_aircraft(spec: "DatasetSpec", folder: Path):
    """``variants.txt`` (class names) and ``images_variant_{train,val,test}.txt`` ("<image id> <variant>")."""
    classnames = [line.strip() for line in _require(folder / "variants.txt", "FGVCAircraft variants.txt").read_text().splitlines() if line.strip()]
    label_of = {name: label for label, name in enumerate(classnames)}

    def read(split: str) -> list[Item]:
        items = []
        for line in _require(folder / f"images_variant_{split}.txt", "FGVCAircraft split file").read_text().splitlines():
            if line.strip():
                image_id, variant = line.strip().split(" ", 1)
                items.append(Item(str(folder / "images" / f"{image_id}.jpg"), label_of[variant], variant))
        return items

    return read("train"), read("val"), read("test")


def read_imagenet_classnames(path: Path) -> dict[str, str]:
    """``classnames.txt``: one "<wnid> <class name>" per line, in label order."""
    names = {}
    for line in _require(path, "ImageNet classnames.txt").read_text().splitlines():
        if line.strip():
            wnid, name = line.strip().split(" ", 1)
            names[wnid] = name
    return names


def _class_folder_items(image_dir: Path, folders: list[str], names: list[str]) -> list[Item]:
    """Every image of ``image_dir/<folder>``, labelled by the folder's position (file names sorted)."""
    items = []
    for label, (folder, name) in enumerate(zip(folders, names)):
        files = sorted(f for f in (image_dir / folder).iterdir() if not f.name.startswith("."))
        items += [Item(str(f), label, name) for f in files]
    return items


def _read_imagenet(spec: "DatasetSpec", folder: Path):
    """``images/train`` and ``images/val`` with 1,000 wnid folders; val is also the test set (CoOp).

    As CoOp's reader: CoOp's ``preprocessed.pkl`` when present, else labels follow the sorted wnid folders and
    each folder's images come in ``os.listdir`` order (the file system's, so on one machine the same few-shot
    images as CoOp's for a seed).
    """
    preprocessed = folder / "preprocessed.pkl"
    if preprocessed.is_file():
        data = read_coop_pickle(preprocessed, folder)
        logger.info(f"ImageNet: train and test images from CoOp's {preprocessed}")
        return data["train"], data["test"], data["test"]
    names = read_imagenet_classnames(folder / "classnames.txt")

    def read(split: str) -> list[Item]:
        image_dir = _require(folder / "images" / split, f"ImageNet {split} folder")
        wnids = sorted(d.name for d in os.scandir(image_dir) if d.is_dir())
        missing = [w for w in wnids if w not in names]
        if missing:
            raise ShipError(f"ImageNet {split} folders without a name in classnames.txt: {', '.join(missing[:5])}")
        return [Item(str(image_dir / w / f), label, names[w])
                for label, w in enumerate(wnids) for f in os.listdir(image_dir / w) if not f.startswith(".")]

    test = read("val")
    return read("train"), test, test


def _read_imagenet_variant(spec: "DatasetSpec", folder: Path):
    """Test-only ImageNet variants: class folders named by wnid (Sketch, A, R) or by label (V2)."""
    names = read_imagenet_classnames(folder / "classnames.txt")
    image_dir = _require(folder / spec.image_dir, f"{spec.name} image folder")
    if spec.name == "ImageNetV2":  # folders "0".."999" in classnames.txt order
        test = _class_folder_items(image_dir, [str(i) for i in range(len(names))], list(names.values()))
    else:  # a subset of wnid folders (200 for A and R), relabelled 0..n-1 in sorted order
        wnids = sorted(d.name for d in image_dir.iterdir() if d.is_dir() and d.name in names)
        test = _class_folder_items(image_dir, wnids, [names[w] for w in wnids])
    return [], [], test


def _cub_classname(folder: str) -> str:
    """"001.Black_footed_Albatross" -> "Black footed Albatross"."""
    return folder.split(".", 1)[-1].replace("_", " ")


def _read_cub(spec: "DatasetSpec", folder: Path):
    """CUB-200-2011 with Xian et al.'s proposed GZSL split: ``CUB_200_2011/images/<class folder>/*.jpg`` and
    the split's class lists ``trainvalclasses.txt`` (150 seen) and ``testclasses.txt`` (50 unseen).

    Seen classes come first (labels 0..149), so the base/new split is seen/unseen. Each seen class's
    images are shuffled with seed 0: 20 % test (seen), and of the rest 10 % val, 90 % train. Every
    unseen image is a test image. (The proposed split fixes its seen test images in ``att_splits.mat``;
    this reader draws its own 20 %.)
    """
    image_dir = _require(folder / spec.image_dir, "CUB image folder")
    seen, unseen = ([line.strip() for line in _require(folder / name, f"CUB class list {name}").read_text().splitlines()
                     if line.strip()] for name in ("trainvalclasses.txt", "testclasses.txt"))
    rng, train, val, test = random.Random(0), [], [], []
    for label, class_folder in enumerate(seen + unseen):
        files = sorted(str(f) for f in _require(image_dir / class_folder, "CUB class folder").iterdir() if f.suffix.lower() == ".jpg")
        items = [Item(f, label, _cub_classname(class_folder)) for f in files]
        if label >= len(seen):
            test += items
            continue
        rng.shuffle(items)
        n_test = round(0.2 * len(items))
        n_val = round(0.1 * (len(items) - n_test))
        test += items[:n_test]
        val += items[n_test : n_test + n_val]
        train += items[n_test + n_val :]
    return train, val, test


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    folder: str  # under the DATA root
    image_dir: str  # under the dataset folder
    split_file: str | None
    templates: tuple[str, ...]
    reader: Reader = _read_split_json
    test_only: bool = False  # domain-generalisation targets: no training images
    seen_classes_first: bool = False  # GZSL splits: the classes with training images are the base (seen) ones


def _spec(name, folder, image_dir, split_file, **kw):
    return DatasetSpec(name, folder, image_dir, split_file, DATASET_TEMPLATES[name], **kw)


SPECS = {s.name: s for s in [
    _spec("ImageNet", "imagenet", "images", None, reader=_read_imagenet),
    _spec("Caltech101", "caltech-101", "101_ObjectCategories", "split_zhou_Caltech101.json"),
    _spec("OxfordPets", "oxford_pets", "images", "split_zhou_OxfordPets.json"),
    _spec("StanfordCars", "stanford_cars", "", "split_zhou_StanfordCars.json"),
    _spec("OxfordFlowers", "oxford_flowers", "jpg", "split_zhou_OxfordFlowers.json"),
    _spec("Food101", "food-101", "images", "split_zhou_Food101.json"),
    _spec("FGVCAircraft", "fgvc_aircraft", "images", None, reader=_read_fgvc_aircraft),
    _spec("SUN397", "sun397", "SUN397", "split_zhou_SUN397.json"),
    _spec("DescribableTextures", "dtd", "images", "split_zhou_DescribableTextures.json"),
    _spec("EuroSAT", "eurosat", "2750", "split_zhou_EuroSAT.json"),
    _spec("UCF101", "ucf101", "UCF-101-midframes", "split_zhou_UCF101.json"),
    _spec("ImageNetV2", "imagenetv2", "imagenetv2-matched-frequency-format-val", None,
          reader=_read_imagenet_variant, test_only=True),
    _spec("ImageNetSketch", "imagenet-sketch", "images", None, reader=_read_imagenet_variant, test_only=True),
    _spec("ImageNetA", "imagenet-adversarial", "imagenet-a", None, reader=_read_imagenet_variant, test_only=True),
    _spec("ImageNetR", "imagenet-rendition", "imagenet-r", None, reader=_read_imagenet_variant, test_only=True),
    _spec("CUB", "cub", "CUB_200_2011/images", None, reader=_read_cub, seen_classes_first=True),
]}


def available_datasets() -> list[str]:
    return list(SPECS)


def dataset_spec(name: str) -> DatasetSpec:
    spec = SPECS.get(ALIASES.get(name, name))
    if spec is None:
        raise ShipError(f"unknown dataset {name!r}; expected one of {', '.join(SPECS)} (or ImageFolder)")
    return spec


def load_dataset(name: str, root: str | Path, shots: int = 0, seed: int = 1) -> DatasetSplits:
    """Read dataset ``name`` under the DATA ``root``; with ``shots`` > 0 draw (or reload) the few-shot subsets."""
    spec = dataset_spec(name)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ShipError(f"DATA root not found: {root} (the folder that holds {spec.folder}/; {DATASETS_DOC})")
    folder = _require(root / spec.folder, f"{spec.name} folder")
    train, val, test = spec.reader(spec, folder)
    classnames = sorted({(i.label, i.classname) for i in train + val + test})
    num_base = len({i.label for i in train}) if spec.seen_classes_first else 0
    dataset = DatasetSplits(spec.name, [name for _, name in classnames], train, val, test, list(spec.templates), num_base)
    if shots > 0 and not spec.test_only:
        dataset.train, dataset.val = few_shot_subsets(folder, train, val, shots, seed, val_from_train=spec.name == "ImageNet")
    return dataset
