"""A ``paper.sh`` subset serially and with ``--jobs N``: wall time and images encoded.

    python -m benchmarks.paper_jobs [--jobs 2] [--seeds "1 2 3"] [--data DATA]

The subset: base-to-new on Caltech101 (CoOp's split, from ``DATA``; ``../shared/data`` by default), the seeds
given, every trainer of the grid, with a tiny random CLIP and short schedules (the recipes' epochs cut to 2).
Each mode starts from an empty output tree and an empty ``CACHE_DIR``. Images encoded are counted from the runs'
``log.txt`` files (the "saved to" lines: images x passes of each feature set a run encoded).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import benchmark_parser
from .concurrent_features import caltech_root

ROOT = Path(__file__).resolve().parents[1]
SAVED = re.compile(r"features: (\d+) images x (\d+) passes saved to (\S+)")
FAST = ["TRAINER.SHIP.GEN_EPOCHS", "2", "TRAINER.SHIP.FEATURE_MAP", "0", "DATALOADER.NUM_WORKERS", "0",
        *[w for node in ("COOP", "COCOOP", "KGCOOP", "PROGRAD", "CLIPADAPTER", "TIPADAPTER")
          for w in (f"TRAINER.{node}.EPOCHS", "2")]]


def one_mode(jobs: int, data: Path, clip: Path, seeds: str, shots: int, passes: int, tmp: Path) -> dict:
    """``paper.sh`` (``--jobs`` when ``jobs`` > 1) over the subset, into a fresh tree and cache."""
    out, cache = tmp / f"out-{jobs}", tmp / f"cache-{jobs}"
    env = {**os.environ, "DATA": str(data), "OUTPUT": str(out), "DOWNLOAD": "0", "DATASETS": "caltech101",
           "SEEDS": seeds, "SHOTS": str(shots), "XD_TRAINERS": " ", "GZSL_TRAINERS": " ", "OMP_NUM_THREADS": "1"}
    cmd = ["bash", str(ROOT / "scripts/ship/paper.sh"), *(["--jobs", str(jobs)] if jobs > 1 else []),
           "--weights", str(clip), "--cache-dir", str(cache), "TRAINER.SHIP.AUG_PASSES", str(passes), *FAST]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"paper.sh --jobs {jobs} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    encoded, sets = 0, []
    for log in out.rglob("log.txt"):
        for m in SAVED.finditer(log.read_text()):
            encoded += int(m[1]) * int(m[2])
            sets.append(m[3])
    runs = len(list(out.rglob("results.json")))
    return {"jobs": jobs, "runs": runs, "wall_s": round(wall, 1), "feature_sets": len(set(sets)),
            "encodings": len(sets), "images_encoded": encoded}


def main(argv: list[str] | None = None) -> None:
    p = benchmark_parser("benchmarks.paper_jobs", __doc__)
    p.add_argument("--jobs", type=int, default=2, help="tasks at once in the parallel mode (default 2)")
    p.add_argument("--seeds", default="1 2 3")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="DATA holding caltech-101/")
    p.add_argument("--shots", type=int, default=4)
    p.add_argument("--passes", type=int, default=2, help="TRAINER.SHIP.AUG_PASSES")
    args = p.parse_args(argv)
    if not (args.data / "caltech-101" / "split_zhou_Caltech101.json").is_file():
        raise SystemExit(f"error: {args.data}/caltech-101/split_zhou_Caltech101.json not found (--data DATA)")
    sys.path.insert(0, str(ROOT))
    from tests.helpers import save_tiny_clip

    with tempfile.TemporaryDirectory(prefix="paper-jobs-") as tmp:
        tmp = Path(tmp)
        data, clip = caltech_root(args.data, tmp), save_tiny_clip(tmp / "tiny.pt")
        for jobs in (1, args.jobs):
            print(json.dumps(one_mode(jobs, data, clip, args.seeds, args.shots, args.passes, tmp)), flush=True)


if __name__ == "__main__":
    main()
