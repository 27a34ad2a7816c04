"""Readers of CoOp's dataset layouts, on small trees written here, and the few-shot cache."""
import hashlib
import os
import pickle
import random
import sys
import types
from pathlib import Path

import pytest

from datasets.catalog import available_datasets, load_dataset
from datasets.splits import subsample_classes
from trainers.ship.common.errors import ShipError

from .helpers import image, split_json_dataset


@pytest.mark.parametrize("name,folder,image_dir,split_name,template", [
    ("Caltech101", "caltech-101", "101_ObjectCategories", "split_zhou_Caltech101.json", "a photo of a {}."),
    ("EuroSAT", "eurosat", "2750", "split_zhou_EuroSAT.json", "a centered satellite photo of {}."),
    ("DescribableTextures", "dtd", "images", "split_zhou_DescribableTextures.json", "{} texture."),
    ("OxfordPets", "oxford_pets", "images", "split_zhou_OxfordPets.json", "a photo of a {}, a type of pet."),
])
def test_split_json_layouts(tmp_path, name, folder, image_dir, split_name, template):
    classes = ["alpha", "beta", "gamma_ray", "delta", "eps"]
    split_json_dataset(tmp_path, folder, image_dir, split_name, classes)
    full = load_dataset(name, tmp_path)
    assert full.classnames == ["alpha", "beta", "gamma ray", "delta", "eps"] and full.templates == [template]
    assert (len(full.train), len(full.val), len(full.test)) == (30, 10, 15)
    assert all(Path(i.path).is_file() for i in full.train + full.val + full.test)

    few = load_dataset(name, tmp_path, shots=4, seed=1)
    assert (len(few.train), len(few.val)) == (20, 10)  # 4 shots; val min(4, shots) but only 2 exist
    cached = tmp_path / folder / "split_fewshot" / "shot_4-seed_1.json"
    assert cached.is_file()
    again = load_dataset(name, tmp_path, shots=4, seed=1)
    assert [i.path for i in again.train] == [i.path for i in few.train]
    other_seed = load_dataset(name, tmp_path, shots=4, seed=2)
    assert [i.path for i in other_seed.train] != [i.path for i in few.train]

    base, new = subsample_classes(few, "base"), subsample_classes(few, "new")
    assert base.classnames == ["alpha", "beta", "gamma ray"] and new.classnames == ["delta", "eps"]
    assert {i.label for i in new.test} == {0, 1}


def test_fgvc_aircraft_text_files(tmp_path):
    d = tmp_path / "fgvc_aircraft"
    d.mkdir()
    variants = ["707-320", "A320", "Cessna 172"]
    (d / "variants.txt").write_text("\n".join(variants) + "\n")
    for split, n in (("train", 3), ("val", 1), ("test", 2)):
        lines = []
        for v in variants:
            for i in range(n):
                image_id = f"{int(hashlib.sha256(f'{v}/{split}/{i}'.encode()).hexdigest(), 16) % 10**7:07d}"  # stable
                image(d / "images" / f"{image_id}.jpg")
                lines.append(f"{image_id} {v}")
        (d / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")
    ds = load_dataset("fgvc_aircraft", tmp_path, shots=2, seed=1)
    assert ds.classnames == variants and (len(ds.train), len(ds.val), len(ds.test)) == (6, 3, 6)
    assert ds.templates == ["a photo of a {}, a type of aircraft."]


def write_imagenet_classnames(path: Path, wnids: list[str]):
    path.write_text("".join(f"{w} class {w[-1]}\n" for w in wnids))


def test_imagenet_val_is_test_so_validation_comes_from_train(tmp_path):
    d = tmp_path / "imagenet"
    wnids = ["n01", "n02", "n03", "n04"]
    d.mkdir()
    write_imagenet_classnames(d / "classnames.txt", wnids)
    for w in wnids:
        for i in range(5):
            image(d / "images" / "train" / w / f"{w}_{i}.JPEG")
        for i in range(3):
            image(d / "images" / "val" / w / f"val_{w}_{i}.JPEG")
    ds = load_dataset("ImageNet", tmp_path, shots=2, seed=1)
    assert ds.classnames == ["class 1", "class 2", "class 3", "class 4"] and len(ds.templates) == 7
    assert len(ds.train) == 8 and len(ds.test) == 12
    # its val set is the test set: validation images come from the training images left out, never from test
    assert len(ds.val) == 8 and not {i.path for i in ds.val} & {i.path for i in ds.train + ds.test}
    again = load_dataset("ImageNet", tmp_path, shots=2, seed=1)  # the cached few-shot file gives the same val
    assert [i.path for i in again.val] == [i.path for i in ds.val]


def coop_imagenet_fewshot(folder: Path, shots: int, seed: int) -> list[tuple[str, int]]:
    """The reference, written from CoOp's datasets/imagenet.py and Dassl's generate_fewshot_dataset: labels by
    sorted wnid folder, each folder's files in os.listdir order (hidden ones dropped), then under
    random.seed(seed) per label (in order of first appearance) random.sample of `shots` items."""
    split_dir = folder / "images" / "train"
    folders = sorted(f.name for f in os.scandir(split_dir) if f.is_dir())
    items = [(str(split_dir / w / f), label) for label, w in enumerate(folders)
             for f in os.listdir(split_dir / w) if not f.startswith(".")]
    random.seed(seed)
    by_label = {}
    for item in items:
        by_label.setdefault(item[1], []).append(item)
    return [x for group in by_label.values() for x in (random.sample(group, shots) if len(group) >= shots else group)]


def test_imagenet_few_shot_images_are_coops(tmp_path, monkeypatch):
    """Labels follow the sorted wnid folders (not classnames.txt's order) and files keep the file system's order,
    so a seed picks CoOp's images; a listdir order other than sorted shows the difference."""
    d = tmp_path / "imagenet"
    wnids = ["n03", "n01", "n02"]  # classnames.txt in another order than the folders sort
    d.mkdir()
    write_imagenet_classnames(d / "classnames.txt", wnids)
    for w in wnids:
        for i in range(6):
            image(d / "images" / "train" / w / f"{w}_{i}.JPEG")
        image(d / "images" / "val" / w / f"val_{w}.JPEG")
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: sorted(real_listdir(path), key=lambda f: f[::-1], reverse=True))
    expected = coop_imagenet_fewshot(d, 2, 5)
    ds = load_dataset("ImageNet", tmp_path, shots=2, seed=5)
    assert [(i.path, i.label) for i in ds.train] == expected
    assert ds.classnames == ["class 1", "class 2", "class 3"]  # n01, n02, n03


