import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainers.ship.config import build_cfg
from trainers.ship.reports.summary import main as summary_main

from .helpers import assert_png, write_image_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "trainers" / "SHIP").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = build_cfg([str(path)])
    assert cfg.MODEL.BACKBONE.NAME == "ViT-B/16" and cfg.TRAINER.SHIP.N_CTX == 4


def test_imagenet_config_has_the_imagenet_settings():
    trainer = build_cfg([str(ROOT / "configs/trainers/SHIP/vit_b16_imagenet.yaml")]).TRAINER
    s, c = trainer.SHIP, trainer.COOP
    assert (s.ENCODER_HIDDEN, s.LEAKY_RELU, s.GEN_EPOCHS, c.EPOCHS, c.OPTIM, c.EPS) == (4096, True, 10, 20, "adamw", 1e-4)
    assert tuple(s.AUG_SCALE) == (0.08, 1.0)


def write_run(root, dataset, trainer, seed, base, new):
    d = root / dataset / trainer / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps({"dataset": dataset, "trainer": trainer, "seed": seed, "shots": 16,
                                                "base": base, "new": new}))


def test_summary_means_stds_and_average(tmp_path, capsys):
    write_run(tmp_path, "a", "SHIP_CoOp", 1, 80.0, 60.0)
    write_run(tmp_path, "a", "SHIP_CoOp", 2, 70.0, 70.0)
    write_run(tmp_path, "b", "SHIP_CoOp", 1, 90.0, 50.0)
    assert summary_main([str(tmp_path), "--csv", str(tmp_path / "t.csv")]) == 0
    out = capsys.readouterr().out
    assert "| base2new | a | SHIP_CoOp | core |  | 16 | 2 | 75.00 ± 5.00 | 65.00 ± 5.00 |" in out
    rows = {r["dataset"]: r for r in csv.DictReader(open(tmp_path / "t.csv"))}
    assert float(rows["a"]["hm"]) == pytest.approx(2 * 75 * 65 / 140)  # H of the seed means (CoCoOp's tables)
    per_seed_h = [2 * 80 * 60 / 140, 70.0]
    assert float(rows["a"]["hm_std"]) == pytest.approx(abs(per_seed_h[0] - per_seed_h[1]) / 2)  # std of the per-seed H
    assert "H is the harmonic mean of the seed-averaged" in out
    assert float(rows["average"]["base"]) == pytest.approx(82.5)  # mean of the dataset means
    assert float(rows["average"]["hm"]) == pytest.approx(2 * 82.5 * 57.5 / 140)


DASSL_LOG = """Loading trainer: CoOp
Evaluate on the *test* set
=> result
* total: 1,549
* correct: 1,500
* accuracy: {first}%
* error: 3.2%
* macro_f1: 96.5%
=> result
* accuracy: {last}%
Elapsed: 0:01:02
"""


def test_summary_reads_coop_layout_logs(tmp_path, capsys):
    """CoOp/Dassl runs: base from the train_base log, new from the test_new log (the last accuracy line)."""
    for seed, base, new in ((1, 96.0, 94.0), (2, 98.0, 92.0)):
        for marker, acc in (("train_base", base), ("test_new", new)):
            d = tmp_path / "base2new" / marker / "caltech101" / "shots_16" / "CoOp" / "vit_b16" / f"seed{seed}"
            d.mkdir(parents=True)
            (d / "log.txt").write_text(DASSL_LOG.format(first=12.5, last=acc))
    orphan = tmp_path / "base2new" / "train_base" / "dtd" / "shots_16" / "CoOp" / "vit_b16" / "seed1"
    orphan.mkdir(parents=True)
    (orphan / "log.txt").write_text(DASSL_LOG.format(first=1, last=50))  # no test_new twin: left out
    assert summary_main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| base2new | Caltech101 | CoOp | dassl | vit_b16 | 16 | 2 | 97.00 ± 1.00 | 93.00 ± 1.00 |" in out and "Textures" not in out


