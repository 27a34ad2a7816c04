"""Base / new / H tables from run folders: mean ± std over seeds, per dataset, trainer and config.

    python -m trainers.ship.summary OUTPUT_ROOT [--csv table.csv]

Reads two kinds of runs under OUTPUT_ROOT:
- CoOp's layout ``.../train_base/<dataset>/shots_K/<trainer>/<cfg>/seed<S>`` with its twin under
  ``test_new``: the base accuracy is the last ``* accuracy`` of the train_base log, the new one
  that of the test_new log (what CoOp's ``parse_test_res.py`` reads; Dassl and CoOp runs too);
- any other folder with a ``results.json`` of ``python -m trainers.ship`` that holds both, or a
  generalized zero-shot result (protocol "gzsl": seen / unseen / H in the base / new / H columns).
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from .metrics import harmonic_mean

METRICS = ("base", "new", "hm")
ACCURACY = re.compile(r"^\* accuracy: ([\d.]+)%", re.MULTILINE)
LAYOUT = {"train_base": "base", "test_new": "new"}


def last_accuracy(log: Path) -> float | None:
    """The last ``* accuracy: xx%`` of a Dassl/CoOp log, or None."""
    found = ACCURACY.findall(log.read_text(errors="replace"))
    return float(found[-1]) if found else None


def collect(root: str | Path) -> dict[tuple[str, str, str, str], list[dict[str, float]]]:
    """Finished runs grouped by (protocol, dataset, trainer, config); each run a dict with base, new and hm
    (seen, unseen and H for the gzsl protocol)."""
    runs: dict[tuple, dict[str, float]] = defaultdict(dict)  # (protocol, dataset, trainer, cfg, seed, shots) -> metrics
    folders = {p.parent for name in ("log.txt", "results.json") for p in Path(root).rglob(name)}
    for folder in sorted(folders):
        parts = folder.parts
        marker = next((m for m in LAYOUT if m in parts), None)
        i = parts.index(marker) if marker else -1
        if marker and len(parts) == i + 6 and (folder / "log.txt").is_file():  # <marker>/<dataset>/shots_K/<trainer>/<cfg>/seed<S>
            accuracy = last_accuracy(folder / "log.txt")
            if accuracy is not None:
                dataset, shots, trainer, cfg, seed = parts[i + 1 : i + 6]
                runs[("base2new", dataset, trainer, cfg, seed, shots)][LAYOUT[marker]] = accuracy
        elif (folder / "results.json").is_file():
            result = json.loads((folder / "results.json").read_text())
            key = (result["dataset"], result["trainer"], "", f"seed{result['seed']}", f"shots_{result['shots']}")
            if "base" in result and "new" in result:
                runs[("base2new", *key)].update(base=result["base"], new=result["new"])
            elif "seen" in result:
                runs[("gzsl", *key)].update(base=result["seen"], new=result["unseen"])
    groups: dict[tuple[str, str, str, str], list[dict[str, float]]] = defaultdict(list)
    for (protocol, dataset, trainer, cfg, _seed, _shots), metrics in sorted(runs.items()):
        if "base" in metrics and "new" in metrics:
            groups[(protocol, dataset, trainer, cfg)].append({**metrics, "hm": harmonic_mean(metrics["base"], metrics["new"])})
    return groups


def table_rows(groups: dict[tuple[str, str, str, str], list[dict[str, float]]]) -> list[dict]:
    """One row per (protocol, dataset, trainer, config) with mean and std of each metric, plus averages."""
    rows = []
    for (protocol, dataset, trainer, cfg), runs in sorted(groups.items()):
        row = {"protocol": protocol, "dataset": dataset, "trainer": trainer, "config": cfg, "seeds": len(runs)}
        for m in METRICS:
            values = [r[m] for r in runs]
            row[m], row[f"{m}_std"] = statistics.fmean(values), statistics.pstdev(values)
        rows.append(row)
    for protocol, trainer, cfg in sorted({(r["protocol"], r["trainer"], r["config"]) for r in rows}):
        mine = [r for r in rows if (r["protocol"], r["trainer"], r["config"]) == (protocol, trainer, cfg)]
        if len(mine) > 1:
            base, new = statistics.fmean(r["base"] for r in mine), statistics.fmean(r["new"] for r in mine)
            # H of the averages, as the CoCoOp and SHIP papers report it
            rows.append({"protocol": protocol, "dataset": "average", "trainer": trainer, "config": cfg,
                         "seeds": min(r["seeds"] for r in mine),
                         "base": base, "new": new, "hm": harmonic_mean(base, new),
                         "base_std": 0.0, "new_std": 0.0, "hm_std": 0.0})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| protocol | dataset | trainer | config | seeds | base / seen | new / unseen | H |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [f"{r[m]:.2f} ± {r[m + '_std']:.2f}" for m in METRICS]
        lines.append(f"| {r['protocol']} | {r['dataset']} | {r['trainer']} | {r['config']} | {r['seeds']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainers.ship.summary", description=__doc__.split("\n")[0])
    p.add_argument("root", help="folder searched recursively for finished runs")
    p.add_argument("--csv", help="also write the table as CSV to this file")
    args = p.parse_args(argv)
    rows = table_rows(collect(args.root))
    if not rows:
        print(f"error: no finished base-to-new run (train_base + test_new, or results.json) under {args.root}",
              file=sys.stderr)
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
