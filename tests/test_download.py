"""datasets.download arranges what torchvision fetches into CoOp's layout (torchvision faked: no network)."""
import json
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets as tvd
from PIL import Image

from datasets.catalog import load_dataset
from datasets.download import download
from trainers.ship.common.errors import ShipError

from .helpers import CALTECH


def jpg(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    return path


# CoOp's class names of EuroSAT (datasets/eurosat.py renames the folders), in label order
EUROSAT_FOLDERS = ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture", "PermanentCrop",
                   "Residential", "River", "SeaLake"]
COOP_EUROSAT = ["Annual Crop Land", "Forest", "Herbaceous Vegetation Land", "Highway or Road", "Industrial Buildings",
                "Pasture Land", "Permanent Crop Land", "Residential Buildings", "River", "Sea or Lake"]


class FakeEuroSAT:
    def __init__(self, root, download=False):
        for c in EUROSAT_FOLDERS:
            for i in range(10):
                jpg(Path(root) / "eurosat" / "2750" / c / f"{c}_{i}.jpg")


class FakeCaltech101:
    def __init__(self, root, download=False):
        for c in ("BACKGROUND_Google", "Faces", "Faces_easy", "accordion", "airplanes"):
            for i in range(5):
                jpg(Path(root) / "caltech101" / "101_ObjectCategories" / c / f"image_{i:04d}.jpg")


class FakePets:
    """Oxford-IIIT Pet's image names: "<Breed>_<number>.jpg" (cats capitalised, dogs lower case)."""

    classes = ["Abyssinian", "American Bulldog"]

    def __init__(self, root, download=False, split="trainval"):
        base = Path(root) / "oxford-iiit-pet"
        (base / "annotations").mkdir(parents=True, exist_ok=True)
        numbers = range(5) if split == "trainval" else range(100, 105)
        ids = [f"{c}_{i}" for c in ("Abyssinian", "american_bulldog") for i in numbers]
        self._images = [jpg(base / "images" / f"{i}.jpg") for i in ids]
        self._labels = [0] * 5 + [1] * 5


class FakeFlowers:
    classes = ["pink primrose", "lotus"]

    def __init__(self, root, download=False, split="train"):
        base = Path(root) / "flowers-102"
        self._image_files = [jpg(base / "jpg" / f"image_{split}_{c}_{i}.jpg") for c in range(2) for i in range(3)]
        self._labels = [0] * 3 + [1] * 3
        (base / "imagelabels.mat").write_bytes(b"")


class FakeFolders:
    """DTD and Food101: one folder per class, named as CoOp names the class."""

    def __init__(self, root, download=False):
        for top, classes in (("dtd/dtd/images", ("banded", "crystalline")), ("food-101/images", ("apple_pie", "baby_back_ribs"))):
            for c in classes:
                for i in range(5):
                    jpg(Path(root) / top / c / f"{i}.jpg")
        (Path(root) / "food-101" / "meta").mkdir(parents=True, exist_ok=True)


def test_eurosat_download_generates_a_labelled_split(tmp_path, monkeypatch):
    monkeypatch.setattr(tvd, "EuroSAT", FakeEuroSAT)
    folder = download("eurosat", tmp_path)
    assert (folder / "2750" / "Forest").is_dir() and (folder / "split_ship_EuroSAT.json").is_file()
    assert not (tmp_path / ".downloads").exists()
    ds = load_dataset("eurosat", tmp_path, shots=2, seed=1)
    assert ds.classnames == COOP_EUROSAT  # CoOp's names: SHIP synthesises from them
    assert (len(ds.train), len(ds.val), len(ds.test)) == (20, 20, 30)  # 10 per class: 5 / 2 / 3
    assert download("eurosat", tmp_path) == folder  # present: nothing to do


def test_caltech_download_drops_background_and_renames_like_coop(tmp_path, monkeypatch):
    monkeypatch.setattr(tvd, "Caltech101", FakeCaltech101)
    download("Caltech101", tmp_path)
    assert load_dataset("Caltech101", tmp_path).classnames == ["face", "accordion", "airplane"]


def test_pets_download_uses_the_official_trainval_test(tmp_path, monkeypatch):
    monkeypatch.setattr(tvd, "OxfordIIITPet", FakePets)
    download("oxford_pets", tmp_path)
    ds = load_dataset("OxfordPets", tmp_path)
    assert ds.classnames == ["abyssinian", "american_bulldog"]  # CoOp's reader: breed of the image name, lower case
    assert all("_10" in i.path for i in ds.test) and not any("_10" in i.path for i in ds.train + ds.val)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (8, 2, 10)


def test_offline_download_is_one_clear_line(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(tvd, "DTD", offline)
    with pytest.raises(ShipError) as err:
        download("dtd", tmp_path)
    assert "could not download DescribableTextures" in str(err.value) and str(tmp_path / "dtd") in str(err.value)
    assert "\n" not in str(err.value)


def test_not_downloadable_names_the_folder(tmp_path):
    with pytest.raises(ShipError, match=r"SUN397 cannot be downloaded automatically; put it at .*sun397"):
        download("sun397", tmp_path)


def test_dtd_and_food_keep_coop_folder_names(tmp_path, monkeypatch):
    monkeypatch.setattr(tvd, "DTD", FakeFolders)
    monkeypatch.setattr(tvd, "Food101", FakeFolders)
    download("dtd", tmp_path / "a")
    download("food101", tmp_path / "b")
    assert load_dataset("dtd", tmp_path / "a").classnames == ["banded", "crystalline"]
    assert load_dataset("food101", tmp_path / "b").classnames == ["apple_pie", "baby_back_ribs"]


def test_flowers_names_from_cat_to_name_json_else_torchvision_with_a_line(tmp_path, monkeypatch, ship_log):
    monkeypatch.setattr(tvd, "Flowers102", FakeFlowers)
    download("oxford_flowers", tmp_path / "a")
    assert load_dataset("OxfordFlowers", tmp_path / "a").classnames == ["pink primrose", "lotus"]
    assert any("CoOp's reader takes them from cat_to_name.json" in m for m in ship_log)
    coop = tmp_path / "b" / "oxford_flowers" / "cat_to_name.json"
    coop.parent.mkdir(parents=True)
    coop.write_text('{"1": "pink primrose", "2": "lotus lotus"}')
    download("oxford_flowers", tmp_path / "b")  # the folder holds only cat_to_name.json: still downloaded
    assert load_dataset("OxfordFlowers", tmp_path / "b").classnames == ["pink primrose", "lotus lotus"]


@pytest.mark.skipif(not CALTECH.is_dir(), reason="the real Caltech101 (../shared/data) is absent")
def test_caltech_generated_split_has_coops_class_names(tmp_path, monkeypatch):
    """The generated split of a torchvision download names every class as CoOp's published split does."""
    folders = sorted(d.name for d in (CALTECH / "101_ObjectCategories").iterdir() if d.is_dir())

    class RealFolders:
        def __init__(self, root, download=False):
            for c in folders:
                for i in range(3):
                    jpg(Path(root) / "caltech101" / "101_ObjectCategories" / c / f"image_{i:04d}.jpg")

    monkeypatch.setattr(tvd, "Caltech101", RealFolders)
    download("caltech101", tmp_path)
    coop = json.loads((CALTECH / "split_zhou_Caltech101.json").read_text())
    coop_names = [name for _, name in sorted({(label, name) for _, label, name in coop["train"]})]
    assert load_dataset("caltech101", tmp_path).classnames == coop_names