def test_summary_cross_dataset_table_plots_and_csv(tmp_path, capsys):
    """Our xd results.json runs beside CoCoOp's xd_test layout (``evaluation/<trainer>/<cfg>/<dataset>/seed<S>``)."""
    def ours(folder, dataset, seed, accuracy):
        d = tmp_path / "xd" / folder / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "results.json").write_text(json.dumps({"protocol": "xd", "dataset": dataset, "source": "ImageNet",
                                                    "trainer": "SHIP_CoOp", "seed": seed, "shots": 16, "accuracy": accuracy}))

    for seed, (src, pets, dtd) in enumerate([(70.0, 90.0, 40.0), (72.0, 92.0, 44.0)], start=1):
        ours("imagenet/SHIP_CoOp/c16", "ImageNet", seed, src)
        ours("evaluation/SHIP_CoOp/c16/oxford_pets", "OxfordPets", seed, pets)
        ours("evaluation/SHIP_CoOp/c16/dtd", "DescribableTextures", seed, dtd)
    for folder, accuracy in (("oxford_pets", 88.0), ("dtd", 45.0)):  # CoOp names its folders by config file
        d = tmp_path / "xd" / "evaluation" / "CoCoOp" / "c16" / folder / "seed1"
        d.mkdir(parents=True)
        (d / "log.txt").write_text(DASSL_LOG.format(first=1.0, last=accuracy))
    assert summary_main([str(tmp_path / "xd"), "--out", str(tmp_path / "summary")]) == 0
    out = capsys.readouterr().out
    assert "| cross-dataset | route | config | seeds | ImageNet (source) | DescribableTextures | OxfordPets | average |" in out
    assert "| SHIP_CoOp | core | c16 | 2 | 71.00 ± 1.00 | 42.00 ± 2.00 | 91.00 ± 1.00 | 66.50 ± n/a |" in out  # n/a: no std
    assert "| CoCoOp | dassl | c16 | 1 | – | 45.00 ± n/a | 88.00 ± n/a | 66.50 ± n/a |" in out  # over one seed or datasets
    rows = list(csv.DictReader(open(tmp_path / "summary" / "table.csv")))
    average = next(r for r in rows if r["trainer"] == "SHIP_CoOp" and r["dataset"] == "average")
    assert float(average["accuracy"]) == pytest.approx((42 + 91) / 2)  # the targets only, not the source
    assert (tmp_path / "summary" / "table.md").read_text().strip() == out.split("wrote")[0].strip()
    assert_png(tmp_path / "summary" / "bars_xd.png")


def test_summary_base2new_bars(tmp_path, capsys):
    for dataset, trainer, seed, base, new in (("a", "CoOp", 1, 80.0, 60.0), ("a", "SHIP_CoOp", 1, 78.0, 70.0),
                                              ("b", "CoOp", 1, 90.0, 50.0), ("b", "SHIP_CoOp", 1, 88.0, 65.0),
                                              ("a", "SHIP_KgCoOp", 1, 79.0, 72.0), ("b", "SHIP_CLIPAdapter", 1, 85.0, 66.0)):
        write_run(tmp_path / "runs", dataset, trainer, seed, base, new)
    assert summary_main([str(tmp_path / "runs"), "--out", str(tmp_path / "summary")]) == 0
    out = capsys.readouterr().out
    assert "bars_base2new.png" in out and "| base2new | a | SHIP_KgCoOp |" in out and "| b | SHIP_CLIPAdapter |" in out
    assert_png(tmp_path / "summary" / "bars_base2new.png")


