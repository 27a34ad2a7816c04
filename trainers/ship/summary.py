"""Base / new / H tables from run folders: mean ± std over seeds, per dataset and trainer.

    python -m trainers.ship.summary output/base2new [--csv table.csv]
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from .metrics import harmonic_mean

METRICS = ("base", "new", "hm")


def collect(root: str | Path) -> dict[tuple[str, str], list[dict]]:
    """``results.json`` of every run under ``root``, grouped by (dataset, trainer)."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for path in sorted(Path(root).rglob("results.json")):
        result = json.loads(path.read_text())
        groups[(result["dataset"], result["trainer"])].append(result)
    return groups


def table_rows(groups: dict[tuple[str, str], list[dict]]) -> list[dict]:
    """One row per (dataset, trainer) with mean and std of each metric, plus a per-trainer average over datasets."""
    rows = []
    for (dataset, trainer), runs in sorted(groups.items()):
        row = {"dataset": dataset, "trainer": trainer, "seeds": len(runs)}
        for m in METRICS:
            values = [r[m] for r in runs]
            row[m], row[f"{m}_std"] = statistics.fmean(values), statistics.pstdev(values)
        rows.append(row)
    for trainer in sorted({r["trainer"] for r in rows}):
        mine = [r for r in rows if r["trainer"] == trainer]
        if len({r["dataset"] for r in mine}) > 1:
            base, new = statistics.fmean(r["base"] for r in mine), statistics.fmean(r["new"] for r in mine)
            # H of the averages, as the CoCoOp and SHIP papers report it
            rows.append({"dataset": "average", "trainer": trainer, "seeds": min(r["seeds"] for r in mine),
                         "base": base, "new": new, "hm": harmonic_mean(base, new),
                         "base_std": 0.0, "new_std": 0.0, "hm_std": 0.0})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| dataset | trainer | seeds | base | new | H |", "|---|---|---|---|---|---|"]
    for r in rows:
        cells = [f"{r[m]:.2f} ± {r[m + '_std']:.2f}" for m in METRICS]
        lines.append(f"| {r['dataset']} | {r['trainer']} | {r['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainers.ship.summary", description=__doc__.split("\n")[0])
    p.add_argument("root", help="folder searched recursively for results.json")
    p.add_argument("--csv", help="also write the table as CSV to this file")
    args = p.parse_args(argv)
    rows = table_rows(collect(args.root))
    if not rows:
        print(f"error: no results.json under {args.root}", file=sys.stderr)
        return 2
    print(markdown(rows))
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
