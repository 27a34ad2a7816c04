import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from trainers.ship.config import build_cfg
from trainers.ship.summary import main as summary_main

from .helpers import write_image_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "trainers" / "SHIP").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = build_cfg([str(path)])
    assert cfg.MODEL.BACKBONE.NAME == "ViT-B/16" and cfg.TRAINER.SHIP.N_CTX == 4


def test_imagenet_config_has_the_imagenet_settings():
    s = build_cfg([str(ROOT / "configs/trainers/SHIP/vit_b16_imagenet.yaml")]).TRAINER.SHIP
    assert (s.ENCODER_HIDDEN, s.LEAKY_RELU, s.GEN_EPOCHS, s.COOP_EPOCHS, s.COOP_OPTIM) == (4096, True, 10, 20, "adamw")
    assert tuple(s.AUG_SCALE) == (0.08, 1.0)


def write_run(root, dataset, trainer, seed, base, new):
    d = root / dataset / trainer / f"seed{seed}"
    d.mkdir(parents=True)
    hm = 2 * base * new / (base + new)
    (d / "results.json").write_text(json.dumps({"dataset": dataset, "trainer": trainer, "seed": seed,
                                                "base": base, "new": new, "hm": hm}))


def test_summary_means_stds_and_average(tmp_path, capsys):
    write_run(tmp_path, "a", "SHIP_CoOp", 1, 80.0, 60.0)
    write_run(tmp_path, "a", "SHIP_CoOp", 2, 70.0, 70.0)
    write_run(tmp_path, "b", "SHIP_CoOp", 1, 90.0, 50.0)
    assert summary_main([str(tmp_path), "--csv", str(tmp_path / "t.csv")]) == 0
    out = capsys.readouterr().out
    assert "| a | SHIP_CoOp | 2 | 75.00 ± 5.00 | 65.00 ± 5.00 |" in out
    rows = {r["dataset"]: r for r in csv.DictReader(open(tmp_path / "t.csv"))}
    assert float(rows["average"]["base"]) == pytest.approx(82.5)  # mean of the dataset means
    assert float(rows["average"]["hm"]) == pytest.approx(2 * 82.5 * 57.5 / 140)


def test_folder_script_runs_three_trainers_then_skips(tmp_path, tiny_clip_path):
    data = write_image_folder(tmp_path / "toy", ["cat", "dog", "car", "tree"], per_class=5)
    env = {**os.environ, "CLIP_WEIGHTS": str(tiny_clip_path), "SHOTS": "2", "OUTPUT": str(tmp_path / "out")}
    cmd = ["bash", "scripts/ship/base2new_folder.sh", str(data), "1", "", "TRAINER.SHIP.GEN_EPOCHS", "2",
           "TRAINER.SHIP.COOP_EPOCHS", "2", "TRAINER.SHIP.AUG_PASSES", "1", "DATALOADER.NUM_WORKERS", "0",
           "CACHE_DIR", str(tmp_path / "cache")]
    first = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    runs = sorted((tmp_path / "out").rglob("results.json"))
    assert [p.relative_to(tmp_path / "out").parts[3] for p in runs] == ["CoOp", "SHIP_CoOp", "ZeroshotCLIP"]
    assert str(runs[0].parent).endswith("base2new/toy/shots_2/CoOp/vit_b16/seed1")
    assert "| toy | SHIP_CoOp | 1 |" in first.stdout
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("finished") == 3
