"""The paper's tables from run folders: mean ± std over seeds, per dataset, method and config.

    python -m trainers.ship.reports.summary OUTPUT_ROOT [--csv table.csv] [--out FOLDER]

Reads, anywhere under OUTPUT_ROOT:
- ``results.json`` of ``python -m trainers.ship`` runs: base-to-new (base / new / H), generalized
  zero-shot (seen / unseen / H) and cross-dataset transfer (accuracy on the source and each target);
- ``log.txt`` files of CoOp's own trainers (CoOp, CoCoOp, ... under Dassl) in their scripts' layouts (the last
  ``* accuracy`` line of the final test on the test split, as CoOp's ``parse_test_res.py`` reads a finished log): base-to-new pairs ``train_base/<dataset>/shots_K/<trainer>/<cfg>/seed<S>``
  and ``test_new/...``, cross-dataset training ``xd/<source>/<trainer>/<cfg>/seed<S>`` and evaluations
  ``evaluation/<trainer>/<cfg>/<dataset>/seed<S>``, and GZSL ``gzsl/<dataset>/shots_K/<trainer>/<cfg>/seed<S>``
  (the ``* seen`` / ``* unseen`` lines).

Base-to-new and GZSL rows are per dataset plus an average; H is always the harmonic mean of the averaged
accuracies (per dataset: of the seed means; average row: of the dataset means), as CoCoOp's tables give it;
cross-dataset rows are per method, with a column per dataset and the average over the targets.
Runs whose head was chosen on test data (``TEST.SELECTION paper``, as the official code chooses) are rows of
their own, marked ``[selection: test]`` after the trainer. Every row names the route that produced its runs
(``route``: ``core``, ``python -m trainers.ship``; ``dassl``, Dassl's ``train.py``, SHIP's trainers or CoOp's own), and
runs of two routes are never averaged into one row. Only finished runs are read (``finished``): a killed run's
val accuracies are never tabled. A second table puts the published figures
(``published.json``, each with its source) beside the rows they are known for, with the difference.
``--out`` writes ``table.md``, ``table.csv`` and the bar charts (``bars_<protocol>.png``) into FOLDER.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from trainers.ship.common.known_datasets import ALIASES, DATASET_TEMPLATES
from trainers.ship.reports.columns import column_label, dataset_columns
from trainers.ship.reports.finished import coop_log, finished, test_split_values
from trainers.ship.reports.metrics import harmonic_mean

METRICS = {"base2new": ("base", "new", "hm"), "gzsl": ("base", "new", "hm"), "xd": ("accuracy",)}
BASE2NEW_LAYOUT = {"train_base": "base", "test_new": "new"}
# protocol, dataset, trainer, config, shots (None: cross-dataset), route (core or dassl)
Group = tuple[str, str, str, str, "int | None", str]
TEST_MARK = " [selection: test]"  # after the trainer of a run chosen on test data (TEST.SELECTION paper)
PUBLISHED = Path(__file__).with_name("published.json")


def last_value(log: Path, metric: str = "accuracy") -> float | None:
    """The ``* <metric>: xx%`` of the final test on the test split of a Dassl/CoOp log, or None."""
    return test_split_values(log.read_text(errors="replace"), metric)


def read_results(path: Path) -> dict | None:
    """A run's ``results.json``, or None after one line naming it when it cannot be read (empty, half-written by a
    run still writing it, or not a run's results): the summary tables the other runs."""
    try:
        result = json.loads(path.read_text())
        if isinstance(result, dict) and all(k in result for k in ("trainer", "dataset", "seed", "shots")):
            return result
        reason = "not a run's results (no trainer, dataset, seed and shots)"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = "empty" if isinstance(exc, json.JSONDecodeError) and not exc.doc.strip() else f"{type(exc).__name__}: {exc}"
    print(f"skipped {path}: unreadable results.json ({reason}); a run still writing it, or a damaged file",
          file=sys.stderr)
    return None


def _dataset_name(name: str) -> str:
    """The catalog's name of a dataset ("eurosat" in CoOp's folders, "EuroSAT" in results.json); others as they are."""
    return ALIASES.get(name, name) if ALIASES.get(name, name) in DATASET_TEMPLATES else name


def _config_of(parts: tuple[str, ...], trainer: str) -> str:
    """The config part of a run folder ``.../<trainer>/<cfg>/[<dataset>/]seed<S>``; empty when the path has none."""
    if trainer in parts:
        i = len(parts) - 1 - parts[::-1].index(trainer)
        if i + 2 < len(parts):
            return parts[i + 1]
    return ""


