"""Cross-dataset transfer: train on every class of a source dataset with the targets' names as label-only
classes, then evaluate on each target over all its classes (fake CoOp datasets, tiny CLIP)."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from trainers.ship.__main__ import main
from trainers.ship.common.errors import ShipError
from trainers.ship.run.protocol_data import cross_dataset_label_only

from .helpers import assert_png, split_json_dataset

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ["cat", "dog", "car", "tree"]
EUROSAT = ["Forest", "River", "Dog"]  # "Dog" is a source class already
DTD = ["banded", "river", "dotted"]  # "river" is a class of the other target already
FAST = ["TRAINER.SHIP.GEN_EPOCHS", "2", "TRAINER.COOP.EPOCHS", "2", "TRAINER.COCOOP.EPOCHS", "2",
        "TRAINER.SHIP.AUG_PASSES", "1", "DATALOADER.NUM_WORKERS", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("DATA")
    split_json_dataset(root, "caltech-101", "101_ObjectCategories", "split_zhou_Caltech101.json", SOURCE, (4, 1, 2))
    split_json_dataset(root, "eurosat", "2750", "split_zhou_EuroSAT.json", EUROSAT, (4, 1, 3))
    split_json_dataset(root, "dtd", "images", "split_zhou_DescribableTextures.json", DTD, (4, 1, 2))
    return root


def test_label_only_classes_are_the_targets_names_once_each(data, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("zebra\nforest\n\n")
    names_, index = cross_dataset_label_only(["eurosat", "dtd", str(names)], str(data), SOURCE)
    assert names_ == ["Forest", "River", "banded", "dotted", "zebra"]
    # every target class by identity: its own column after the 4 source classes, or the column of the known class
    # whose name it shares ("Dog" is the source's dog, dtd's "river" is EuroSAT's River, "forest" is Forest)
    assert index == {"EuroSAT#0": 4, "EuroSAT#1": 5, "EuroSAT#2": 1, "DescribableTextures#0": 6,
                     "DescribableTextures#1": 5, "DescribableTextures#2": 7, f"{names}#0": 8, f"{names}#1": 4}
    with pytest.raises(ShipError, match="class-name file not found"):
        cross_dataset_label_only([str(tmp_path / "missing.txt")], str(data), SOURCE)
    with pytest.raises(ShipError, match="unknown dataset 'nowhere'"):
        cross_dataset_label_only(["nowhere"], str(data), SOURCE)


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.mark.parametrize("trainer", ["SHIP_CoOp", "CoCoOp", "SHIP_TipAdapter", "TipAdapter", "ZeroshotCLIP"])
def test_train_on_source_then_evaluate_on_each_target(data, tmp_path, tiny_clip_path, trainer, capsys):
    common = ["--root", data, "--weights", tiny_clip_path, "--shots", 2, "--trainer", trainer,
              "--cache-dir", tmp_path / "cache", *FAST, "DATASET.LABEL_ONLY_FROM", "['eurosat', 'dtd']"]
    out = run(["--dataset", "caltech101", "--output-dir", tmp_path / "src"] + common, capsys)
    source = json.loads((tmp_path / "src" / "results.json").read_text())
    assert (source["protocol"], source["dataset"], source["source"]) == ("xd", "Caltech101", "Caltech101")
    assert (source["num_base"], source["num_new"], source["num_label_only"]) == (4, 0, 4)
    assert source["reports"]["all"]["total"] == 4 * 2 and 0 <= source["accuracy"] <= 100
    if trainer.startswith("SHIP"):
        assert "label-only classes: 4" in out and (tmp_path / "src" / "generator").is_dir()
        assert_png(tmp_path / "src" / "feature_map.png")

    for target, classes, n_test in (("eurosat", EUROSAT, 3), ("dtd", DTD, 2)):
        out = run(["--dataset", target, "--output-dir", tmp_path / target, "--eval-only",
                   "--model-dir", tmp_path / "src"] + common, capsys)
        result = json.loads((tmp_path / target / "results.json").read_text())
        assert (result["protocol"], result["source"], result["trainer"]) == ("xd", "Caltech101", trainer)
        assert result["num_base"] == len(classes) and result["reports"]["all"]["total"] == len(classes) * n_test
        assert "generator epoch" not in out and "* accuracy" in (tmp_path / target / "log.txt").read_text()
        if trainer != "ZeroshotCLIP":
            assert "Loaded" in out
        if trainer.endswith("TipAdapter"):  # every target class has a cache column: keys for SHIP, zero votes for plain
            assert "have no cache entries" not in out


def test_cross_dataset_needs_all_classes_evaluated(data, tmp_path, tiny_clip_path, capsys):
    code = main([str(a) for a in ["--dataset", "caltech101", "--root", data, "--weights", tiny_clip_path,
                                  "--output-dir", tmp_path / "r", "DATASET.LABEL_ONLY_FROM", "['dtd']",
                                  "DATASET.SUBSAMPLE_CLASSES", "gzsl"]])
    assert code == 2 and "DATASET.SUBSAMPLE_CLASSES must be all" in capsys.readouterr().err


def test_xd_scripts_then_table_and_bars(data, tmp_path, tiny_clip_path):
    env = {**os.environ, "DATA": str(data), "OUTPUT": str(tmp_path / "out"), "SHOTS": "2", "SOURCE": "caltech101",
           "TARGETS": "eurosat dtd", "CFG": "vit_b16", "DOWNLOAD": "0", "BACKEND": "core"}
    fast = ["MODEL.BACKBONE.WEIGHTS", str(tiny_clip_path), "CACHE_DIR", str(tmp_path / "cache"), *FAST]
    for script, args in (("xd_train.sh", ["1"]), ("xd_test.sh", ["eurosat", "1"]), ("xd_test.sh", ["dtd", "1"])):
        proc = subprocess.run(["bash", f"scripts/ship/{script}", *args, *fast], cwd=ROOT, capture_output=True,
                              text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
    source = json.loads((tmp_path / "out/xd/caltech101/SHIP_CoOp/vit_b16_2shots/seed1/results.json").read_text())
    assert source["label_only_from"] == ["eurosat", "dtd"] and source["num_label_only"] == 4
    target = json.loads((tmp_path / "out/xd/evaluation/SHIP_CoOp/vit_b16_2shots/dtd/seed1/results.json").read_text())
    table = (tmp_path / "out/xd/summary/table.md").read_text()
    assert "| cross-dataset | route | config | seeds | Caltech101 (source) | DescribableTextures | EuroSAT | average |" in table
    assert f"| SHIP_CoOp | core | vit_b16_2shots | 1 | {source['accuracy']:.2f} ± n/a | {target['accuracy']:.2f} ± n/a |" in table  # one seed
    assert_png(tmp_path / "out/xd/summary/bars_xd.png")
