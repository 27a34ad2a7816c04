"""Accuracy, macro-F1 and harmonic means, printed the way Dassl's evaluator prints them."""
from __future__ import annotations

import logging
from typing import Callable

import torch

from trainers.ship.data.features import FeatureSet
from trainers.ship.data.split_features import SplitFeatures

logger = logging.getLogger("ship")


def harmonic_mean(a: float, b: float) -> float:
    """H = 2ab / (a + b); 0 when both are 0."""
    return 2 * a * b / (a + b) if a + b > 0 else 0.0


def classification_report(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    """total, correct, accuracy (%), error (%) and macro-F1 (%) of predicted labels."""
    pred, labels = pred.cpu(), labels.cpu()
    correct = int((pred == labels).sum())
    total = len(labels)
    confusion = torch.bincount(labels * num_classes + pred, minlength=num_classes**2).view(num_classes, num_classes)
    tp = confusion.diag().float()
    precision = tp / confusion.sum(0).clamp(min=1)
    recall = tp / confusion.sum(1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    present = confusion.sum(1) > 0  # macro-average over classes that occur in the labels
    accuracy = 100.0 * correct / max(total, 1)
    return {
        "total": total,
        "correct": correct,
        "accuracy": accuracy,
        "error": 100.0 - accuracy,
        "macro_f1": 100.0 * float(f1[present].mean()) if present.any() else 0.0,
    }


def log_report(logger: logging.Logger, report: dict[str, float]) -> None:
    """The lines Dassl prints after a test; CoOp's ``parse_test_res.py`` reads ``* accuracy``."""
    logger.info("=> result")
    logger.info(f"* total: {report['total']:,}")
    logger.info(f"* correct: {report['correct']:,}")
    logger.info(f"* accuracy: {report['accuracy']:.2f}%")
    logger.info(f"* error: {report['error']:.2f}%")
    logger.info(f"* macro_f1: {report['macro_f1']:.2f}%")


def gzsl_report(pred: torch.Tensor, labels: torch.Tensor, num_seen: int, num_classes: int) -> dict[str, float]:
    """Generalized zero-shot learning (Xian et al.): predictions over the joint label space of seen
    (0..num_seen-1) and unseen classes; seen and unseen accuracy are each the mean per-class top-1
    accuracy of their classes, H their harmonic mean (all in %)."""
    pred, labels = pred.cpu(), labels.cpu()
    hits = torch.zeros(num_classes).index_add_(0, labels, (pred == labels).float())
    counts = torch.bincount(labels, minlength=num_classes).float()
    present = counts > 0
    per_class = hits / counts.clamp(min=1)

    def mean_over(classes: torch.Tensor) -> float:
        mask = present & classes
        return 100.0 * float(per_class[mask].mean()) if mask.any() else 0.0

    is_seen = torch.arange(num_classes) < num_seen
    seen, unseen = mean_over(is_seen), mean_over(~is_seen)
    return {"seen": seen, "unseen": unseen, "hm": harmonic_mean(seen, unseen), "total": len(labels)}


def evaluate_gzsl(data: SplitFeatures, joint: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> dict[str, float]:
    """Generalized zero-shot: every test image against base + new classes; seen / unseen / H (per-class means)."""
    n_base, n_all = len(data.base_names), len(data.base_names) + len(data.new_names)
    features = torch.cat([data.test_base.features[0], data.test_new.features[0]])
    labels = torch.cat([data.test_base.labels, data.test_new.labels + n_base])
    logger.info(f"Evaluate GZSL: {len(labels)} test images, {n_base} seen + {n_all - n_base} unseen classes in one label space")
    with torch.no_grad():
        pred = joint(features.to(device)).argmax(-1)
    log_report(logger, classification_report(pred, labels, n_all))
    report = gzsl_report(pred, labels, n_base, n_all)
    for key in ("seen", "unseen", "hm"):
        logger.info(f"* {key}: {report[key]:.2f}%")
    return {k: report[k] for k in ("seen", "unseen", "hm")}


def evaluate(test: FeatureSet, scorer: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> dict[str, float]:
    """The classification report of ``scorer`` on the test features."""
    with torch.no_grad():
        logits = scorer(test.features[0].to(device))
    return classification_report(logits.argmax(-1), test.labels, logits.shape[1])