def collect(root: str | Path) -> tuple[dict[Group, list[dict[str, float]]], set[str]]:
    """Finished runs grouped by (protocol, dataset, trainer, config), each run a dict of its metrics, and
    the source datasets of the cross-dataset runs."""
    runs: dict[tuple, dict[str, float]] = defaultdict(dict)  # (protocol, dataset, trainer, cfg, seed, shots, route) -> metrics
    sources: set[str] = set()
    folders = {p.parent for name in ("log.txt", "results.json") for p in Path(root).rglob(name)}
    for folder in sorted(folders):
        parts = folder.parts
        if (folder / "results.json").is_file():
            result = read_results(folder / "results.json")
            if result is None:
                continue
            protocol = result.get("protocol", "base2new")
            trainer = result["trainer"] + (TEST_MARK if str(result.get("selection", "honest")).startswith("test") else "")
            key = (protocol, _dataset_name(result["dataset"]), trainer, _config_of(parts, result["trainer"]),
                   f"seed{result['seed']}", f"shots_{result['shots']}", result.get("backend", "core"))
            if protocol == "xd":
                runs[key]["accuracy"] = result["accuracy"]
                sources.add(_dataset_name(result.get("source", "")))
            elif "seen" in result:
                runs[key].update(base=result["seen"], new=result["unseen"])
            else:  # both, or one of a train_base / test_new pair
                runs[key].update({m: result[m] for m in ("base", "new") if m in result})
            continue
        log = coop_log(folder)  # a finished run of CoOp's own trainers (a SHIP run without results.json is not finished)
        if log is None:  # a killed run, or a SHIP run of an older version: never tabled, never silently
            print(f"skipped {folder}: not finished ({finished(folder)[1]})", file=sys.stderr)
            continue
        marker = next((m for m in (*BASE2NEW_LAYOUT, "evaluation", "gzsl", "xd") if m in parts), None)
        if marker is None or not parts[-1].startswith("seed"):
            continue
        accuracy = last_value(log)
        i = parts.index(marker)
        if marker == "evaluation" and len(parts) == i + 5:  # evaluation/<trainer>/<cfg>/<dataset>/seed<S>
            trainer, cfg, dataset, seed = parts[i + 1 : i + 5]
            runs[("xd", _dataset_name(dataset), trainer, cfg, seed, "", "dassl")]["accuracy"] = accuracy
        elif marker == "xd" and len(parts) == i + 5:  # xd/<source>/<trainer>/<cfg>/seed<S>: the source's own test
            dataset, trainer, cfg, seed = parts[i + 1 : i + 5]
            runs[("xd", _dataset_name(dataset), trainer, cfg, seed, "", "dassl")]["accuracy"] = accuracy
            sources.add(_dataset_name(dataset))
        elif marker == "gzsl" and len(parts) == i + 6 and last_value(log, "unseen") is not None:
            dataset, shots, trainer, cfg, seed = parts[i + 1 : i + 6]  # gzsl/<dataset>/shots_K/<trainer>/<cfg>/seed<S>
            runs[("gzsl", _dataset_name(dataset), trainer, cfg, seed, shots, "dassl")].update(
                base=last_value(log, "seen"), new=last_value(log, "unseen"))
        elif marker in BASE2NEW_LAYOUT and len(parts) == i + 6:  # <marker>/<dataset>/shots_K/<trainer>/<cfg>/seed<S>
            dataset, shots, trainer, cfg, seed = parts[i + 1 : i + 6]
            runs[("base2new", _dataset_name(dataset), trainer, cfg, seed, shots, "dassl")][BASE2NEW_LAYOUT[marker]] = accuracy
    groups: dict[Group, list[dict[str, float]]] = defaultdict(list)
    for (protocol, dataset, trainer, cfg, _seed, shots, route), metrics in sorted(runs.items()):
        if protocol == "xd":  # the shots are in the config name of CoCoOp's layout
            groups[(protocol, dataset, trainer, cfg, None, route)].append(metrics)
        elif "base" in metrics and "new" in metrics:  # runs of other shots or routes never mix
            groups[(protocol, dataset, trainer, cfg, int(shots.split("_")[-1]), route)].append(
                {**metrics, "hm": harmonic_mean(metrics["base"], metrics["new"])})
    return groups, sources - {""}


