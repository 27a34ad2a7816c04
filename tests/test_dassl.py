"""The Dassl path: ``python train.py --trainer SHIP_CoOp`` (needs dassl) and its message without dassl."""
import importlib.util
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import read_scalars

ROOT = Path(__file__).resolve().parents[1]
HAS_DASSL = importlib.util.find_spec("dassl") is not None


@pytest.mark.skipif(HAS_DASSL, reason="dassl is installed")
def test_train_py_without_dassl_says_how_to_install():
    proc = subprocess.run([sys.executable, "train.py", "--trainer", "SHIP_CoOp"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "pip install --no-build-isolation -e ." in proc.stderr  # the command that builds Dassl under numpy 2
    assert "python -m trainers.ship" in proc.stderr and proc.stderr.count("\n") == 1


def train_py(args, cwd=ROOT):
    return subprocess.run([sys.executable, "train.py", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)


def accuracies(log: Path) -> list[float]:
    return [float(a) for a in re.findall(r"\* accuracy: ([\d.]+)%", log.read_text())]


def test_dassl_base_to_new_train_eval_and_resume(tmp_path, eurosat_root, tiny_clip_path):
    pytest.importorskip("dassl")
    common = ["--root", eurosat_root, "--seed", 1, "--trainer", "SHIP_CoOp",
              "--dataset-config-file", "configs/datasets/eurosat.yaml", "--config-file", "configs/trainers/SHIP/vit_b16.yaml"]
    fast = ["DATASET.NUM_SHOTS", 2, "MODEL.BACKBONE.WEIGHTS", tiny_clip_path, "TRAINER.SHIP.GEN_EPOCHS", 2,
            "TRAINER.COOP.EPOCHS", 3, "TRAINER.SHIP.AUG_PASSES", 1, "CACHE_DIR", tmp_path / "cache",
            "DATALOADER.NUM_WORKERS", 0]
    train_dir = tmp_path / "train_base"
    proc = train_py(common + ["--output-dir", train_dir] + fast + ["DATASET.SUBSAMPLE_CLASSES", "base"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (train_dir / "log.txt").read_text()
    assert "generator epoch [2/2]" in log and "epoch [3/3]" in log
    assert "config file: configs/trainers/SHIP/vit_b16.yaml; dataset config file: configs/datasets/eurosat.yaml" in log
    assert (train_dir / "prompt_learner" / "model.pth.tar-3").is_file() and (train_dir / "generator").is_dir()
    assert len(accuracies(train_dir / "log.txt")) == 1 and "* total: 4" in log  # 2 base classes x 2 test images
    assert (train_dir / "feature_map.png").is_file() and "Map of real and synthetic features" in log  # as the core's

    test_dir = tmp_path / "test_new"
    proc = train_py(common + ["--output-dir", test_dir, "--model-dir", train_dir, "--load-epoch", 3, "--eval-only"]
                    + fast + ["DATASET.SUBSAMPLE_CLASSES", "new"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(accuracies(test_dir / "log.txt")) == 1 and "model.pth.tar-3" in (test_dir / "log.txt").read_text()
    assert not (test_dir / "generator").exists()  # evaluation never trains the generator
    assert "train features" not in (test_dir / "log.txt").read_text()  # nor reads training images

    # A finished run resumes at its last epoch: nothing is trained again.
    proc = train_py(common + ["--output-dir", train_dir] + fast + ["DATASET.SUBSAMPLE_CLASSES", "base"])
    assert proc.returncode == 0 and "Resumed from" in proc.stdout and "epoch [1/3]" not in proc.stdout

    bad = train_py(common + ["--output-dir", tmp_path / "x"] + fast + ["TRAINER.SHIP.GEN_EPOCS", 1])
    assert bad.returncode == 2 and "GEN_EPOCS" in bad.stderr

    # training on the new classes (no --eval-only) would train images of one class under another's name: refused
    bad = train_py(common + ["--output-dir", tmp_path / "new"] + fast + ["DATASET.SUBSAMPLE_CLASSES", "new"])
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: DATASET.SUBSAMPLE_CLASSES new is for evaluation")
    assert bad.stderr.count("\n") == 1 and not (tmp_path / "new" / "setup.json").exists()


@pytest.mark.parametrize("setting, line", [
    (["TRAINER.SHIP.AUG_PASSES", 0], "error: TRAINER.SHIP.AUG_PASSES 0 is not allowed; expected an integer >= 1"),
    (["TEST.SELECTION", "paper"], "error: TEST.SELECTION paper is not run by SHIP_CoOp under train.py"),
])
def test_a_bad_or_core_only_setting_is_one_line_before_any_data(tmp_path, setting, line):
    """The core's declared ranges, and the core's TEST keys, under Dassl's train.py: one line, exit 2."""
    pytest.importorskip("dassl")
    proc = train_py(["--root", tmp_path / "no-data", "--seed", 1, "--trainer", "SHIP_CoOp", "--output-dir", tmp_path / "out",
                     "--dataset-config-file", "configs/datasets/eurosat.yaml",
                     "--config-file", "configs/trainers/SHIP/vit_b16.yaml", *setting])
    assert proc.returncode == 2 and proc.stderr.startswith(line) and proc.stderr.count("\n") == 1, proc.stderr[-2000:]


@pytest.mark.parametrize("bad", ["trainer", "seed", "root", "yaml"])
def test_bad_trainer_seed_root_or_config_file_is_one_line_before_anything_is_created(tmp_path, eurosat_root, bad):
    """train.py refuses these before Dassl seeds, opens log.txt or reads the data: no output folder, and nothing
    created under the DATA root (CoOp's readers write split_fewshot/ there)."""
    pytest.importorskip("dassl")
    args = {"--root": eurosat_root, "--seed": 1, "--trainer": "SHIP_CoOp", "--output-dir": tmp_path / "out",
            "--dataset-config-file": "configs/datasets/eurosat.yaml", "--config-file": "configs/trainers/SHIP/vit_b16.yaml"}
    line = {"trainer": "error: unknown trainer 'SHIP_Coop'", "seed": "error: SEED 4294967296 is not allowed; expected an integer in [0, 4294967295]; pass --seed",
            "root": f"error: DATA root not found: {tmp_path / 'no-DATA'}", "yaml": f"error: bad config file {tmp_path / 'bad.yaml'}, line 3"}[bad]
    args.update({"trainer": {"--trainer": "SHIP_Coop"}, "seed": {"--seed": 2**32}, "root": {"--root": tmp_path / "no-DATA"},
                 "yaml": {"--config-file": tmp_path / "bad.yaml"}}[bad])
    (tmp_path / "bad.yaml").write_text("TRAINER:\n  SHIP: [1\n  X: 2\n")
    before = sorted(eurosat_root.rglob("*"))
    proc = train_py([w for pair in args.items() for w in pair])
    assert proc.returncode == 2 and proc.stderr.startswith(line) and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert not (tmp_path / "out").exists() and not (tmp_path / "no-DATA").exists() and sorted(eurosat_root.rglob("*")) == before


def test_evaluating_a_killed_run_names_it_unfinished_in_the_console_and_log(tmp_path, eurosat_root, tiny_clip_path):
    """kill -9 leaves a run without setup.json: the evaluation says it is unfinished and what to do, in one line that
    also ends the evaluation's log.txt; the loader workers default to min(4, cores), as docs/reliability.md says."""
    pytest.importorskip("dassl")
    from trainers.ship.common.run_log import usable_cpus

    killed = tmp_path / "train_base"
    (killed / "generator").mkdir(parents=True)
    (killed / "log.txt").write_text("generator epoch [1/50] ...\n")
    out = tmp_path / "test_new"
    proc = train_py(["--root", eurosat_root, "--seed", 1, "--trainer", "SHIP_CoOp", "--output-dir", out,
                     "--dataset-config-file", "configs/datasets/eurosat.yaml", "--config-file", "configs/trainers/SHIP/vit_b16.yaml",
                     "--eval-only", "--model-dir", killed, "DATASET.NUM_SHOTS", 2, "MODEL.BACKBONE.WEIGHTS", tiny_clip_path,
                     "CACHE_DIR", tmp_path / "cache", "DATASET.SUBSAMPLE_CLASSES", "new"])
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert proc.stderr.startswith(f"error: {killed} holds an unfinished training run") and "resume it" in proc.stderr
    assert "older version" not in proc.stderr
    log = (out / "log.txt").read_text()
    assert log.splitlines()[-1] == proc.stderr.strip() and f"NUM_WORKERS: {min(4, usable_cpus())}" in log


def test_dassl_run_folder_safety_as_the_core(tmp_path, eurosat_root, tiny_clip_path):
    """setup.json written when the run finishes, with every class of the dataset; another setup in the folder, an
    evaluation into the training folder, and a checkpoint that does not fit are one line each; crops are seeded by
    the image's path relative to DATASET.ROOT (a copied dataset gives the same features)."""
    pytest.importorskip("dassl")
    import json
    import shutil

    import torch

    def common(root, seed=1):
        return ["--root", root, "--seed", seed, "--trainer", "SHIP_CoOp", "--dataset-config-file",
                "configs/datasets/eurosat.yaml", "--config-file", "configs/trainers/SHIP/vit_b16.yaml"]
    fast = ["DATASET.NUM_SHOTS", 2, "MODEL.BACKBONE.WEIGHTS", tiny_clip_path, "TRAINER.SHIP.GEN_EPOCHS", 1,
            "TRAINER.COOP.EPOCHS", 1, "TRAINER.SHIP.AUG_PASSES", 1, "DATALOADER.NUM_WORKERS", 0]
    copy = tmp_path / "copy"
    shutil.copytree(eurosat_root, copy)
    runs = {}
    for name, root in (("train", eurosat_root), ("copied", copy)):
        runs[name] = tmp_path / name
        proc = train_py(common(root) + ["--output-dir", runs[name]] + fast
                        + ["DATASET.SUBSAMPLE_CLASSES", "base", "CACHE_DIR", tmp_path / f"cache-{name}"])
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    setup = json.loads((runs["train"] / "setup.json").read_text())
    assert setup["class_names"] == ["AnnualCrop", "Forest", "Highway", "River"]  # base and new
    log = (runs["train"] / "log.txt").read_text()
    assert log.index("Finish training") < log.index("* accuracy")
    trained = [torch.load(next((tmp_path / f"cache-{n}").glob("*train*.pt")), weights_only=True) for n in runs]
    assert torch.equal(trained[0]["features"], trained[1]["features"])

    bad = train_py(common(eurosat_root, seed=2) + ["--output-dir", runs["train"]] + fast
                   + ["DATASET.SUBSAMPLE_CLASSES", "base", "CACHE_DIR", tmp_path / "cache-train"])
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr[-2000:]
    assert "holds a finished run of another setup (seed 1 (this run: 2))" in bad.stderr
    assert json.loads((runs["train"] / "setup.json").read_text())["seed"] == 1

    def evaluate(out):
        return train_py(common(eurosat_root) + ["--model-dir", runs["train"], "--eval-only", "--output-dir", out] + fast
                        + ["DATASET.SUBSAMPLE_CLASSES", "new", "CACHE_DIR", tmp_path / "cache-train"])
    bad = evaluate(runs["train"])
    assert bad.returncode == 2 and "is the training run's folder" in bad.stderr and bad.stderr.count("\n") == 1
    checkpoint = next((runs["train"] / "prompt_learner").glob("model.pth.tar-*"))
    torch.save({"state_dict": {"ctx": torch.zeros(3)}, "epoch": 1}, checkpoint)  # another method's head
    bad = evaluate(tmp_path / "eval")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr[-2000:]
    assert "does not fit SHIP_CoOp" in bad.stderr and "another method or for another number of classes" in bad.stderr

    marker = tmp_path / "code-ran"  # a checkpoint from someone else that runs code when unpickled
    torch.save({"state_dict": {}, "epoch": 1, "scheduler": _RunsCode(marker)}, checkpoint)
    bad = evaluate(tmp_path / "eval-code")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr[-2000:]
    assert f"refused checkpoint {checkpoint}" in bad.stderr and "nothing of it was run" in bad.stderr
    assert not marker.exists()


class _RunsCode:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_scripts_with_the_dassl_backend(tmp_path, eurosat_root, tiny_clip_path):
    pytest.importorskip("dassl")
    import os

    from trainers.ship.reports.summary import main as summary_main

    env = {**os.environ, "DATA": str(eurosat_root), "OUTPUT": str(tmp_path / "out"), "SHOTS": "2", "BACKEND": "dassl",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    fast = ["MODEL.BACKBONE.WEIGHTS", str(tiny_clip_path), "TRAINER.SHIP.GEN_EPOCHS", "2", "TRAINER.COOP.EPOCHS", "2",
            "TRAINER.SHIP.AUG_PASSES", "1", "DATALOADER.NUM_WORKERS", "0", "CACHE_DIR", str(tmp_path / "cache")]
    for script in ("base2new_train.sh", "base2new_test.sh"):
        proc = subprocess.run(["bash", f"scripts/ship/{script}", "eurosat", "1", *fast], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    test_log = tmp_path / "out/base2new/test_new/eurosat/shots_2/SHIP_CoOp/vit_b16/seed1/log.txt"
    assert "Loaded prompt learner" in test_log.read_text() and len(accuracies(test_log)) == 1
    # the Dassl route writes results.json after its final test, naming itself; setup.json names it too
    import json

    new = json.loads((test_log.parent / "results.json").read_text())
    assert new["backend"] == "dassl" and new["selection"] == "honest"
    assert new["new"] == pytest.approx(accuracies(test_log)[-1], abs=0.05)  # the log rounds to 0.1
    base_dir = tmp_path / "out/base2new/train_base/eurosat/shots_2/SHIP_CoOp/vit_b16/seed1"
    assert json.loads((base_dir / "setup.json").read_text())["backend"] == "dassl"
    assert summary_main([str(tmp_path / "out")]) == 0


@pytest.mark.parametrize("cfg", ["tip_adapter_vit_b16", "tip_adapter_f_vit_b16"])
def test_dassl_ship_tip_adapter_base_to_new(tmp_path, eurosat_root, tiny_clip_path, cfg):
    pytest.importorskip("dassl")
    common = ["--root", eurosat_root, "--seed", 1, "--trainer", "SHIP_TipAdapter",
              "--dataset-config-file", "configs/datasets/eurosat.yaml", "--config-file", f"configs/trainers/SHIP/{cfg}.yaml"]
    fast = ["DATASET.NUM_SHOTS", 2, "MODEL.BACKBONE.WEIGHTS", tiny_clip_path, "TRAINER.SHIP.GEN_EPOCHS", 2,
            "TRAINER.TIPADAPTER.EPOCHS", 2, "TRAINER.SHIP.AUG_PASSES", 1, "CACHE_DIR", tmp_path / "cache",
            "DATALOADER.NUM_WORKERS", 0]
    train_dir, test_dir = tmp_path / "train_base", tmp_path / "test_new"
    proc = train_py(common + ["--output-dir", train_dir] + fast + ["DATASET.SUBSAMPLE_CLASSES", "base"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (train_dir / "log.txt").read_text()
    assert "Tip-Adapter search on val" in log and "generator epoch [2/2]" in log and len(accuracies(train_dir / "log.txt")) == 1
    # the whole val split of the base classes, read with NUM_SHOTS 0 (data.search_val, as the core)
    assert "SHIP_TipAdapter searches on the whole val split of the 2 base classes (2 images)" in log
    if cfg.startswith("tip_adapter_f"):
        assert "Tip-Adapter-F epoch [2/2]" in log
    epoch = 2 if cfg.startswith("tip_adapter_f") else 0
    assert (train_dir / "tip_adapter" / f"model.pth.tar-{epoch}").is_file()
    proc = train_py(common + ["--output-dir", test_dir, "--model-dir", train_dir, "--eval-only"]
                    + fast + ["DATASET.SUBSAMPLE_CLASSES", "new"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Loaded tip adapter" in (test_dir / "log.txt").read_text() and len(accuracies(test_dir / "log.txt")) == 1


def test_dassl_gzsl_cross_dataset_and_best_val(tmp_path, tiny_clip_path):
    """Every protocol through train.py: GZSL (seen / unseen / H lines the summary reads), cross-dataset training
    with a target's names as label-only classes then evaluation on the target, and TEST.FINAL_MODEL best_val."""
    pytest.importorskip("dassl")
    from trainers.ship.reports.summary import collect

    from .helpers import split_json_dataset

    data = tmp_path / "DATA"
    split_json_dataset(data, "eurosat", "2750", "split_zhou_EuroSAT.json", ["Forest", "River", "Highway", "Pasture"], (4, 2, 2))
    split_json_dataset(data, "dtd", "images", "split_zhou_DescribableTextures.json", ["banded", "dotted", "river"], (4, 2, 2))
    common = ["--root", data, "--seed", 1, "--trainer", "SHIP_CoOp", "--config-file", "configs/trainers/SHIP/vit_b16.yaml"]
    fast = ["DATASET.NUM_SHOTS", 2, "MODEL.BACKBONE.WEIGHTS", tiny_clip_path, "TRAINER.SHIP.GEN_EPOCHS", 2,
            "TRAINER.COOP.EPOCHS", 3, "TRAINER.SHIP.AUG_PASSES", 1, "CACHE_DIR", tmp_path / "cache",
            "DATALOADER.NUM_WORKERS", 0]
    eurosat = ["--dataset-config-file", "configs/datasets/eurosat.yaml"]

    gzsl_dir = tmp_path / "out/gzsl/eurosat/shots_2/SHIP_CoOp/vit_b16/seed1"
    proc = train_py(common + eurosat + ["--output-dir", gzsl_dir] + fast + ["DATASET.SUBSAMPLE_CLASSES", "gzsl"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (gzsl_dir / "log.txt").read_text()
    assert "synthesises features of 2 label-only classes" in log and "2 seen + 2 unseen classes" in log
    assert all(f"* {k}: " in log for k in ("seen", "unseen", "hm"))
    groups, _ = collect(tmp_path / "out")
    assert [k[:3] for k in groups] == [("gzsl", "EuroSAT", "SHIP_CoOp")]

    src = tmp_path / "out/xd/eurosat/SHIP_CoOp/vit_b16/seed1"
    proc = train_py(common + eurosat + ["--output-dir", src] + fast
                    + ["DATASET.LABEL_ONLY_FROM", "['dtd']", "TEST.FINAL_MODEL", "best_val"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (src / "log.txt").read_text()
    # dtd's "river" is EuroSAT's River: 2 of dtd's 3 classes are new label-only classes
    assert "label-only classes from dtd: 2 of 3; 1 share the name" in log and "synthesises features of 2" in log
    assert (src / "prompt_learner" / "model-best.pth.tar").is_file() and "model-best.pth.tar" in log.split("Deploy")[-1]
    target = tmp_path / "out/xd/evaluation/SHIP_CoOp/vit_b16/dtd/seed1"
    proc = train_py(common + ["--dataset-config-file", "configs/datasets/dtd.yaml", "--output-dir", target,
                              "--eval-only", "--model-dir", src] + fast)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (target / "log.txt").read_text()
    assert "Cross-dataset evaluation" in log and len(accuracies(target / "log.txt")) == 1
    groups, sources = collect(tmp_path / "out")
    assert ("xd", "DescribableTextures", "SHIP_CoOp", "vit_b16", None, "dassl") in groups and sources == {"EuroSAT"}


@pytest.mark.parametrize("trainer", ["SHIP_CLIPAdapter", "SHIP_ProGrad"])
def test_dassl_registers_ship_for_every_registered_method(tmp_path, eurosat_root, tiny_clip_path, trainer):
    """train.py registers SHIP_<method> for each method of the registry: base, then new, as CoOp's scripts run."""
    pytest.importorskip("dassl")
    common = ["--root", eurosat_root, "--seed", 1, "--trainer", trainer, "--dataset-config-file",
              "configs/datasets/eurosat.yaml", "--config-file", "configs/trainers/SHIP/vit_b16.yaml"]
    fast = ["DATASET.NUM_SHOTS", 2, "MODEL.BACKBONE.WEIGHTS", tiny_clip_path, "TRAINER.SHIP.GEN_EPOCHS", 2,
            "TRAINER.SHIP.AUG_PASSES", 1, "TRAINER.CLIPADAPTER.EPOCHS", 2, "TRAINER.PROGRAD.EPOCHS", 2,
            "CACHE_DIR", tmp_path / "cache", "DATALOADER.NUM_WORKERS", 0]
    train_dir, test_dir = tmp_path / "train_base", tmp_path / "test_new"
    proc = train_py(common + ["--output-dir", train_dir] + fast + ["DATASET.SUBSAMPLE_CLASSES", "base"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (train_dir / "log.txt").read_text()
    assert "synthesises features of 2 label-only classes" in log and len(accuracies(train_dir / "log.txt")) == 1
    if trainer == "SHIP_CLIPAdapter":  # its recipe crops at (0.08, 1.0), the generator at AUG_SCALE (0.5, 1.0)
        assert ("the generator trains on features cropped at scale (0.5, 1.0) (TRAINER.SHIP.AUG_SCALE), the method on "
                "features cropped at (0.08, 1.0) (its CROP_SCALE)") in log
        assert len(list((tmp_path / "cache").glob("*train*"))) == 2
    stage = "clip_adapter" if trainer == "SHIP_CLIPAdapter" else "prompt_learner"
    assert (train_dir / stage / "model.pth.tar-2").is_file()
    proc = train_py(common + ["--output-dir", test_dir, "--model-dir", train_dir, "--eval-only"]
                    + fast + ["DATASET.SUBSAMPLE_CLASSES", "new"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(accuracies(test_dir / "log.txt")) == 1


def test_a_failed_run_under_coops_train_py_does_not_look_finished(tmp_path, capsys):
    """CoOp's scripts skip any existing output folder: the excepthook (CoOp's train.py has no handler) moves the
    folder of a run that failed to <folder>.unfinished, in one line, and the same command takes its files back."""
    from trainers.ship.common.errors import ShipError
    from trainers.ship.dassl import run_guard as guard  # imports no Dassl: runs everywhere

    out = tmp_path / "seed1"
    out.mkdir()
    (out / "log.txt").write_text("Dassl's log\n")
    assert guard.take_back_unfinished(out)  # a fresh folder: a failure may move it
    (out / "generator").mkdir()  # the run got as far as its generator stage
    guard.this_run.update(dir=out, movable=True)
    with pytest.raises(SystemExit) as exit_:
        guard._report_ship_errors(ShipError, ShipError("bad value"), None)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith("error: bad value (the unfinished run was moved to")
    assert not out.exists() and (tmp_path / "seed1.unfinished" / "generator").is_dir()
    with pytest.raises(SystemExit) as exit_:  # Ctrl-C: one line, 130
        guard.this_run.update(dir=tmp_path / "gone", movable=True)
        guard._report_ship_errors(KeyboardInterrupt, KeyboardInterrupt(), None)
    assert exit_.value.code == 130 and capsys.readouterr().err.startswith("interrupted")

    out.mkdir()  # the rerun: Dassl's logger opened a new log.txt
    (out / "log.txt").write_text("the rerun's log\n")
    assert guard.take_back_unfinished(out) and (out / "generator").is_dir() and not (tmp_path / "seed1.unfinished").exists()
    assert (out / "log.txt-unfinished").read_text() == "Dassl's log\n"
    assert not guard.take_back_unfinished(out)  # it holds work now: a later failure leaves it in place
    guard.this_run.update(dir=None, movable=False)


def test_ship_cocoop_under_dassl_reports_progress_inside_its_epochs(tmp_path, eurosat_root, tiny_clip_path):
    """CoCoOp's epochs are long (a text-encoder pass per image): log.txt gets progress lines within an epoch."""
    pytest.importorskip("dassl")
    import os

    args = ["--root", eurosat_root, "--seed", 1, "--trainer", "SHIP_CoCoOp", "--dataset-config-file",
            "configs/datasets/eurosat.yaml", "--config-file", "configs/trainers/SHIP/vit_b16.yaml",
            "--output-dir", tmp_path / "run", "DATASET.NUM_SHOTS", 2, "MODEL.BACKBONE.WEIGHTS", tiny_clip_path,
            "TRAINER.SHIP.GEN_EPOCHS", 1, "TRAINER.COCOOP.EPOCHS", 1, "TRAINER.SHIP.AUG_PASSES", 1,
            "CACHE_DIR", tmp_path / "cache", "DATALOADER.NUM_WORKERS", 0, "DATASET.SUBSAMPLE_CLASSES", "base"]
    proc = subprocess.run([sys.executable, "train.py", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "SHIP_PROGRESS_SECONDS": "0.000001"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (tmp_path / "run" / "log.txt").read_text()
    assert re.search(r"prompt learner: \d+/\d+ steps", log), log[-3000:]
    assert len(accuracies(tmp_path / "run" / "log.txt")) == 1


def test_dassl_search_val_never_uses_a_val_split_that_is_the_test_set(tmp_path, ship_log):
    """A reader like CoOp's ImageNet (``val = test``): Tip-Adapter's search images come from the training images
    the few-shot set left out (min(shots, 4) per base class), as the core draws them, and the log line says so."""
    pytest.importorskip("dassl")
    import random
    from types import SimpleNamespace

    from dassl.config import get_cfg_default
    from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum

    from trainers.ship.dassl.feature_trainer import FeatureTrainerX

    logging.disable(logging.NOTSET)  # a dependency of dassl disables log records (a SHIP trainer undoes it: route_ship_log)
    files = {split: [(tmp_path / f"{split}_{c}_{n}.jpg", c) for c in range(4) for n in range(count)]
             for split, count in (("train", 10), ("val", 3))}
    for path, _ in files["train"] + files["val"]:
        path.touch()

    def datums(split):
        return [Datum(impath=str(p), label=c, classname=f"c{c}") for p, c in files[split]]

    class ValIsTestToy(DatasetBase):  # CoOp's ImageNet: the few-shot train, val = test, CoCoOp's subsampling
        def __init__(self, cfg):
            train, test = datums("train"), datums("val")
            if cfg.DATASET.NUM_SHOTS > 0:  # the first draw of each class, as a fixed few-shot file would hold
                train = [d for d in train if int(Path(d.impath).stem.rsplit("_", 1)[1]) < cfg.DATASET.NUM_SHOTS]
            if cfg.DATASET.SUBSAMPLE_CLASSES == "base":
                train, test = [d for d in train if d.label < 2], [d for d in test if d.label < 2]
            super().__init__(train_x=train, val=test, test=test)

    if "ValIsTestToy" not in DATASET_REGISTRY.registered_names():
        DATASET_REGISTRY.register(ValIsTestToy)
    cfg = get_cfg_default()
    cfg.DATASET.NAME, cfg.DATASET.NUM_SHOTS, cfg.SEED, cfg.TRAINER.NAME = "ValIsTestToy", 3, 2, "SHIP_TipAdapter"
    for subsample in ("base", "all"):
        cfg.DATASET.SUBSAMPLE_CLASSES = subsample
        dataset = ValIsTestToy(cfg)
        n_base = 2 if subsample == "base" else 4
        fake = SimpleNamespace(cfg=cfg, dm=SimpleNamespace(dataset=dataset),
                               split=SimpleNamespace(base=SimpleNamespace(names=[f"c{c}" for c in range(n_base)])),
                               features=lambda items, split, **kw: (items, split, kw))
        items, split, kw = FeatureTrainerX.search_val(fake)
        # independently: Dassl's draw (labels in order, random.sample of 3 each) from the 7 non-few-shot images
        rng, expected = random.Random(2), []
        for c in range(4):
            pool = [str(p) for p, label in files["train"] if label == c and int(p.stem.rsplit("_", 1)[1]) >= 3]
            expected += rng.sample(pool, 3)
        assert [d.impath for d in items] == [p for p in expected if int(Path(p).stem.split("_")[1]) < n_base]
        assert not {d.impath for d in items} & {d.impath for d in dataset.test} and (split, kw) == ("val", {})
        line = ship_log[-1]
        assert f"ValIsTestToy's val split is its test set; SHIP_TipAdapter searches on {3 * n_base} validation images " \
               f"drawn from its training images" in line


@pytest.mark.parametrize("n,batch_size", [(12, 4), (13, 4), (3, 4), (70, 32)])
def test_dassl_route_counts_the_steps_of_dassls_own_train_loader(tmp_path, n, batch_size):
    """DROP_LAST True (the Dassl recipes): the steps per epoch of the Dassl route and of the core are the batches
    of Dassl's own training loader (build_data_loader, is_train); False: every image, as the SHIP code's loader."""
    pytest.importorskip("dassl")
    from types import SimpleNamespace

    from dassl.config import get_cfg_default
    from dassl.data.data_manager import build_data_loader
    from dassl.data.datasets import Datum

    from trainers.ship.dassl.feature_trainer import FeatureTrainerX
    from trainers.ship.training.schedules import epoch_steps

    image = tmp_path / "x.jpg"
    image.touch()
    items = [Datum(impath=str(image), label=0) for _ in range(n)]
    cfg = get_cfg_default()
    cfg.DATALOADER.NUM_WORKERS = 0
    loader = build_data_loader(cfg, "RandomSampler", items, batch_size, tfm=lambda x: x, is_train=True)
    trainer = SimpleNamespace(train_items=items)
    assert FeatureTrainerX.steps_per_epoch(trainer, batch_size, True) == epoch_steps(n, batch_size, True) == len(loader)
    assert FeatureTrainerX.steps_per_epoch(trainer, batch_size, False) == -(-n // batch_size)


@pytest.mark.parametrize("trainer", ["SHIP_CoOp", "SHIP_KgCoOp"])
def test_dassl_route_writes_tensorboard_scalars_into_dassls_writer(tmp_path, eurosat_root, tiny_clip_path, trainer):
    """Under train.py the core's loops write into Dassl's own writer (OUTPUT_DIR/tensorboard, one event file): the
    generator's and the head's per-epoch scalars (step: the epoch) and test/base; the --eval-only run on the new
    classes adds test/new in its own folder."""
    pytest.importorskip("dassl")
    common = ["--root", eurosat_root, "--seed", 1, "--trainer", trainer,
              "--dataset-config-file", "configs/datasets/eurosat.yaml", "--config-file", "configs/trainers/SHIP/vit_b16.yaml"]
    fast = ["DATASET.NUM_SHOTS", 2, "MODEL.BACKBONE.WEIGHTS", tiny_clip_path, "TRAINER.SHIP.GEN_EPOCHS", 2,
              "TRAINER.COOP.EPOCHS", 3, "TRAINER.KGCOOP.EPOCHS", 3, "TRAINER.SHIP.AUG_PASSES", 1,
              "CACHE_DIR", tmp_path / "cache", "DATALOADER.NUM_WORKERS", 0]
    train_dir = tmp_path / "train_base"
    proc = train_py(common + ["--output-dir", train_dir] + fast + ["DATASET.SUBSAMPLE_CLASSES", "base"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(list((train_dir / "tensorboard").glob("events.out.tfevents.*"))) == 1  # Dassl's writer, no second one
    scalars = read_scalars(train_dir / "tensorboard")
    assert scalars["generator/rec"] == [1, 2] and scalars["generator/kl"] == [1, 2] and scalars["generator/lr"] == [1, 2]
    for name in ("loss", "acc", "lr"):
        assert scalars[f"{trainer}/{name}"] == [1, 2, 3], name
    assert "test/base" in scalars and not any(t.startswith("train/") for t in scalars)  # Dassl's own names stay free
    new_dir = tmp_path / "test_new"
    proc = train_py(common + ["--output-dir", new_dir, "--eval-only", "--model-dir", train_dir] + fast
                    + ["DATASET.SUBSAMPLE_CLASSES", "new"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "test/new" in read_scalars(new_dir / "tensorboard")
