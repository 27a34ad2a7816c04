"""N runs started together over one dataset: how often each feature set is encoded, CPU-seconds and wall time.

    python -m benchmarks.concurrent_features [--runs 1,2,4,8] [--code DIR] [--data DATA]

Each round starts N ``python -m trainers.ship`` processes at once on Caltech101 (CoOp's split, from ``DATA``;
``../shared/data`` by default) with a tiny random CLIP, one ``CACHE_DIR``, seed 1 and a different trainer each
(CoOp, TipAdapter, KgCoOp, CLIPAdapter, ProGrad, ZeroshotCLIP, CoCoOp, SHIP_CoOp, in that order), so every run
reads the test split and most read the same training crops. Counted from the runs' logs: for each cache file, the
runs that encoded it ("saved to") and those that read it ("from"). ``--code DIR`` runs another checkout's code
(``PYTHONPATH=DIR``): the "before" column of ``benchmarks/RESULTS.md`` ran the parent of the per-key lock.
CPU-seconds are those of the N processes (``RUSAGE_CHILDREN``), each with one torch thread (``OMP_NUM_THREADS=1``:
N processes share the machine's cores, as the tasks of an array share a node).
"""
from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from .common import benchmark_parser

ROOT = Path(__file__).resolve().parents[1]
TRAINERS = ["CoOp", "TipAdapter", "KgCoOp", "CLIPAdapter", "ProGrad", "ZeroshotCLIP", "CoCoOp", "SHIP_CoOp"]
FAST = ["TRAINER.COOP.EPOCHS", "2", "TRAINER.KGCOOP.EPOCHS", "2", "TRAINER.PROGRAD.EPOCHS", "2",
        "TRAINER.CLIPADAPTER.EPOCHS", "2", "TRAINER.COCOOP.EPOCHS", "1", "TRAINER.SHIP.GEN_EPOCHS", "2",
        "TRAINER.SHIP.FEATURE_MAP", "0", "DATALOADER.NUM_WORKERS", "0"]
LINE = re.compile(r"^(\w+) features: (\d+) images x (\d+) passes (saved to|from) (\S+)$")


def caltech_root(shared: Path, tmp: Path) -> Path:
    """A DATA root whose caltech-101 links the shared images and split (read-only) and has its own split_fewshot."""
    data = tmp / "DATA" / "caltech-101"
    data.mkdir(parents=True)
    (data / "101_ObjectCategories").symlink_to(shared / "caltech-101" / "101_ObjectCategories")
    shutil.copy(shared / "caltech-101" / "split_zhou_Caltech101.json", data)
    return data.parent


def one_round(n: int, code: Path, data: Path, clip: Path, shots: int, passes: int, tmp: Path) -> dict:
    """Start ``n`` runs at once; wait for all; count each cache file's encodings and reads."""
    cache, env = tmp / f"cache-{n}", {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    procs = []
    for i in range(n):
        out = tmp / f"runs-{n}" / TRAINERS[i]
        cmd = [sys.executable, "-m", "trainers.ship", "--dataset", "Caltech101", "--root", str(data), "--weights",
               str(clip), "--trainer", TRAINERS[i], "--seed", "1", "--shots", str(shots), "--output-dir", str(out),
               "--cache-dir", str(cache), "TRAINER.SHIP.AUG_PASSES", str(passes), *FAST]
        procs.append(subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = [p.communicate()[0] for p in procs]
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for trainer, proc, log in zip(TRAINERS, procs, logs):
        if proc.returncode != 0:
            raise SystemExit(f"{trainer} failed ({proc.returncode}):\n{log[-3000:]}")
    saved, read, images = Counter(), Counter(), Counter()
    for log in logs:
        for line in log.splitlines():
            m = LINE.match(line.strip())
            if m:
                (saved if m[4] == "saved to" else read)[m[5]] += 1
                if m[4] == "saved to":
                    images[m[5]] = int(m[2]) * int(m[3])
    results = {t: json.loads((tmp / f"runs-{n}" / t / "results.json").read_text()) for t in TRAINERS[:n]}
    return {"runs": n, "feature_sets": len(saved | read), "encodings": sum(saved.values()),
            "most_encodings_of_one_set": max(saved.values()), "images_encoded": sum(images[k] * saved[k] for k in saved),
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
            "wall_s": round(wall, 1), "base_new": {t: [r["base"], r["new"]] for t, r in results.items()}}


def main(argv: list[str] | None = None) -> None:
    p = benchmark_parser("benchmarks.concurrent_features", __doc__)
    p.add_argument("--runs", default="1,2,4,8", help="numbers of runs started together (at most 8)")
    p.add_argument("--code", type=Path, default=ROOT, help="the checkout whose trainers.ship runs (default: this one)")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="DATA holding caltech-101/")
    p.add_argument("--shots", type=int, default=4)
    p.add_argument("--passes", type=int, default=2, help="TRAINER.SHIP.AUG_PASSES")
    args = p.parse_args(argv)
    counts = [int(n) for n in args.runs.split(",")]
    if not (args.data / "caltech-101" / "split_zhou_Caltech101.json").is_file():
        raise SystemExit(f"error: {args.data}/caltech-101/split_zhou_Caltech101.json not found (--data DATA)")
    if not all(1 <= n <= len(TRAINERS) for n in counts):
        raise SystemExit(f"error: --runs {args.runs}: expected numbers from 1 to {len(TRAINERS)}")
    sys.path.insert(0, str(ROOT))
    from tests.helpers import save_tiny_clip

    with tempfile.TemporaryDirectory(prefix="concurrent-") as tmp:
        tmp = Path(tmp)
        data, clip = caltech_root(args.data, tmp), save_tiny_clip(tmp / "tiny.pt")
        for n in counts:
            print(json.dumps({"code": str(args.code), **one_round(n, args.code, data, clip, args.shots, args.passes, tmp)}),
                  flush=True)


if __name__ == "__main__":
    main()