def table_rows(groups: dict[Group, list[dict[str, float]]], sources: set[str] = frozenset()) -> list[dict]:
    """One row per (protocol, dataset, trainer, config, shots, route) with the mean and std of each metric, plus per
    method an average row: over datasets (base-to-new, GZSL: H of the average base and new) or over targets
    (cross-dataset)."""
    rows = []
    for (protocol, dataset, trainer, cfg, shots, route), runs in sorted(groups.items(),
                                                                       key=lambda g: (*g[0][:4], g[0][4] or 0, g[0][5])):
        row = {"protocol": protocol, "dataset": dataset, "trainer": trainer, "config": cfg, "shots": shots,
               "route": route, "seeds": len(runs)}
        for m in METRICS[protocol]:
            values = [r[m] for r in runs]
            row[m], row[f"{m}_std"] = statistics.fmean(values), statistics.pstdev(values)
        if "hm" in row:  # H of the seed-averaged accuracies (CoCoOp's tables); its std stays that of the per-seed H
            row["hm"] = harmonic_mean(row["base"], row["new"])
        rows.append(row)
    methods = {(r["protocol"], r["trainer"], r["config"], r["shots"], r["route"]) for r in rows}
    for protocol, trainer, cfg, shots, route in sorted(methods, key=lambda m: (*m[:3], m[3] or 0, m[4])):
        mine = [r for r in rows
                if (r["protocol"], r["trainer"], r["config"], r["shots"], r["route"]) == (protocol, trainer, cfg, shots, route)
                and r["dataset"] not in (sources if protocol == "xd" else ())]
        if len(mine) < 2:
            continue
        average = {"protocol": protocol, "dataset": "average", "trainer": trainer, "config": cfg, "shots": shots,
                   "route": route, "seeds": min(r["seeds"] for r in mine)}
        for m in METRICS[protocol]:
            average[m], average[f"{m}_std"] = statistics.fmean(r[m] for r in mine), 0.0
        if protocol != "xd":
            average["hm"] = harmonic_mean(average["base"], average["new"])
        rows.append(average)
    return rows


def first_configs(rows: list[dict], first: list[str]) -> list[dict]:
    """``rows`` with those of the configs ``first`` leading each dataset's rows, in that order (the rest as they were)."""
    rank = {c: i for i, c in enumerate(first)}
    return sorted(rows, key=lambda r: (r["protocol"], r["dataset"] == "average", r["dataset"],
                                       rank.get(r["config"], len(first)))) if first else rows


def _cell(row: dict, metric: str) -> str:
    """The mean ± the std over seeds; "n/a" for the std of one seed or of an average over datasets."""
    std = "n/a" if row["seeds"] < 2 or row["dataset"] == "average" else f"{row[metric + '_std']:.2f}"
    return f"{row[metric]:.2f} ± {std}"


CAPTION = ("H is the harmonic mean of the seed-averaged base (seen) and new (unseen) accuracies, and in the average row "
           "of the dataset-averaged ones (CoCoOp's convention); ± is the standard deviation over seeds, for H that of "
           "the per-seed H (n/a: one seed, or an average over datasets).")
SELECTION_NOTE = (f"{TEST_MARK.strip()}: chosen on the test split as the official code chooses (TEST.SELECTION paper); "
                  f"reproduces the published protocol, not a number to compare honestly.")


def published_figures(path: Path = PUBLISHED) -> list[dict]:
    """The published rows (``published.json``): protocol, dataset, trainer, shots, base / new / hm, source."""
    return json.loads(path.read_text())["rows"]


def add_published(rows: list[dict], published: list[dict]) -> list[dict]:
    """Give each row a published figure is known for (same protocol, dataset, trainer and shots; a test-selected
    row too) ``published_<metric>``, ``delta_<metric>`` (ours − published) and ``published_source``; returns them."""
    known = {(p["protocol"], p["dataset"], p["trainer"], p["shots"]): p for p in published}
    matched = []
    for row in rows:
        figure = known.get((row["protocol"], row["dataset"], row["trainer"].removesuffix(TEST_MARK), row["shots"]))
        if figure is None:
            continue
        for m in METRICS[row["protocol"]]:
            row[f"published_{m}"], row[f"delta_{m}"] = figure[m], row[m] - figure[m]
        row["published_source"] = f"{figure['source']} ({figure['backbone']}, as {figure['published_as']})"
        matched.append(row)
    return matched


