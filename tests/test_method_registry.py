"""Adding a fine-tuner is one file: a method registered from this test file alone runs through the CLI,
base-to-new and GZSL, plain and as SHIP_<method>, with no other change."""
import json

import pytest
import torch
import torch.nn.functional as F

from trainers.ship.__main__ import main
from trainers.ship.common.errors import ShipError
from trainers.ship.methods import METHODS, FeatureMethod, register, resolve, trainer_names
from trainers.ship.model.classifiers import cosine_logits, zero_shot_weights
from trainers.ship.model.synthesis import synthesize_per_class
from trainers.ship.training.stages import STAGE_KEYS

from .helpers import write_image_folder


class NearestMean(FeatureMethod):
    """A throwaway method: each class's mean feature (real, or under SHIP synthetic for the label-only classes);
    a class without one is scored by its zero-shot weight."""

    name = "NearestMean"
    checkpoint = "nearest_mean"

    def fit(self, inputs):
        names, means = list(inputs.base_names), [inputs.train.features.mean(0)[inputs.train.labels == c].mean(0)
                                                 for c in range(len(inputs.base_names))]
        if inputs.synthetic is not None:
            features, labels = synthesize_per_class(inputs.synthetic.generator, inputs.synthetic.prompts, 8)
            names += inputs.label_only
            means += [features[labels == c].mean(0).cpu() for c in range(len(inputs.label_only))]
        self.names, self.means = names, F.normalize(torch.stack(means), dim=-1)

    def scorer(self, classes):
        weights = zero_shot_weights(self.text_encoder, classes.names, self.templates)
        known = {n: i for i, n in enumerate(self.names)}
        rows = torch.stack([self.means[known[n]] if n in known else weights[k] for k, n in enumerate(classes.names)])
        return lambda f: cosine_logits(f, rows, self.text_encoder.logit_scale)

    def state_dict(self):
        return {"names": self.names, "means": self.means}

    def load_state_dict(self, state):
        self.names, self.means = list(state["names"]), state["means"]


@pytest.fixture
def registered():
    register(NearestMean)
    yield NearestMean
    del METHODS["NearestMean"], STAGE_KEYS["NearestMean"], STAGE_KEYS["SHIP_NearestMean"]


def test_registry_names_and_errors(registered):
    assert {"NearestMean", "SHIP_NearestMean"} <= set(trainer_names())
    assert resolve("SHIP_NearestMean") == (NearestMean, True) and resolve("NearestMean") == (NearestMean, False)
    assert "SHIP_ZeroshotCLIP" not in trainer_names()  # nothing to train: no SHIP variant
    with pytest.raises(ShipError, match="registered already"):
        register(NearestMean)
    with pytest.raises(ShipError, match="unknown trainer 'SHIP_Nothing'"):
        resolve("SHIP_Nothing")


@pytest.mark.parametrize("protocol", ["all", "gzsl"])
def test_a_method_from_one_file_runs_plain_and_with_ship(registered, tmp_path, tiny_clip_path, protocol, capsys):
    folder = write_image_folder(tmp_path / "toy", ["cat", "dog", "car", "tree"], per_class=6)
    results = {}
    for trainer in ("NearestMean", "SHIP_NearestMean"):
        code = main([str(a) for a in ["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--trainer", trainer,
                                      "--output-dir", tmp_path / trainer, "--cache-dir", tmp_path / "cache",
                                      "TRAINER.SHIP.GEN_EPOCHS", 2, "TRAINER.SHIP.AUG_PASSES", 1,
                                      "DATALOADER.NUM_WORKERS", 0, "DATASET.SUBSAMPLE_CLASSES", protocol]])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert ("SHIP synthesises features of 2 label-only classes" in out) == (trainer == "SHIP_NearestMean")
        assert (tmp_path / trainer / "nearest_mean" / "model.pth.tar-0").is_file()
        results[trainer] = json.loads((tmp_path / trainer / "results.json").read_text())
    keys = ("base", "new", "hm") if protocol == "all" else ("seen", "unseen", "hm")
    for r in results.values():
        assert r["protocol"] == ("base2new" if protocol == "all" else "gzsl") and all(0 <= r[k] <= 100 for k in keys)


def test_the_documented_example_method_runs(tmp_path, tiny_clip_path, capsys):
    """The worked example of docs/adding_a_method.md (a linear probe in one file) is exact code: loaded as the file
    it names, it registers, declares its ranges and runs plain and with SHIP."""
    import importlib.util
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "adding_a_method.md").read_text()
    source = re.search(r"```python\n(# trainers/ship/methods/linear_probe.py\n.*?)```", page, re.S).group(1)
    path = tmp_path / "linear_probe.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("trainers.ship.methods.linear_probe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        folder = write_image_folder(tmp_path / "toy", ["cat", "dog", "car", "tree"], per_class=6)
        for trainer in ("LinearProbe", "SHIP_LinearProbe"):
            code = main([str(a) for a in ["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--trainer",
                                          trainer, "--output-dir", tmp_path / trainer, "--cache-dir", tmp_path / "cache",
                                          "TRAINER.SHIP.GEN_EPOCHS", 2, "TRAINER.SHIP.AUG_PASSES", 1,
                                          "TRAINER.LINEARPROBE.EPOCHS", 2, "DATALOADER.NUM_WORKERS", 0]])
            assert code == 0, capsys.readouterr().err
            assert (tmp_path / trainer / "linear_probe" / "model.pth.tar-2").is_file()
        assert main([str(a) for a in ["--data-dir", folder, "--weights", tiny_clip_path, "--trainer", "LinearProbe",
                                      "--output-dir", tmp_path / "bad", "TRAINER.LINEARPROBE.EPOCHS", 0]]) == 2
        assert "TRAINER.LINEARPROBE.EPOCHS" in capsys.readouterr().err
    finally:
        del METHODS["LinearProbe"], STAGE_KEYS["LinearProbe"], STAGE_KEYS["SHIP_LinearProbe"]
