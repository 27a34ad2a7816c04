"""``python -m trainers.ship`` end to end on image folders with the tiny CLIP, and its error lines."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainers.ship.__main__ import main
from trainers.ship.methods import trainer_names

from .helpers import CALTECH, assert_png, read_scalars, write_image_folder

FAST = ["TRAINER.SHIP.GEN_EPOCHS", "3", "TRAINER.SHIP.AUG_PASSES", "2", "DATALOADER.NUM_WORKERS", "0",
        *[w for node in ("COOP", "COCOOP", "KGCOOP", "PROGRAD", "CLIPADAPTER") for w in (f"TRAINER.{node}.EPOCHS", "3")]]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data") / "toy", ["cat", "dog", "car", "tree", "boat"], per_class=6)


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("trainer", trainer_names())
def test_base2new_run_writes_dassl_log_and_results(tmp_path, folder, tiny_clip_path, trainer, capsys):
    out_dir = tmp_path / "run"
    argv = ["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--seed", 1, "--trainer", trainer,
            "--output-dir", out_dir, "--cache-dir", tmp_path / "cache", *FAST]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    log = (out_dir / "log.txt").read_text()
    accuracies = [float(a) for a in re.findall(r"\* accuracy: ([\d.]+)%", log)]
    results = json.loads((out_dir / "results.json").read_text())
    assert results["trainer"] == trainer and (results["num_base"], results["num_new"]) == (3, 2)
    assert accuracies == pytest.approx([results["base"], results["new"]], abs=0.006)
    assert results["hm"] == pytest.approx(2 * results["base"] * results["new"] / max(results["base"] + results["new"], 1e-9))
    assert results["reports"]["base"]["total"] + results["reports"]["new"]["total"] == 5 * 2  # 6 images per class: 3 train, 1 val, 2 test
    if trainer.startswith("SHIP"):
        assert (out_dir / "generator" / "model.pth.tar-3").is_file()
        assert_png(out_dir / "feature_map.png")
    if trainer.endswith("CoOp"):
        assert (out_dir / "prompt_learner" / "model.pth.tar-3").is_file()
    if trainer.endswith("TipAdapter"):
        assert (out_dir / "tip_adapter" / "model.pth.tar-0").is_file() and "Tip-Adapter search on val" in log

    # A second run reuses the cached features and the finished checkpoints, with the same result.
    code, out, err = run(argv, capsys)
    assert code == 0 and "saved to" not in out
    if trainer != "ZeroshotCLIP":
        assert "Loaded finished stage" in out
    assert json.loads((out_dir / "results.json").read_text())["hm"] == results["hm"]


def test_config_file_and_overrides(tmp_path, folder, tiny_clip_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("TRAINER:\n  SHIP:\n    GEN_EPOCHS: 2\n    AUG_PASSES: 1\n  COOP:\n    EPOCHS: 2\n")
    argv = ["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 1, "--output-dir", tmp_path / "r",
            "--cache-dir", tmp_path / "cache", "--config-file", cfg, "DATALOADER.NUM_WORKERS", "0",
            "TRAINER.SHIP.SYN_POOL_PER_CLASS", "4"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "generator epoch [2/2]" in out and "prompt learner epoch [2/2]" in out and "SYN_POOL_PER_CLASS: 4" in out
    # a config written before each method had its node: one line saying where the key went
    cfg.write_text("TRAINER:\n  SHIP:\n    COOP_EPOCHS: 2\n")
    code, out, err = run(argv, capsys)
    assert code == 2 and err.count("\n") == 1 and "TRAINER.SHIP.COOP_EPOCHS moved to TRAINER.COOP.EPOCHS" in err
    cfg.write_text("TRAINER:\n  SHIP:\n    GEN_EPOCHS: 2\n")
    code, out, err = run(argv[:-2] + ["TRAINER.SHIP.TIP_EPOCHS", "3"], capsys)
    assert code == 2 and "TRAINER.SHIP.TIP_EPOCHS moved to TRAINER.TIPADAPTER.EPOCHS (command line)" in err


@pytest.mark.parametrize("case", ["missing data", "unknown backbone", "missing weights", "corrupt weights",
                                  "config typo", "bad value", "no label-only classes", "bad shots", "no data",
                                  "missing DATA root", "unknown dataset", "missing split file", "bad subset",
                                  "eval-only without model", "missing checkpoint"])
def test_bad_input_is_one_error_line(tmp_path, folder, tiny_clip_path, capsys, case):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(tiny_clip_path.read_bytes()[:1000])
    (tmp_path / "DATA" / "eurosat" / "2750" / "Forest").mkdir(parents=True)  # a dataset folder without its split file
    out = tmp_path / "r"
    (out / "prompt_learner").mkdir(parents=True)  # finished work of an earlier run must survive the failure
    finished = {out / "results.json": '{"base": 1}', out / "prompt_learner" / "model.pth.tar-200": "weights"}
    for path, text in finished.items():
        path.write_text(text)
    base = ["--output-dir", out, "--cache-dir", tmp_path / "cache"]
    catalog = ["--weights", tiny_clip_path, "--root"]
    argv, expected = {
        "missing data": (["--data-dir", tmp_path / "nope", "--weights", tiny_clip_path], "dataset folder not found"),
        "unknown backbone": (["--data-dir", folder, "--backbone", "ViT-Z/9"], "unknown backbone 'ViT-Z/9'"),
        "missing weights": (["--data-dir", folder, "--weights", tmp_path / "w.pt"], "CLIP weights file not found"),
        "corrupt weights": (["--data-dir", folder, "--weights", corrupt], "corrupt CLIP weights file"),
        "config typo": (["--data-dir", folder, "TRAINER.SHIP.GEN_EPOCS", "3"], "Non-existent key: TRAINER.SHIP.GEN_EPOCS"),
        "bad value": (["--data-dir", folder, "TRAINER.SHIP.GEN_EPOCHS", "many"], "Type mismatch"),
        "no label-only classes": (["--data-dir", folder, "--weights", tiny_clip_path, "--num-base", 5], "label-only"),
        "bad shots": (["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 0], "DATASET.NUM_SHOTS 0 is not allowed"),
        "no data": ([], "no data given"),
        "missing DATA root": (["--dataset", "eurosat", *catalog, tmp_path / "nowhere"], "DATA root not found"),
        "unknown dataset": (["--dataset", "eurosatt", *catalog, tmp_path / "DATA"], "unknown dataset 'eurosatt'"),
        "missing split file": (["--dataset", "eurosat", *catalog, tmp_path / "DATA"], "EuroSAT split file not found"),
        "bad subset": (["--data-dir", folder, "--weights", tiny_clip_path, "DATASET.SUBSAMPLE_CLASSES", "novel"],
                       "DATASET.SUBSAMPLE_CLASSES 'novel' is not allowed; expected one of all, base, new, gzsl"),
        "eval-only without model": (["--data-dir", folder, "--eval-only"], "--eval-only needs --model-dir"),
        "missing checkpoint": (["--data-dir", folder, "--weights", tiny_clip_path, "--eval-only", "--model-dir",
                                tmp_path / "none", *FAST], "run folder not found"),
    }[case]
    code, out, err = run(base + argv, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err, err
    assert "Traceback" not in out + err
    assert all(path.read_text() == text for path, text in finished.items())


def test_module_entry_point_runs_as_a_subprocess(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "trainers.ship", "--data-dir", str(tmp_path / "missing")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: dataset folder not found")


@pytest.mark.skipif(not (CALTECH / "split_zhou_Caltech101.json").is_file(), reason="../shared/data/caltech-101 is not present")
def test_real_caltech101_base2new_in_coop_layout(tmp_path, tiny_clip_path, capsys):
    data = tmp_path / "DATA"  # a DATA root of our own: the shared folder is never written to
    (data / "caltech-101").mkdir(parents=True)
    (data / "caltech-101" / "101_ObjectCategories").symlink_to(CALTECH / "101_ObjectCategories")
    (data / "caltech-101" / "split_zhou_Caltech101.json").write_bytes((CALTECH / "split_zhou_Caltech101.json").read_bytes())
    code, out, err = run(["--dataset", "caltech101", "--root", data, "--weights", tiny_clip_path, "--shots", 1,
                          "--output-dir", tmp_path / "r", "--cache-dir", tmp_path / "cache",
                          *FAST, "DATALOADER.NUM_WORKERS", "2"], capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["dataset"] == "Caltech101" and (results["num_base"], results["num_new"]) == (50, 50)
    assert (results["reports"]["base"]["total"], results["reports"]["new"]["total"]) == (1549, 916)
    assert (data / "caltech-101" / "split_fewshot" / "shot_1-seed_1.json").is_file()


@pytest.mark.parametrize("trainer", ["SHIP_CoOp", "SHIP_TipAdapter"])
def test_eval_only_reads_the_trained_run(tmp_path, folder, tiny_clip_path, trainer, capsys):
    common = ["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--trainer", trainer,
              "--cache-dir", tmp_path / "cache"]
    assert run(common + ["--output-dir", tmp_path / "train", *FAST, "DATASET.SUBSAMPLE_CLASSES", "base"], capsys)[0] == 0
    code, out, err = run(common + ["--output-dir", tmp_path / "test", "--eval-only", "--model-dir", tmp_path / "train",
                                   *FAST, "DATASET.SUBSAMPLE_CLASSES", "new"], capsys)
    assert code == 0, err
    assert "Loaded" in out and "generator epoch" not in out and "Evaluate on the base" not in out
    assert "train features" not in out  # evaluation reads no training images
    results = json.loads((tmp_path / "test" / "results.json").read_text())
    assert "new" in results and "base" not in results and "hm" not in results
    full = run(common + ["--output-dir", tmp_path / "both", "--eval-only", "--model-dir", tmp_path / "train", *FAST], capsys)
    assert full[0] == 0 and json.loads((tmp_path / "both" / "results.json").read_text())["new"] == results["new"]
    # another evaluation subset in the training folder reuses the trained stages
    code, out, err = run(common + ["--output-dir", tmp_path / "train", *FAST, "DATASET.SUBSAMPLE_CLASSES", "gzsl"], capsys)
    assert code == 0 and "Loaded finished stage" in out and "generator epoch" not in out, err
    # so does another size of the feature map (a figure drawn after training)
    code, out, err = run(common + ["--output-dir", tmp_path / "train", *FAST, "TRAINER.SHIP.FEATURE_MAP", "3"], capsys)
    assert code == 0 and "Loaded finished stage" in out and "generator epoch" not in out, err
    assert "Map of real and synthetic features" in out  # drawn with the generator the run handed on


@pytest.mark.parametrize("trainer", ["SHIP_CoOp", "SHIP_TipAdapter"])
def test_gzsl_evaluation(tmp_path, folder, tiny_clip_path, trainer, capsys):
    code, out, err = run(["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--trainer", trainer,
                          "--output-dir", tmp_path / "g", "--cache-dir", tmp_path / "cache", *FAST,
                          "DATASET.SUBSAMPLE_CLASSES", "gzsl"], capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "g" / "results.json").read_text())
    assert "base" not in results and all(0 <= results[k] <= 100 for k in ("seen", "unseen", "hm"))
    assert results["hm"] == pytest.approx(2 * results["seen"] * results["unseen"] / max(results["seen"] + results["unseen"], 1e-9))
    log = (tmp_path / "g" / "log.txt").read_text()
    assert "3 seen + 2 unseen classes in one label space" in log and "* total: 10" in log and "* unseen:" in log


def test_coop_with_its_own_recipe_config(tmp_path, folder, tiny_clip_path, capsys):
    """CoOp's 16 random context tokens, momentum, weight decay and warm-up, from the shipped config."""
    code, out, err = run(["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--trainer", "CoOp",
                          "--output-dir", tmp_path / "r", "--cache-dir", tmp_path / "cache",
                          "--config-file", ROOT / "configs/trainers/SHIP/coop_vit_b16_c16_ep50.yaml",
                          *FAST, "TRAINER.COOP.EPOCHS", "3"], capsys)
    assert code == 0, err
    state = torch.load(tmp_path / "r" / "prompt_learner" / "model.pth.tar-3", weights_only=True)["state_dict"]
    assert state["ctx"].shape[0] == 16
    assert "  COOP:\n    BATCH_SIZE: 32" in out and "    WARMUP_EPOCHS: 1\n" in out and "    MOMENTUM: 0.9\n" in out