def test_imagenet_reads_coops_preprocessed_pickle(tmp_path, monkeypatch):
    d = tmp_path / "imagenet"
    image(d / "images" / "train" / "n01" / "a.JPEG")
    module = types.ModuleType("dassl.data.datasets.base_dataset")

    class Datum:
        def __init__(self, impath, label, classname):
            self._impath, self._label, self._classname, self._domain = impath, label, classname, 0

    Datum.__module__, Datum.__qualname__ = module.__name__, "Datum"
    module.Datum = Datum
    for name in ("dassl", "dassl.data", "dassl.data.datasets"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    train = [Datum(f"/elsewhere/imagenet/images/train/n01/{i}.JPEG", 0, "tench") for i in range(3)]
    test = [Datum("/elsewhere/imagenet/images/val/n01/v.JPEG", 0, "tench"), Datum("/elsewhere/imagenet/images/val/n02/w.JPEG", 1, "goldfish")]
    (d / "preprocessed.pkl").write_bytes(pickle.dumps({"train": train, "test": test}))
    ds = load_dataset("ImageNet", tmp_path)
    assert ds.classnames == ["tench", "goldfish"] and len(ds.train) == 3
    assert ds.test[1].path == str(d / "images/val/n02/w.JPEG")


def test_imagenet_a_uses_present_wnids_only(tmp_path):
    d = tmp_path / "imagenet-adversarial"
    d.mkdir()
    write_imagenet_classnames(d / "classnames.txt", ["n01", "n02", "n03", "n04"])
    for w in ("n04", "n02"):
        image(d / "imagenet-a" / w / "a.jpg")
    (d / "imagenet-a" / "README.txt").write_text("not a class")
    ds = load_dataset("ImageNetA", tmp_path, shots=16, seed=1)
    assert ds.classnames == ["class 2", "class 4"] and ds.train == [] and [i.label for i in ds.test] == [0, 1]


def test_imagenet_v2_and_sketch_layouts(tmp_path):
    wnids = ["n01", "n02", "n03"]
    v2 = tmp_path / "imagenetv2"
    v2.mkdir()
    write_imagenet_classnames(v2 / "classnames.txt", wnids)
    for label in range(3):  # V2 names its folders by label
        image(v2 / "imagenetv2-matched-frequency-format-val" / str(label) / "x.jpeg")
    ds = load_dataset("imagenetv2", tmp_path)
    assert [(i.label, i.classname) for i in ds.test] == [(0, "class 1"), (1, "class 2"), (2, "class 3")]
    sketch = tmp_path / "imagenet-sketch"
    sketch.mkdir()
    write_imagenet_classnames(sketch / "classnames.txt", wnids)
    for w in wnids:
        image(sketch / "images" / w / "s.JPEG")
    assert load_dataset("ImageNetSketch", tmp_path).classnames == ["class 1", "class 2", "class 3"]


def test_cub_proposed_split_layout(tmp_path):
    base = tmp_path / "cub"
    seen, unseen = ["001.Black_footed_Albatross", "002.Laysan_Albatross"], ["003.Sooty_Albatross"]
    for c in seen + unseen:
        for i in range(10):
            image(base / "CUB_200_2011" / "images" / c / f"{c}_{i}.jpg")
    (base / "trainvalclasses.txt").write_text("\n".join(seen) + "\n")
    (base / "testclasses.txt").write_text("\n".join(unseen) + "\n")
    ds = load_dataset("cub", tmp_path, shots=4, seed=1)
    assert ds.classnames == ["Black footed Albatross", "Laysan Albatross", "Sooty Albatross"] and ds.num_base == 2
    full = load_dataset("CUB", tmp_path)
    assert (len(full.train), len(full.val), len(full.test)) == (14, 2, 14)  # per seen class 7 / 1 / 2; unseen all test
    assert {i.label for i in full.train + full.val} == {0, 1} and sum(i.label == 2 for i in full.test) == 10
    assert len(ds.train) == 8 and ds.templates == ["a photo of a {}, a type of bird."]


def test_every_dataset_is_known():
    assert len(available_datasets()) == 16
    for alias in ("caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101", "fgvc_aircraft",
                  "sun397", "dtd", "eurosat", "ucf101", "imagenet"):
        with pytest.raises(ShipError, match="DATA root not found"):
            load_dataset(alias, "/nonexistent/DATA")


def test_errors_name_what_is_missing(tmp_path):
    with pytest.raises(ShipError, match=r"unknown dataset 'Caltech'; expected one of ImageNet, Caltech101"):
        load_dataset("Caltech", tmp_path)
    with pytest.raises(ShipError, match=r"EuroSAT folder not found: .*eurosat \(see CoOp's DATASETS.md"):
        load_dataset("EuroSAT", tmp_path)
    image(tmp_path / "eurosat" / "2750" / "x" / "0.jpg")
    with pytest.raises(ShipError, match=r"EuroSAT split file not found: .*split_zhou_EuroSAT.json"):
        load_dataset("EuroSAT", tmp_path)


def test_reads_coop_fewshot_pickle_without_dassl(tmp_path, monkeypatch):
    """A shot_K-seed_S.pkl written by CoOp on another machine: same images, re-rooted paths."""
    split_json_dataset(tmp_path, "eurosat", "2750", "split_zhou_EuroSAT.json", ["a", "b"])
    module = types.ModuleType("dassl.data.datasets.base_dataset")

    class Datum:  # what Dassl pickles: private attributes behind properties
        def __init__(self, impath, label, classname):
            self._impath, self._label, self._classname, self._domain = impath, label, classname, 0

    Datum.__module__, Datum.__qualname__ = module.__name__, "Datum"
    module.Datum = Datum
    for parent in ("dassl", "dassl.data", "dassl.data.datasets"):  # pickle imports the whole path
        monkeypatch.setitem(sys.modules, parent, types.ModuleType(parent))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    elsewhere = "/home/someone/DATA/eurosat/2750"
    data = {"train": [Datum(f"{elsewhere}/b/train_1.jpg", 1, "b")], "val": [Datum(f"{elsewhere}/a/val_0.jpg", 0, "a")]}
    (tmp_path / "eurosat" / "split_fewshot").mkdir()
    (tmp_path / "eurosat" / "split_fewshot" / "shot_1-seed_3.pkl").write_bytes(pickle.dumps(data))
    for name in ("dassl", "dassl.data", "dassl.data.datasets", module.__name__):
        monkeypatch.delitem(sys.modules, name)  # reading must not need dassl
    ds = load_dataset("EuroSAT", tmp_path, shots=1, seed=3)
    assert [(i.path, i.label) for i in ds.train] == [(str(tmp_path / "eurosat/2750/b/train_1.jpg"), 1)]
    assert Path(ds.val[0].path).is_file()


def test_unpickler_refuses_other_objects(tmp_path):
    split_json_dataset(tmp_path, "eurosat", "2750", "split_zhou_EuroSAT.json", ["a", "b"])
    (tmp_path / "eurosat" / "split_fewshot").mkdir()
    (tmp_path / "eurosat" / "split_fewshot" / "shot_1-seed_1.pkl").write_bytes(pickle.dumps({"train": [Path("x")]}))
    with pytest.raises(ShipError, match=r"cannot read CoOp's few-shot file .*shot_1-seed_1.pkl \(UnpicklingError: "
                                         r"unexpected object pathlib"):
        load_dataset("EuroSAT", tmp_path, shots=1, seed=1)  # never another sample of other images
    assert not (tmp_path / "eurosat" / "split_fewshot" / "shot_1-seed_1.json").exists()


@pytest.mark.parametrize("content", [b"", b"not a pickle", pickle.dumps([1, 2]), pickle.dumps({"val": []})])
def test_an_unreadable_coop_fewshot_file_is_one_error_naming_it(tmp_path, content):
    split_json_dataset(tmp_path, "eurosat", "2750", "split_zhou_EuroSAT.json", ["a", "b"])
    (tmp_path / "eurosat" / "split_fewshot").mkdir()
    (tmp_path / "eurosat" / "split_fewshot" / "shot_1-seed_1.pkl").write_bytes(content)
    with pytest.raises(ShipError, match=r"cannot read CoOp's few-shot file .*shot_1-seed_1.pkl .*Move it away"):
        load_dataset("EuroSAT", tmp_path, shots=1, seed=1)
