"""``feature_map.png``: a 2-D map of real vs synthetic features (matplotlib), drawn with the generator a run hands on."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch

from trainers.ship.data.features import FeatureSet
from trainers.ship.model.generator import ShipGenerator
from trainers.ship.model.synthesis import synthesize_per_class
from trainers.ship.reports.pyplot import plt


def pca_2d(reference: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Project ``reference`` and ``others`` onto the top two principal axes of ``reference`` (a second axis of
    zeros when ``reference`` is a single feature)."""
    mean = reference.float().mean(0)
    _, _, v = torch.linalg.svd(reference.float() - mean, full_matrices=False)
    axes = torch.cat([v[:2].t(), torch.zeros(v.shape[1], max(0, 2 - v.shape[0]))], dim=1)
    return [(x.float() - mean) @ axes for x in (reference, *others)]


def feature_map(panels: Sequence[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[str]]],
                path: Path, title: str = "") -> Path:
    """Side-by-side PCA maps of real (dots) and synthetic (crosses) features, coloured by class.

    Each panel is ``(title, real [N, D], real labels, synthetic [M, D], synthetic labels, class names)``;
    the axes are the principal components of the panel's real features.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 5), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, (name, real, real_labels, synthetic, syn_labels, classnames) in zip(axes[0], panels):
        real_2d, syn_2d = pca_2d(real, synthetic)
        for c, classname in enumerate(classnames):
            colour = colours(c % 10)
            r, s = real_2d[real_labels == c], syn_2d[syn_labels == c]
            ax.scatter(r[:, 0], r[:, 1], s=14, color=colour, alpha=0.6, marker="o", label=classname)
            ax.scatter(s[:, 0], s[:, 1], s=18, color=colour, alpha=0.8, marker="x")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("PC 1 of the real features")
        ax.set_ylabel("PC 2")
        ax.legend(fontsize=6, ncol=max(1, math.ceil(len(classnames) / 10)), loc="best", title="o real   x synthetic",
                  title_fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


@torch.no_grad()
def draw_feature_map(classes: int, generator: ShipGenerator, out: Path, dataset: str, base_names: list[str],
                     train: FeatureSet, label_only: tuple[list[str], FeatureSet] | None = None,
                     per_class: int = 30) -> Path:
    """``feature_map.png``: PCA maps of real and synthetic features of up to ``classes`` base classes (real: few-shot
    training images ``train``) and, given ``label_only`` (names, their real test features: shown, never used),
    label-only classes."""
    def panel(title: str, names: list[str], real: FeatureSet):
        keep = torch.cat([torch.nonzero(real.labels == c).flatten()[:per_class] for c in range(min(classes, len(names)))])
        synthetic, labels = synthesize_per_class(generator, generator.class_prompts(names[:classes]), per_class)
        return title, real.features[0][keep], real.labels[keep], synthetic.cpu(), labels.cpu(), names[:classes]

    panels = [panel("base classes: real few-shot training features", base_names, train)]
    if label_only is not None:
        panels.append(panel("label-only classes: real test features (never trained on)", *label_only))
    return feature_map(panels, out / "feature_map.png", title=f"{dataset}: real (o) vs SHIP synthetic (x) features")
