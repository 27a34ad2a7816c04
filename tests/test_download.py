"""datasets.download arranges what torchvision fetches into CoOp's layout (torchvision faked: no network)."""
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets as tvd
from PIL import Image

from datasets.catalog import load_dataset
from datasets.download import download
from trainers.ship.errors import ShipError


def jpg(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    return path


class FakeEuroSAT:
    def __init__(self, root, download=False):
        for c in ("AnnualCrop", "Forest", "River"):
            for i in range(10):
                jpg(Path(root) / "eurosat" / "2750" / c / f"{c}_{i}.jpg")


class FakeCaltech101:
    def __init__(self, root, download=False):
        for c in ("BACKGROUND_Google", "Faces", "Faces_easy", "accordion", "airplanes"):
            for i in range(5):
                jpg(Path(root) / "caltech101" / "101_ObjectCategories" / c / f"image_{i:04d}.jpg")


class FakePets:
    classes = ["Abyssinian", "American Bulldog"]

    def __init__(self, root, download=False, split="trainval"):
        base = Path(root) / "oxford-iiit-pet"
        (base / "annotations").mkdir(parents=True, exist_ok=True)
        ids = [f"{c.replace(' ', '_')}_{i}_{split}" for c in ("Abyssinian", "american bulldog") for i in range(5)]
        self._images = [jpg(base / "images" / f"{i}.jpg") for i in ids]
        self._labels = [0] * 5 + [1] * 5


def test_eurosat_download_generates_a_labelled_split(tmp_path, monkeypatch):
    monkeypatch.setattr(tvd, "EuroSAT", FakeEuroSAT)
    folder = download("eurosat", tmp_path)
    assert (folder / "2750" / "Forest").is_dir() and (folder / "split_ship_EuroSAT.json").is_file()
    assert not (tmp_path / ".downloads").exists()
    ds = load_dataset("eurosat", tmp_path, shots=2, seed=1)
    assert ds.classnames == ["AnnualCrop", "Forest", "River"]
    assert (len(ds.train), len(ds.val), len(ds.test)) == (6, 6, 9)  # 10 per class: 5 / 2 / 3
    assert download("eurosat", tmp_path) == folder  # present: nothing to do


def test_caltech_download_drops_background_and_renames_like_coop(tmp_path, monkeypatch):
    monkeypatch.setattr(tvd, "Caltech101", FakeCaltech101)
    download("Caltech101", tmp_path)
    assert load_dataset("Caltech101", tmp_path).classnames == ["face", "accordion", "airplane"]


def test_pets_download_uses_the_official_trainval_test(tmp_path, monkeypatch):
    monkeypatch.setattr(tvd, "OxfordIIITPet", FakePets)
    download("oxford_pets", tmp_path)
    ds = load_dataset("OxfordPets", tmp_path)
    assert ds.classnames == ["abyssinian", "american bulldog"]
    assert all("_test" in i.path for i in ds.test) and all("_trainval" in i.path for i in ds.train + ds.val)
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
