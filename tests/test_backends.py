"""The two routes of a SHIP run give the same numbers: the core (``python -m trainers.ship``) and Dassl's ``train.py``
(CoOp's scripts), for every SHIP trainer Dassl registers, on one tiny seed.

Each case trains on EuroSAT's base classes, then evaluates on its new classes with ``--eval-only``, once per route;
``results.json`` accuracies must be equal, and so must every stage's weights (``<stage>/model.pth.tar-<E>``: the
generator, the prompt learner, the adapter, the cache) that both routes save. Runs wherever Dassl is importable.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainers.ship.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
ENABLE = ("compares the core with Dassl's train.py, so it needs Dassl: install Dassl.pytorch into this environment "
          "(docs/running_with_dassl.md) to run it")
ACCURACIES = ("base", "new", "accuracy", "seen", "unseen", "H")

# every method's epochs cut to 2; the generator to 2 epochs of 1 augmentation pass
FAST = ["DATALOADER.NUM_WORKERS", "0", "TRAINER.SHIP.GEN_EPOCHS", "2", "TRAINER.SHIP.AUG_PASSES", "1",
        *(x for section in ("COOP", "COCOOP", "KGCOOP", "PROGRAD", "CLIPADAPTER", "TIPADAPTER")
          for x in (f"TRAINER.{section}.EPOCHS", "2"))]
# Dassl registers SHIP_<method> for every method that saves a stage (methods/), so a new method is compared here too
CASES = {f"SHIP_{name}": [] for name, method in METHODS.items() if method.checkpoint}
CASES.update({"SHIP_TipAdapter-F": ["TRAINER.TIPADAPTER.FINETUNE", "True"],
              "SHIP_CoOp-random_context": ["TRAINER.COOP.CTX_INIT", "''"]})  # random context: built after the seed


def core(data: Path, clip: Path, trainer: str, out: Path, split: str, opts: list[str]) -> list[str]:
    args = [sys.executable, "-m", "trainers.ship", "--dataset", "eurosat", "--root", str(data), "--seed", "1",
            "--shots", "2", "--trainer", trainer, "--config-file", "configs/trainers/SHIP/vit_b16.yaml",
            "--weights", str(clip), "--cache-dir", str(out.parent.parent / "cache-core"), "--output-dir", str(out / split)]
    if split == "new":
        args += ["--eval-only", "--model-dir", str(out / "base")]
    return args + FAST + opts + ["DATASET.SUBSAMPLE_CLASSES", split]


def dassl(data: Path, clip: Path, trainer: str, out: Path, split: str, opts: list[str]) -> list[str]:
    args = [sys.executable, "train.py", "--root", str(data), "--seed", "1", "--trainer", trainer,
            "--dataset-config-file", "configs/datasets/eurosat.yaml", "--config-file", "configs/trainers/SHIP/vit_b16.yaml",
            "--output-dir", str(out / split)]
    if split == "new":
        args += ["--eval-only", "--model-dir", str(out / "base")]
    return args + ["DATASET.NUM_SHOTS", "2", "MODEL.BACKBONE.WEIGHTS", str(clip),
                   "CACHE_DIR", str(out.parent.parent / "cache-dassl")] + FAST + opts + ["DATASET.SUBSAMPLE_CLASSES", split]


def stage_weights(run: Path) -> dict[str, dict]:
    """``<stage>/model.pth.tar-<E>`` -> its state dict, read as every checkpoint is read (weights only)."""
    return {str(p.relative_to(run)): torch.load(p, map_location="cpu", weights_only=True)["state_dict"]
            for p in sorted(run.glob("*/model.pth.tar-*"))}


@pytest.mark.parametrize("case", sorted(CASES))
def test_core_and_dassl_give_the_same_accuracies_and_weights(tmp_path, eurosat_root, tiny_clip_path, case):
    pytest.importorskip("dassl", reason=ENABLE)
    trainer, opts = case.split("-")[0], CASES[case]
    results, weights = {}, {}
    for route, command in (("core", core), ("dassl", dassl)):
        out = tmp_path / "out" / route
        for split in ("base", "new"):
            proc = subprocess.run(command(eurosat_root, tiny_clip_path, trainer, out, split, opts), cwd=ROOT,
                                  capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, f"{route} {split}:\n" + proc.stdout[-3000:] + proc.stderr[-3000:]
            found = json.loads((out / split / "results.json").read_text())
            assert found["backend"] == route
            results[route, split] = {k: found[k] for k in ACCURACIES if k in found}
        weights[route] = stage_weights(out / "base")
    for split in ("base", "new"):
        assert results["core", split] and results["core", split] == results["dassl", split], split
    stage = METHODS[trainer.removeprefix("SHIP_")].checkpoint
    shared = weights["core"].keys() & weights["dassl"].keys()
    assert any(k.startswith("generator/") for k in shared) and any(k.startswith(f"{stage}/") for k in shared), (
        sorted(weights["core"]), sorted(weights["dassl"]))
    for name in sorted(shared):
        core_state, dassl_state = weights["core"][name], weights["dassl"][name]
        assert core_state.keys() == dassl_state.keys(), name
        for key, value in core_state.items():  # tensors, and Tip-Adapter's searched alpha and beta
            same = torch.equal(value, dassl_state[key]) if torch.is_tensor(value) else value == dassl_state[key]
            assert same, f"{name}: {key}: {value} (core) vs {dassl_state[key]} (dassl)"
