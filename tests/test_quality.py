"""synthesis.json: the quality report of the synthetic features against a direct computation."""
import json

import pytest
import torch

from trainers.ship.__main__ import main
from trainers.ship.model.classifiers import zero_shot_weights
from trainers.ship.model.generator import ShipGenerator
from trainers.ship.model.synthesis import synthesize_per_class
from trainers.ship.reports.quality import synthesis_quality

from .helpers import make_world, write_image_folder


def test_report_numbers_equal_a_direct_computation(text_encoder):
    world = make_world(text_encoder, 0, shots=2)
    torch.manual_seed(0)
    generator = ShipGenerator(text_encoder, encoder_hidden=32, mlp_hidden=48)
    names = world.new_names
    text = zero_shot_weights(text_encoder, names, ["a photo of a {}."])
    torch.manual_seed(5)
    report = synthesis_quality(generator, names, text, world.test_new, per_class=16)
    torch.manual_seed(5)
    features, labels = synthesize_per_class(generator, generator.class_prompts(names), 16)
    for c, row in enumerate(report["per_class"]):
        own = features[labels == c]
        mean = own.mean(0) / own.mean(0).norm()
        real = world.test_new.features[0][world.test_new.labels == c].mean(0)
        real = real / real.norm()
        assert row["class"] == names[c]
        assert row["cos_synthetic_text"] == pytest.approx(float(mean @ text[c]), abs=1e-5)
        assert row["spread"] == pytest.approx(float(sum(1 - f @ mean for f in own) / len(own)), abs=1e-5)
        assert row["cos_synthetic_real"] == pytest.approx(float(mean @ real), abs=1e-5)
        assert row["cos_text_real"] == pytest.approx(float(text[c] @ real), abs=1e-5)
    assert report["mean"]["spread"] == pytest.approx(sum(r["spread"] for r in report["per_class"]) / len(names))
    no_real = synthesis_quality(generator, names, text, None, per_class=4)
    assert "cos_synthetic_real" not in no_real["per_class"][0] and "cos_text_real" not in no_real["mean"]


def test_every_ship_run_writes_the_report(tmp_path, tiny_clip_path, capsys):
    folder = write_image_folder(tmp_path / "toy", ["cat", "dog", "car", "tree"], per_class=6)
    for trainer in ("SHIP_TipAdapter", "TipAdapter"):
        assert main([str(a) for a in ["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--trainer", trainer,
                                      "--output-dir", tmp_path / trainer, "--cache-dir", tmp_path / "cache",
                                      "TRAINER.SHIP.GEN_EPOCHS", 2, "TRAINER.SHIP.AUG_PASSES", 1,
                                      "DATALOADER.NUM_WORKERS", 0]]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "SHIP_TipAdapter" / "synthesis.json").read_text())
    assert [r["class"] for r in report["per_class"]] == ["dog", "tree"] and "cos_text_real" in report["mean"]
    assert "Synthetic features of 2 label-only classes: cos(synthetic mean, zero-shot text)" in out
    assert not (tmp_path / "TipAdapter" / "synthesis.json").exists()
