"""Dassl trainers ``SHIP_<method>`` for every registered fine-tuner (``trainers.ship.methods``) that Dassl does not
know yet (``SHIP_CoOp`` has its own epoch-by-epoch trainer in ``ship_coop.py``). Imported only with dassl
(``trainers/ship_methods.py``).

Fitting (synthesis, the method's own training, e.g. Tip-Adapter's α/β search on val) happens once before
Dassl's epoch loop, which has nothing to iterate; the fitted method is saved as ``<stage>/model.pth.tar-<E>``.
It is the only model: ``TEST.FINAL_MODEL`` best_val and last_step deploy the same one.
"""
from __future__ import annotations

from pathlib import Path

from dassl.engine import TRAINER_REGISTRY

import trainers.ship.dassl.ship_coop  # noqa: F401  SHIP_CoOp first: it keeps its own trainer
from trainers.ship.common.runtime import atomic_save
from trainers.ship.dassl.feature_trainer import FeatureTrainerX
from trainers.ship.methods import METHODS


class FitOnceTrainer(FeatureTrainerX):
    """A registered method (``method_class``) fitted once on cached features, with SHIP's synthetic features."""

    method_class = None

    @property
    def stage(self) -> str:
        return self.method_class.checkpoint

    def build_model(self):
        self.setup_clip_and_features()
        self.max_epoch = 0  # no epoch loop: see before_train
        self.method = self.method_class(self.cfg, self.text_encoder, self.templates)

    def before_train(self):
        super().before_train()
        val = self.search_val() if self.method.uses_val else None
        self.method, inputs = self.seeded_method(self.method_class, val)
        self.method.fit(inputs)
        path = Path(self.output_dir) / self.stage / f"model.pth.tar-{self.method.epochs()}"
        atomic_save({"state_dict": self.method.state_dict(), "epoch": self.method.epochs()}, path)
        print(f"Checkpoint saved to {path}")

    def resume_model_if_exist(self, directory):
        return 0  # fitting is one pass; a rerun fits again


for _name, _method in METHODS.items():
    if _method.checkpoint and f"SHIP_{_name}" not in TRAINER_REGISTRY.registered_names():
        TRAINER_REGISTRY.register(type(f"SHIP_{_name}", (FitOnceTrainer,), {"method_class": _method,
                                                                          "__doc__": f"SHIP + {_name} on cached features."}))
