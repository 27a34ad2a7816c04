"""How good the synthetic features are, written by every SHIP run as ``synthesis.json`` (and one log line).

Per label-only class: the cosine between the mean synthetic feature and the class's zero-shot text feature,
the spread of the synthetic features (their mean cosine distance to their own mean), and, where the class's
real test features exist (base-to-new), the cosine of the synthetic mean and of the zero-shot text feature
to the real mean. The real features are read for this report only: nothing is trained or selected on them.
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from trainers.ship.common.runtime import atomic_write_json
from trainers.ship.data.features import FeatureSet
from trainers.ship.model.classifiers import zero_shot_weights
from trainers.ship.model.generator import ShipGenerator
from trainers.ship.model.synthesis import synthesize_per_class

logger = logging.getLogger("ship")


@torch.no_grad()
def synthesis_quality(generator: ShipGenerator, names: list[str], zero_shot: torch.Tensor, real: FeatureSet | None = None,
                      per_class: int = 64) -> dict:
    """The report for the label-only classes ``names`` (``zero_shot``: their normalised text features [C, D];
    ``real``: their test features, labels indexing ``names``, or None)."""
    features, labels = synthesize_per_class(generator, generator.class_prompts(names), per_class)
    features, labels = features.float().cpu(), labels.cpu()
    zero_shot = F.normalize(zero_shot.float().cpu(), dim=-1)
    classes = []
    for c, name in enumerate(names):
        synthetic = features[labels == c]
        mean = F.normalize(synthetic.mean(0), dim=0)
        row = {"class": name, "cos_synthetic_text": float(mean @ zero_shot[c]),
               "spread": float((1 - synthetic @ mean).mean())}
        if real is not None and (real.labels == c).any():
            real_mean = F.normalize(real.features[0][real.labels == c].float().mean(0), dim=0)
            row.update(cos_synthetic_real=float(mean @ real_mean), cos_text_real=float(zero_shot[c] @ real_mean))
        classes.append(row)
    summary = {}  # the real test mean only over the classes that have test images
    for key in ("cos_synthetic_text", "spread", "cos_synthetic_real", "cos_text_real"):
        values = [r[key] for r in classes if key in r]
        if values:
            summary[key] = sum(values) / len(values)
    return {"per_class_samples": per_class, "classes": len(names), "mean": summary, "per_class": classes}


def log_quality(report: dict) -> None:
    mean = report["mean"]
    line = (f"Synthetic features of {report['classes']} label-only classes: cos(synthetic mean, zero-shot text) "
            f"{mean['cos_synthetic_text']:.3f}, spread {mean['spread']:.3f}")
    if "cos_synthetic_real" in mean:
        line += (f"; cos to the real test mean (report only): synthetic {mean['cos_synthetic_real']:.3f}, "
                 f"zero-shot text {mean['cos_text_real']:.3f}")
    logger.info(line)


def write_synthesis_report(out, generator: ShipGenerator, names: list[str], text_encoder, templates: list[str],
                           real: FeatureSet | None = None) -> dict:
    """``synthesis.json`` in the run folder ``out`` and its log line."""
    report = synthesis_quality(generator, names, zero_shot_weights(text_encoder, names, templates), real)
    atomic_write_json(report, out / "synthesis.json")
    log_quality(report)
    return report