def test_gzsl_script_on_a_cub_tree(tmp_path, tiny_clip_path):
    """The paper's GZSL setting end to end: a CUB-200-2011 tree with the proposed split's class lists."""
    cub = tmp_path / "DATA" / "cub"
    seen, unseen = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"], ["004.Groove_billed_Ani"]
    write_image_folder(cub / "CUB_200_2011" / "images", seen + unseen, per_class=6)
    (cub / "trainvalclasses.txt").write_text("\n".join(seen) + "\n")
    (cub / "testclasses.txt").write_text("\n".join(unseen) + "\n")
    env = {**os.environ, "DATA": str(tmp_path / "DATA"), "OUTPUT": str(tmp_path / "out"), "SHOTS": "2", "BACKEND": "core"}
    fast = ["MODEL.BACKBONE.WEIGHTS", str(tiny_clip_path), "TRAINER.SHIP.GEN_EPOCHS", "2", "TRAINER.COOP.EPOCHS", "2",
            "TRAINER.SHIP.AUG_PASSES", "1", "DATALOADER.NUM_WORKERS", "0", "CACHE_DIR", str(tmp_path / "cache")]
    proc = subprocess.run(["bash", "scripts/ship/gzsl.sh", "cub", "1", *fast], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out/gzsl/cub/shots_2/SHIP_CoOp/vit_b16/seed1/results.json").read_text())
    assert (result["num_base"], result["num_new"]) == (3, 1) and {"seen", "unseen", "hm"} <= set(result)
    assert "| gzsl | CUB | SHIP_CoOp |" in proc.stdout


def test_summary_without_runs_is_an_error(tmp_path, capsys):
    assert summary_main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: no finished run")


def test_base2new_train_and_test_scripts_core_backend(tmp_path, tiny_clip_path):
    data = tmp_path / "DATA"
    write_image_folder(data / "eurosat" / "2750", ["Forest", "River", "Highway", "Pasture"], per_class=5)
    split = {k: [] for k in ("train", "val", "test")}
    for label, name in enumerate(["Forest", "River", "Highway", "Pasture"]):
        files = sorted(f.name for f in (data / "eurosat" / "2750" / name).iterdir())
        for key, part in (("train", files[:2]), ("val", files[2:3]), ("test", files[3:])):
            split[key] += [[f"{name}/{f}", label, name] for f in part]
    (data / "eurosat" / "split_zhou_EuroSAT.json").write_text(json.dumps(split))
    env = {**os.environ, "DATA": str(data), "OUTPUT": str(tmp_path / "out"), "SHOTS": "2", "BACKEND": "core"}
    fast = ["MODEL.BACKBONE.WEIGHTS", str(tiny_clip_path), "TRAINER.SHIP.GEN_EPOCHS", "2", "TRAINER.COOP.EPOCHS", "2",
            "TRAINER.SHIP.AUG_PASSES", "1", "DATALOADER.NUM_WORKERS", "0", "CACHE_DIR", str(tmp_path / "cache")]
    for script in ("base2new_train.sh", "base2new_test.sh"):
        proc = subprocess.run(["bash", f"scripts/ship/{script}", "eurosat", "1", *fast], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    run = "eurosat/shots_2/SHIP_CoOp/vit_b16/seed1"
    train_log = (tmp_path / "out/base2new/train_base" / run / "log.txt").read_text()
    test_log = (tmp_path / "out/base2new/test_new" / run / "log.txt").read_text()
    assert train_log.count("* accuracy") == 1 and test_log.count("* accuracy") == 1  # base, then new (CoOp's parser)
    assert "Loaded prompt learner from" in test_log and "generator epoch" not in test_log
    again = subprocess.run(["bash", "scripts/ship/base2new_train.sh", "eurosat", "1"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "skip this job" in again.stdout, again.stderr
    assert summary_main([str(tmp_path / "out")]) == 0


def test_run_all_writes_a_slurm_array(tmp_path):
    env = {**os.environ, "OUTPUT": str(tmp_path), "DATASETS": "caltech101 eurosat dtd", "SEEDS": "1 2", "BACKEND": "core"}
    proc = subprocess.run(["bash", "scripts/ship/run_all.sh", "--slurm"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    job = Path(proc.stdout.strip()).read_text()
    assert "#SBATCH --array=0-5" in job and "base2new_train.sh" in job and "base2new_test.sh" in job
    pick = "\n".join(line for line in job.splitlines() if line.startswith(("DS=", "D=")))  # the task -> (D, S) map
    tasks = [subprocess.run(["bash", "-c", pick + '\necho "$D $S"'],
                            env={**env, "SLURM_ARRAY_TASK_ID": str(i)}, capture_output=True, text=True).stdout.split()
             for i in range(6)]
    assert tasks == [["caltech101", "1"], ["caltech101", "2"], ["eurosat", "1"], ["eurosat", "2"], ["dtd", "1"], ["dtd", "2"]]


def test_folder_script_runs_four_trainers_then_skips(tmp_path, tiny_clip_path):
    data = write_image_folder(tmp_path / "toy", ["cat", "dog", "car", "tree"], per_class=5)
    env = {**os.environ, "CLIP_WEIGHTS": str(tiny_clip_path), "SHOTS": "2", "OUTPUT": str(tmp_path / "out")}
    cmd = ["bash", "scripts/ship/base2new_folder.sh", str(data), "1", "", "TRAINER.SHIP.GEN_EPOCHS", "2",
           "TRAINER.COOP.EPOCHS", "2", "TRAINER.COCOOP.EPOCHS", "2", "TRAINER.SHIP.AUG_PASSES", "1",
           "DATALOADER.NUM_WORKERS", "0",
           "CACHE_DIR", str(tmp_path / "cache")]
    first = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    runs = sorted((tmp_path / "out").rglob("results.json"))
    assert [p.relative_to(tmp_path / "out").parts[3] for p in runs] == ["CoCoOp", "CoOp", "SHIP_CoOp", "ZeroshotCLIP"]
    assert str(runs[1].parent).endswith("base2new/toy/shots_2/CoOp/vit_b16_ctxv1/seed1")  # the CoCoOp paper's CoOp
    assert "| base2new | toy | SHIP_CoOp | core | vit_b16 | 2 | 1 |" in first.stdout
    assert_png(tmp_path / "out/base2new/toy/summary/bars_base2new.png")
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("finished") == 4


def test_ablation_script_runs_every_generator_variant_then_one_table(tmp_path, tiny_clip_path):
    from .helpers import split_json_dataset

    data = tmp_path / "DATA"
    split_json_dataset(data, "eurosat", "2750", "split_zhou_EuroSAT.json", ["Forest", "River", "Highway", "Pasture"], (3, 1, 2))
    env = {**os.environ, "DATA": str(data), "OUTPUT": str(tmp_path / "out"), "SHOTS": "2", "DOWNLOAD": "0",
           "KL_WEIGHTS": "0.1", "SYN_POOLS": "4"}
    fast = ["MODEL.BACKBONE.WEIGHTS", str(tiny_clip_path), "TRAINER.SHIP.GEN_EPOCHS", "2", "TRAINER.COOP.EPOCHS", "2",
            "TRAINER.SHIP.AUG_PASSES", "1", "DATALOADER.NUM_WORKERS", "0", "CACHE_DIR", str(tmp_path / "cache")]
    proc = subprocess.run(["bash", "scripts/ship/ablation.sh", "eurosat", "1", *fast], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    settings = ["gen-prompt", "gen-feature", "gen-global_only", "gen-local_only", "gen-cvae", "kl-0.1", "syn-4"]
    runs = tmp_path / "out/ablation/eurosat/shots_2/SHIP_CoOp"
    for setting in settings:
        assert (runs / setting / "seed1" / "results.json").is_file(), setting
    assert "GENERATOR: feature" in (runs / "gen-feature/seed1/log.txt").read_text()
    table = (tmp_path / "out/ablation/summary/table.md").read_text()
    assert all(f"| base2new | EuroSAT | SHIP_CoOp | core | {s} | 2 | 1 |" in table for s in settings)
    assert_png(tmp_path / "out/ablation/summary/bars_base2new.png")


def test_shots_script_then_table_rows_per_shots_and_curves(tmp_path, tiny_clip_path):
    """Runs of other shots are never averaged together: a row per shots, and the curves against shots."""
    from .helpers import split_json_dataset

    data = tmp_path / "DATA"
    split_json_dataset(data, "eurosat", "2750", "split_zhou_EuroSAT.json", ["Forest", "River", "Highway", "Pasture"], (3, 1, 2))
    env = {**os.environ, "DATA": str(data), "OUTPUT": str(tmp_path / "out"), "DOWNLOAD": "0", "SHOTS_LIST": "1 2",
           "TRAINERS": "SHIP_CoOp", "SEEDS": "1 2"}
    fast = ["--weights", str(tiny_clip_path), "--cache-dir", str(tmp_path / "cache"), "TRAINER.SHIP.GEN_EPOCHS", "2",
            "TRAINER.COOP.EPOCHS", "2", "TRAINER.SHIP.AUG_PASSES", "1", "DATALOADER.NUM_WORKERS", "0"]
    proc = subprocess.run(["bash", "scripts/ship/shots.sh", "eurosat", *fast], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (tmp_path / "out/shots/summary/table.md").read_text()
    assert "| base2new | EuroSAT | SHIP_CoOp | core | vit_b16 | 1 | 2 |" in table and "| base2new | EuroSAT | SHIP_CoOp | core | vit_b16 | 2 | 2 |" in table
    assert_png(tmp_path / "out/shots/summary/curves_base2new.png")


# ----------------------------------------------------------------------------- issues 16 and 17: scripts
ENTRY_SCRIPTS = sorted(p.stem for p in (ROOT / "scripts" / "ship").glob("*.sh") if p.stem != "common")  # common.sh is sourced


@pytest.mark.parametrize("script", ENTRY_SCRIPTS)
def test_every_script_answers_help_without_running_anything(tmp_path, script):
    env = {**os.environ, "OUTPUT": str(tmp_path / "out"), "DATA": str(tmp_path / "DATA")}
    proc = subprocess.run(["bash", f"scripts/ship/{script}.sh", "--help"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert f"{script}.sh" in proc.stdout or script == "base2new_folder"  # the usage line
    assert not (tmp_path / "out").exists() and not (tmp_path / "DATA").exists()  # no work started


def test_train_py_help_lists_every_ship_trainer():
    from trainers.ship.dassl.config import ship_trainer_names

    proc = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    listed = " ".join(proc.stdout.split())
    assert all(name in listed for name in ship_trainer_names()) and len(ship_trainer_names()) >= 6


@pytest.mark.parametrize("trainer, dataset, cfg, expected", [
    ("SHIP_CoOp", "imagenet", "", "vit_b16_imagenet"), ("SHIP_CoOp", "caltech101", "", "vit_b16"),
    ("CoOp", "caltech101", "", "vit_b16_ctxv1"), ("CoOp", "imagenet", "", "vit_b16_ep50_ctxv1"),
    ("SHIP_CoOp", "imagenet", "mine", "mine"), ("TipAdapter", "caltech101", "", "tip_adapter_vit_b16"),
    ("SHIP_TipAdapter", "eurosat", "", "tip_adapter_vit_b16"), ("SHIP_TipAdapter", "imagenet", "", "vit_b16_imagenet"),
])
def test_scripts_pick_the_published_recipe_and_say_so(trainer, dataset, cfg, expected):
    env = {k: v for k, v in os.environ.items() if k != "CFG"}
    if cfg:
        env["CFG"] = cfg
    proc = subprocess.run(["bash", "-c", f'source scripts/ship/common.sh && pick_cfg {trainer} {dataset} && echo "=$CFG_USED"'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    lines = proc.stdout.splitlines()
    assert lines[-1] == f"={expected}" and lines[0].startswith(f"config: configs/trainers/SHIP/{expected}.yaml")
    assert cfg or (ROOT / "configs" / "trainers" / "SHIP" / f"{expected}.yaml").is_file()


def test_scripts_count_a_run_finished_only_after_its_last_file(tmp_path):
    """Either route writes a complete results.json last (after setup.json, synthesis.json, the map; the Dassl route
    after its final test): a killed run is rerun, never skipped, whatever its logs hold (reports.finished)."""
    def finished(folder):
        return subprocess.run(["bash", "-c", f'source scripts/ship/common.sh && finished "{folder}"'], cwd=ROOT,
                              timeout=60).returncode == 0

    killed = tmp_path / "killed"
    killed.mkdir()
    for name in ("setup.json", "synthesis.json", "log.txt"):
        (killed / name).write_text("{}")
    assert not finished(killed)
    (killed / "results.json").write_text('{"selection": "honest", "base": 50.0, "new": 40.0, "hm": 44.4}')
    assert finished(killed)
    dassl = tmp_path / "dassl"
    dassl.mkdir()
    (dassl / "log.txt").write_text("Loading trainer: SHIP_CoOp\nepoch [3/3]\nCheckpoint saved to x\n")
    assert not finished(dassl)
    (dassl / "log.txt-2026-12-02-01-30-00").write_text("Resumed from x\n* accuracy: 50.0%\n")  # a rerun's log
    assert not finished(dassl)  # an accuracy line is not a finished SHIP run: its results.json is
    (dassl / "results.json").write_text('{"selection": "honest", "base": 50.0, "backend": "dassl"}')
    assert finished(dassl)
    assert not finished(tmp_path / "absent")


def test_run_picks_the_recipe_for_a_script_that_did_not(tmp_path):
    """ablation.sh calls run without pick_cfg: ImageNet still reads SHIP's ImageNet recipe."""
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "python3").write_text('#!/usr/bin/env bash\necho "python3 $*"\n')
    (stub / "python3").chmod(0o755)
    env = {**{k: v for k, v in os.environ.items() if k != "CFG"}, "PATH": f"{stub}:{os.environ['PATH']}",
           "BACKEND": "core"}
    proc = subprocess.run(["bash", "-c", "source scripts/ship/common.sh && run imagenet 1 out all"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert "config: configs/trainers/SHIP/vit_b16_imagenet.yaml (the ImageNet recipe)" in proc.stdout
    assert "SHIP/vit_b16_imagenet.yaml --output-dir out" in proc.stdout, proc.stdout + proc.stderr
