import logging

import pytest
import torch

from trainers.ship.reports.metrics import classification_report, harmonic_mean, log_report

from .helpers import ListHandler


def test_harmonic_mean():
    assert harmonic_mean(80.0, 60.0) == pytest.approx(2 * 80 * 60 / 140)
    assert harmonic_mean(0.0, 0.0) == 0.0


def test_report_by_hand():
    labels = torch.tensor([0, 0, 1, 1, 2])
    pred = torch.tensor([0, 1, 1, 1, 0])
    r = classification_report(pred, labels, num_classes=3)
    assert (r["total"], r["correct"]) == (5, 3)
    assert r["accuracy"] == pytest.approx(60.0) and r["error"] == pytest.approx(40.0)
    # per-class F1: class 0: p=1/2 r=1/2 -> 0.5; class 1: p=2/3 r=1 -> 0.8; class 2: 0
    assert r["macro_f1"] == pytest.approx(100 * (0.5 + 0.8 + 0.0) / 3, abs=1e-4)


def test_dassl_format_lines():
    logger, handler = logging.getLogger("ship.test"), ListHandler()
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    log_report(logger, {"total": 1549, "correct": 1234, "accuracy": 79.664, "error": 20.336, "macro_f1": 78.5})
    assert "* accuracy: 79.66%" in handler.messages and "* total: 1,549" in handler.messages


def test_gzsl_by_hand():
    """2 seen classes (0, 1), 2 unseen (2, 3), one joint label space."""
    from trainers.ship.reports.metrics import gzsl_report

    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 3])
    pred = torch.tensor([0, 0, 0, 2, 1, 0, 2, 1, 3, 3])
    r = gzsl_report(pred, labels, num_seen=2, num_classes=4)
    # seen: class 0 3/4, class 1 1/2 -> 62.5; unseen: class 2 1/3, class 3 1/1 -> 66.67
    assert r["seen"] == pytest.approx(62.5) and r["unseen"] == pytest.approx(200 / 3)
    assert r["hm"] == pytest.approx(2 * 62.5 * (200 / 3) / (62.5 + 200 / 3))
    assert r["total"] == 10