def test_a_run_writes_tensorboard_scalars(tmp_path, folder, tiny_clip_path, capsys):
    """OUTPUT_DIR/tensorboard holds, as Dassl's trainers write it, the generator's and the head's per-epoch scalars
    (step: the epoch) and the final test accuracies; the log line of an epoch carries the same training accuracy."""
    argv = ["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 1, "--output-dir", tmp_path / "r",
            "--cache-dir", tmp_path / "cache", "--trainer", "SHIP_KgCoOp", "DATALOADER.NUM_WORKERS", "0",
            "TRAINER.SHIP.GEN_EPOCHS", "2", "TRAINER.SHIP.AUG_PASSES", "1", "TRAINER.KGCOOP.EPOCHS", "3"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "SHIP_KgCoOp: head recipe ship (TRAINER.SHIP.HEAD_RECIPE)" in out and "momentum 0.0 (the method's 0.9)" in out
    assert re.search(r"prompt learner epoch \[3/3\] loss \S+ acc \S+ lr ", out)
    scalars = read_scalars(tmp_path / "r" / "tensorboard")
    for tag in ("generator/loss", "generator/rec", "generator/kl", "generator/lr"):
        assert scalars[tag] == [1, 2], tag
    for tag in ("SHIP_KgCoOp/loss", "SHIP_KgCoOp/acc", "SHIP_KgCoOp/lr"):
        assert scalars[tag] == [1, 2, 3], tag
    assert {"test/base", "test/new", "test/H"} <= set(scalars)


def test_features_only_extracts_the_runs_sets_and_nothing_else(tmp_path, folder, tiny_clip_path, capsys):
    """``--features-only``: every set the run reads lands in CACHE_DIR and no run folder is written; the run itself
    then encodes nothing, with the result of a run that extracted its own features."""
    base = ["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--trainer", "SHIP_TipAdapter"]
    code, out, err = run([*base, "--output-dir", tmp_path / "never", "--cache-dir", tmp_path / "cache", "--features-only",
                          *FAST], capsys)
    assert code == 0, err
    assert out.count(" passes saved to ") == 3 and not (tmp_path / "never").exists()  # train crops, val, test
    assert "features only: 3 feature set(s) of" in out
    code, out, err = run([*base, "--output-dir", tmp_path / "run", "--cache-dir", tmp_path / "cache", *FAST], capsys)
    assert code == 0 and " passes saved to " not in out and out.count(" passes from ") == 3, out + err
    code, _, err = run([*base, "--output-dir", tmp_path / "alone", "--cache-dir", tmp_path / "own", *FAST], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "run/results.json").read_text())["hm"] == \
        json.loads((tmp_path / "alone/results.json").read_text())["hm"]


def test_feature_set_names_one_set_of_the_run(tmp_path, folder, tiny_clip_path, capsys):
    base = ["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--trainer", "CoOp", "--cache-dir",
            tmp_path / "cache"]
    code, _, err = run([*base, "--features-only", "--feature-set", "0123456789abcdef", *FAST], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: --feature-set 0123456789abcdef is not a feature set of this run; its sets: ")
    assert "(train)" in err and "(test)" in err
    test_key = re.search(r"(\w{16}) \(test\)", err)[1]
    code, out, err = run([*base, "--features-only", "--feature-set", test_key, *FAST], capsys)
    assert code == 0 and out.count(" passes saved to ") == 1 and "test features: " in out, err
    code, _, err = run([*base, "--feature-set", test_key, *FAST], capsys)
    assert code == 2 and err == "error: --feature-set needs --features-only (it names which of the run's feature sets to extract)\n"
