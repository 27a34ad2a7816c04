"""Wall time of whole base-to-new runs at the paper's sizes and schedule, with a random-weight CLIP.

    python -m benchmarks.base2new_pipeline [--classes 100] [--shots 16] [--test-per-class 25] [--device auto]
        [--trainers SHIP_CoOp,CoOp] [KEY VALUE ...]

Writes an image folder of random pictures (accuracy is meaningless; time and memory are not), runs
each trainer with configs/trainers/SHIP/vit_b16.yaml and prints one JSON line per trainer with the
stage timings from results.json and the peak GPU memory.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from trainers.ship.config import build_cfg
from trainers.ship.run.pipeline import run

from .common import benchmark_parser, save_random_clip

ROOT = Path(__file__).resolve().parents[1]


def write_folder(root: Path, classes: int, per_class: int) -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        d = root / f"object_{c}"
        d.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(d / f"{i}.jpg", quality=80)
    return root


def main(argv=None):
    p = benchmark_parser("benchmarks.base2new_pipeline", __doc__)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--shots", type=int, default=16)
    p.add_argument("--test-per-class", type=int, default=25)
    p.add_argument("--device", default="auto")
    p.add_argument("--trainers", type=lambda v: v.split(","), default=["SHIP_CoOp", "CoOp"], help="comma-separated")
    p.add_argument("--work-dir", help="keep data and runs here (default: a temporary folder)")
    p.add_argument("opts", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work_dir or tmp)
        # per class: shots train images need 50 % of the class, and test gets 30 %
        per_class = max(2 * args.shots, round(args.test_per_class / 0.3))
        data = write_folder(work / "data", args.classes, per_class)
        weights = save_random_clip("ViT-B/16", work / "vit_b16_random.pt")
        for trainer in args.trainers:
            overrides = {"DATASET.ROOT": str(data), "MODEL.BACKBONE.WEIGHTS": str(weights),
                         "TRAINER.NAME": trainer, "DATASET.NUM_SHOTS": args.shots, "DEVICE": args.device,
                         "OUTPUT_DIR": str(work / "runs" / trainer), "CACHE_DIR": str(work / "cache")}
            cfg = build_cfg([str(ROOT / "configs/trainers/SHIP/vit_b16.yaml")], overrides, args.opts)
            result = run(cfg)
            print(json.dumps({"benchmark": "base2new_pipeline", "trainer": trainer, "classes": args.classes,
                              "shots": args.shots, "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                              "seconds": result["seconds"], "peak_memory_mib": result["peak_memory_mib"],
                              "train_images": args.shots * result["num_base"],
                              "test_images": result["reports"]["base"]["total"] + result["reports"]["new"]["total"]}))


if __name__ == "__main__":
    main()
