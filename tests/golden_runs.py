"""Fixed tiny runs whose outputs must not change when code only moves (``tests/test_layers.py``).

    python tests/golden_runs.py WORK SUMMARY_MODULE [DASSL_PYTHON]

Run with the working directory and ``PYTHONPATH`` at the tree under test: each protocol (base-to-new, GZSL,
cross-dataset source and target), SHIP_CoOp, SHIP_TipAdapter and CoCoOp through ``python -m trainers.ship``'s
``main`` in this one process, then ``SUMMARY_MODULE``'s ``main`` over them, and, given a Python with Dassl, one
``train.py --trainer SHIP_CoOp`` run (base, then new). ``WORK`` holds the inputs (``clip.pt``, ``toy/``, ``DATA/``)
made by the test; the outputs go to ``WORK/out``. Only this file's own imports are from the tree under test.
"""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

OPTS = ["DATALOADER.NUM_WORKERS", "0", "TRAINER.SHIP.GEN_EPOCHS", "2", "TRAINER.SHIP.AUG_PASSES", "1",
        "TRAINER.COOP.EPOCHS", "2", "TRAINER.COCOOP.EPOCHS", "2"]


def core_runs(work: Path) -> dict[str, list[str]]:
    """Run folder (under ``work/out/core``) -> ``python -m trainers.ship`` arguments."""
    out = work / "out" / "core"
    flags = ["--shots", "2", "--seed", "1", "--weights", str(work / "clip.pt"), "--cache-dir", str(work / "cache")]
    toy, xd = ["--data-dir", str(work / "toy")], ["--root", str(work / "DATA")]
    label_only = ["DATASET.LABEL_ONLY_FROM", "['eurosat']"]
    runs = {f"base2new/toy/{t}": (toy + ["--trainer", t], []) for t in ("SHIP_CoOp", "SHIP_TipAdapter", "CoCoOp")}
    runs["gzsl/toy/SHIP_CoOp"] = (toy + ["--trainer", "SHIP_CoOp"], ["DATASET.SUBSAMPLE_CLASSES", "gzsl"])
    runs["xd/caltech101/SHIP_CoOp"] = (xd + ["--dataset", "caltech101", "--trainer", "SHIP_CoOp"], label_only)
    runs["xd/evaluation/eurosat/SHIP_CoOp"] = (xd + ["--dataset", "eurosat", "--trainer", "SHIP_CoOp", "--eval-only",
                                                     "--model-dir", str(out / "xd/caltech101/SHIP_CoOp")], label_only)
    return {name: args + flags + ["--output-dir", str(out / name)] + OPTS + opts
            for name, (args, opts) in runs.items()}


def dassl_runs(work: Path) -> list[list[str]]:
    """``train.py`` arguments: SHIP_CoOp on the base classes of EuroSAT, then evaluated on its new classes."""
    out = work / "out" / "dassl"
    common = ["--root", str(work / "DATA"), "--seed", "1", "--trainer", "SHIP_CoOp",
              "--dataset-config-file", "configs/datasets/eurosat.yaml",
              "--config-file", "configs/trainers/SHIP/vit_b16.yaml"]
    opts = ["DATASET.NUM_SHOTS", "2", "MODEL.BACKBONE.WEIGHTS", str(work / "clip.pt"), "CACHE_DIR", str(work / "cache-dassl"),
              "DATALOADER.NUM_WORKERS", "0", "TRAINER.SHIP.GEN_EPOCHS", "2", "TRAINER.SHIP.AUG_PASSES", "1",
              "TRAINER.COOP.EPOCHS", "2"]
    return [common + ["--output-dir", str(out / "base")] + opts + ["DATASET.SUBSAMPLE_CLASSES", "base"],
            common + ["--output-dir", str(out / "new"), "--model-dir", str(out / "base"), "--eval-only"] + opts
            + ["DATASET.SUBSAMPLE_CLASSES", "new"]]


def main(argv: list[str]) -> int:
    work, summary = Path(argv[0]), argv[1]
    from trainers.ship.__main__ import main as ship  # the tree under test

    for name, args in core_runs(work).items():
        if ship(args) != 0:
            raise SystemExit(f"golden run {name} failed")
    if importlib.import_module(summary).main([str(work / "out" / "core"), "--out", str(work / "out" / "summary")]):
        raise SystemExit("golden summary failed")
    for args in dassl_runs(work) if len(argv) > 2 else []:
        proc = subprocess.run([argv[2], "train.py", *args], capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"golden Dassl run failed: {proc.stderr[-2000:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