def published_markdown(matched: list[dict]) -> str:
    """The rows with a published figure: ours, the published figure and the difference per metric, and the source."""
    lines = ["| published beside ours | dataset | trainer | route | config | shots | seeds | base: ours / published / Δ "
             "| new: ours / published / Δ | H: ours / published / Δ | source |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in matched:
        cells = [f"{r[m]:.2f} / {r[f'published_{m}']:.2f} / {r[f'delta_{m}']:+.2f}" for m in METRICS[r["protocol"]]]
        lines.append(f"| {r['protocol']} | {r['dataset']} | {r['trainer']} | {r['route']} | {r['config']} | {r['shots']} | {r['seeds']} | "
                     + " | ".join(cells) + f" | {r['published_source']} |")
    return "\n".join(lines) + "\n\nΔ = ours − published. The published figures are those of published.json, each with its source."


def markdown(rows: list[dict], sources: set[str] = frozenset()) -> str:
    """Base-to-new and GZSL: a row per dataset and method, with :data:`CAPTION`. Cross-dataset: a row per method,
    a column per dataset (sources first, then the targets and their average)."""
    tables = []
    long_rows = [r for r in rows if r["protocol"] != "xd"]
    if long_rows:
        lines = ["| protocol | dataset | trainer | route | config | shots | seeds | base / seen | new / unseen | H |",
                 "|---|---|---|---|---|---|---|---|---|---|"]
        for r in long_rows:
            lines.append(f"| {r['protocol']} | {r['dataset']} | {r['trainer']} | {r['route']} | {r['config']} | {r['shots']} | {r['seeds']} | "
                         + " | ".join(_cell(r, m) for m in METRICS[r["protocol"]]) + " |")
        marked = any(r["trainer"].endswith(TEST_MARK) for r in long_rows)
        tables.append("\n".join(lines) + "\n\n" + CAPTION + ("\n" + SELECTION_NOTE if marked else ""))
    xd = [r for r in rows if r["protocol"] == "xd"]
    if xd:
        datasets = dataset_columns(xd, sources)
        header = [column_label(d, sources) for d in datasets]
        lines = ["| cross-dataset | route | config | seeds | " + " | ".join(header) + " |",
                 "|---|---|---|---|" + "---|" * len(datasets)]
        for trainer, route, cfg in sorted({(r["trainer"], r["route"], r["config"]) for r in xd}):
            cells = {r["dataset"]: r for r in xd if (r["trainer"], r["route"], r["config"]) == (trainer, route, cfg)}
            seeds = min(r["seeds"] for r in cells.values())
            lines.append(f"| {trainer} | {route} | {cfg} | {seeds} | "
                         + " | ".join(_cell(cells[d], "accuracy") if d in cells else "–" for d in datasets) + " |")
        tables.append("\n".join(lines) + ("\n\n" + SELECTION_NOTE if any(t.endswith(TEST_MARK) for t, _ in
                                                                        {(r["trainer"], r["config"]) for r in xd}) else ""))
    matched = [r for r in rows if "published_source" in r]  # add_published marked them
    if matched:
        tables.append(published_markdown(matched))
    return "\n\n".join(tables)


def write_csv(rows: list[dict], path: Path) -> None:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainers.ship.reports.summary", description=__doc__.split("\n")[0])
    p.add_argument("root", help="folder searched recursively for finished runs")
    p.add_argument("--csv", help="also write the table as CSV to this file")
    p.add_argument("--out", help="write table.md, table.csv and bar charts (PNG) into this folder")
    p.add_argument("--first", nargs="+", default=[], metavar="CONFIG",
                   help="rows of these configs first within each dataset, in this order (ablation.sh: SHIP, then the control)")
    args = p.parse_args(argv)
    groups, sources = collect(args.root)
    rows = first_configs(table_rows(groups, sources), args.first)
    add_published(rows, published_figures())
    if not rows:
        print(f"error: no finished run (results.json, or a log.txt of CoOp's own trainers with its test-split accuracy) "
              f"under {args.root}",
              file=sys.stderr)
        return 2
    table = markdown(rows, sources)
    print(table)
    if args.csv:
        write_csv(rows, Path(args.csv))
    if args.out:
        from trainers.ship.reports.charts import bar_charts, shot_curves  # matplotlib only when plots are asked for

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "table.md").write_text(table + "\n")
        write_csv(rows, out / "table.csv")
        for path in bar_charts(rows, out, sources) + shot_curves(rows, out):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
