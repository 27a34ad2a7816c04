import json
import random

import pytest

from datasets.image_folder import read_image_folder
from datasets.splits import DatasetSplits, Item, base_new_split, few_shot_splits, sample_few_shot, subsample_classes
from trainers.ship.common.errors import ShipError

from .helpers import CALTECH, write_image_folder

needs_caltech = pytest.mark.skipif(not (CALTECH / "split_zhou_Caltech101.json").is_file(),
                                   reason="../shared/data/caltech-101 is not present")


def test_image_folder_split_is_fixed_and_disjoint(tmp_path):
    root = write_image_folder(tmp_path / "toy", ["b_cls", "a_cls", "c_cls"], per_class=10)
    d = read_image_folder(root)
    assert d.classnames == ["a cls", "b cls", "c cls"] and d.name == "toy"
    assert (len(d.train), len(d.val), len(d.test)) == (15, 6, 9)
    paths = [i.path for i in d.train + d.val + d.test]
    assert len(set(paths)) == 30
    assert [i.path for i in read_image_folder(root).train] == [i.path for i in d.train]  # same split every time
    assert all(i.classname == d.classnames[i.label] for i in d.test)


def test_image_folder_errors(tmp_path):
    with pytest.raises(ShipError, match=r"dataset folder not found: .*missing"):
        read_image_folder(tmp_path / "missing")
    (tmp_path / "one" / "only").mkdir(parents=True)
    with pytest.raises(ShipError, match="at least 2"):
        read_image_folder(tmp_path / "one")
    (tmp_path / "one" / "empty").mkdir()
    with pytest.raises(ShipError, match=r"has no images"):
        read_image_folder(tmp_path / "one")


def test_split_file_errors(tmp_path):
    root = write_image_folder(tmp_path / "toy", ["a", "b"], per_class=2)
    with pytest.raises(ShipError, match=r"split file not found: .*none\.json"):
        read_image_folder(root, tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train": [["a/x.jpg", 0]]}))
    with pytest.raises(ShipError, match=r"bad split file .*bad\.json"):
        read_image_folder(root, bad)


@pytest.mark.parametrize("seed,shots", [(1, 1), (1, 5), (7, 5), (2, 16)])
def test_few_shot_sets_equal_dassls_own_function(tmp_path, seed, shots):
    """Dassl's generate_fewshot_dataset itself, after set_random_seed, train then val as CoOp's readers call it
    (where Dassl is not installed, tests/test_reference_equivalence.py compares with outputs recorded from it)."""
    pytest.importorskip("dassl", reason="calls Dassl's sampler: install Dassl.pytorch (docs/running_with_dassl.md)")
    from dassl.data.datasets.base_dataset import DatasetBase, Datum
    from dassl.utils import set_random_seed

    items = [Item(str(tmp_path / f"{c}_{i}.jpg"), c, f"class{c}") for i in range(12) for c in (3, 1, 2, 0)]
    for item in items:  # Dassl's Datum insists on an existing file
        open(item.path, "w").close()
    data = [Datum(i.path, i.label, 0, i.classname) for i in items]
    set_random_seed(seed)
    sampler = DatasetBase.__new__(DatasetBase)  # the method reads nothing from the instance but a helper
    train = sampler.generate_fewshot_dataset(data, num_shots=shots)
    val = sampler.generate_fewshot_dataset(data, num_shots=min(shots, 4))
    ours = few_shot_splits(DatasetSplits("t", [f"class{c}" for c in range(4)], items, items, []), shots, seed)
    assert [i.path for i in ours.train] == [d.impath for d in train]
    assert [i.path for i in ours.val] == [d.impath for d in val]
    assert len(sample_few_shot(items[:8], 5, random.Random(0))) == 8  # fewer than shots: keep all, as Dassl


def test_base_new_subsampling_protocol():
    assert base_new_split(5) == ([0, 1, 2], [3, 4])  # ceil(n/2) base
    assert base_new_split(4, num_base=1) == ([0], [1, 2, 3])
    with pytest.raises(ShipError, match="label-only"):
        base_new_split(4, num_base=4)
    items = [Item(f"{c}.jpg", c, f"n{c}") for c in range(5)]
    d = DatasetSplits("t", [f"n{c}" for c in range(5)], items, items, items)
    new = subsample_classes(d, "new")
    assert new.classnames == ["n3", "n4"] and [(i.label, i.classname) for i in new.test] == [(0, "n3"), (1, "n4")]
    assert subsample_classes(d, "all") is d


@needs_caltech
def test_real_caltech101_with_coop_split():
    d = read_image_folder(CALTECH / "101_ObjectCategories", CALTECH / "split_zhou_Caltech101.json", "caltech101")
    assert d.num_classes == 100 and (len(d.train), len(d.val), len(d.test)) == (4128, 1649, 2465)
    assert d.classnames[0] == "face" and "BACKGROUND_Google" not in d.classnames
    f = few_shot_splits(d, 16, seed=1)
    assert (len(f.train), len(f.val)) == (1600, 400)
    base, new = subsample_classes(f, "base"), subsample_classes(f, "new")
    assert (len(base.train), len(base.test), len(new.test)) == (800, 1549, 916)
