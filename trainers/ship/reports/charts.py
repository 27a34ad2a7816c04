"""Charts of the summary table (matplotlib, PNG): grouped bars per protocol, and accuracy against shots."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.ticker  # noqa: F401  (ScalarFormatter for the shot axis)
import torch

from trainers.ship.reports.columns import column_label, dataset_columns
from trainers.ship.reports.pyplot import plt

PANELS = {"base2new": (("base", "Base"), ("new", "New"), ("hm", "H")),
          "gzsl": (("base", "Seen"), ("new", "Unseen"), ("hm", "H")),
          "xd": (("accuracy", "Accuracy"),)}
TITLES = {"base2new": "Base-to-new generalisation", "gzsl": "Generalized zero-shot", "xd": "Cross-dataset transfer"}


def _method(row: dict, with_shots: bool = False) -> str:
    """A method's legend label: trainer (config[, K shots], route)."""
    details = [d for d in (row["config"], f"{row['shots']} shots" if with_shots and row.get("shots") else "",
                           row.get("route", "")) if d]
    return f"{row['trainer']} ({', '.join(details)})" if details else row["trainer"]


def bar_chart(rows: list[dict], protocol: str, path: Path, sources: set[str] = frozenset()) -> Path:
    """One panel per metric of ``protocol``; in each, a group of bars per dataset, one bar per method
    (mean over seeds, std as the error bar)."""
    rows = [r for r in rows if r["protocol"] == protocol]
    datasets = dataset_columns(rows, sources)
    several = len({r.get("shots") for r in rows}) > 1  # runs of several shots: one bar each
    methods = list(dict.fromkeys(_method(r, several) for r in rows))  # the table's order
    cell = {(r["dataset"], _method(r, several)): r for r in rows}
    panels = PANELS[protocol]
    width = 0.8 / len(methods)
    legend_rows = math.ceil(len(methods) / 3)
    height = 2.8 * len(panels) + 0.3 * legend_rows + 0.4
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(6.0, 0.5 + 0.25 * len(datasets) * (len(methods) + 1)), height),
                             squeeze=False)
    for ax, (metric, label) in zip(axes[:, 0], panels):
        top = 0.0
        for j, method in enumerate(methods):
            xs = [i + (j - (len(methods) - 1) / 2) * width for i, d in enumerate(datasets) if (d, method) in cell]
            found = [cell[(d, method)] for d in datasets if (d, method) in cell]
            ax.bar(xs, [r[metric] for r in found], width, yerr=[r[f"{metric}_std"] for r in found], capsize=2,
                   label=method, color=plt.get_cmap("tab10")(j % 10))
            top = max([top] + [r[metric] + r[f"{metric}_std"] for r in found])
        ax.set_ylabel(f"{label} (%)")
        ax.set_ylim(0, min(100.0, max(5.0, 1.15 * top)))
        ax.set_xticks(range(len(datasets)))
        ax.set_xticklabels([column_label(d, sources, "\n") for d in datasets], rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(3, len(methods)), fontsize=7, frameon=False)
    axes[0, 0].set_title(TITLES[protocol], fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.3 * legend_rows + 0.1) / height))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def bar_charts(rows: list[dict], folder: Path, sources: set[str] = frozenset()) -> list[Path]:
    """``bars_<protocol>.png`` in ``folder`` for each protocol present in the summary ``rows``."""
    return [bar_chart(rows, protocol, folder / f"bars_{protocol}.png", sources)
            for protocol in PANELS if any(r["protocol"] == protocol for r in rows)]


def shot_curves(rows: list[dict], folder: Path) -> list[Path]:
    """``curves_<protocol>.png``: accuracy against the number of shots, a line per dataset and method (mean over
    seeds, ± std as a band), one panel per metric; for each protocol where some method ran with several shots."""
    paths = []
    for protocol in ("base2new", "gzsl"):
        lines: dict[str, list[dict]] = {}
        for r in rows:
            if r["protocol"] == protocol and r.get("shots"):
                lines.setdefault(f"{_method(r)} · {r['dataset']}", []).append(r)
        lines = {label: sorted(points, key=lambda r: r["shots"]) for label, points in lines.items() if len(points) > 1}
        if not lines:
            continue
        panels = PANELS[protocol]
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6 + 0.25 * len(lines)), squeeze=False)
        for ax, (metric, label) in zip(axes[0], panels):
            for name, points in sorted(lines.items()):
                shots = [p["shots"] for p in points]
                mean = torch.tensor([p[metric] for p in points])
                std = torch.tensor([p[f"{metric}_std"] for p in points])
                ax.plot(shots, mean.tolist(), marker="o", label=name)
                ax.fill_between(shots, (mean - std).tolist(), (mean + std).tolist(), alpha=0.2)
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted({p["shots"] for pts in lines.values() for p in pts}))
            ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.set_xlabel("shots per base class")
            ax.set_ylabel(f"{label} (%)")
            ax.grid(alpha=0.3)
        fig.suptitle(f"{TITLES[protocol]}: accuracy against shots (mean ± std over seeds)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8)
        fig.tight_layout(rect=(0, 0.08 + 0.03 * len(lines) / 3, 1, 0.95))
        path = folder / f"curves_{protocol}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths
