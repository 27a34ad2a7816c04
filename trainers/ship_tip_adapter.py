"""Dassl trainer ``SHIP_TipAdapter``: Tip-Adapter(-F) whose cache also holds synthetic keys of the
label-only classes (``TRAINER.SHIP.SYNTHESIZE False``: plain Tip-Adapter). Imported only with dassl.

Fitting (synthesis, optional key fine-tuning, the α/β search on val) happens once before Dassl's epoch loop,
which has nothing to iterate; the adapter is saved as ``tip_adapter/model.pth.tar-<E>``. It is the only model:
``TEST.FINAL_MODEL`` best_val and last_step deploy the same one.
"""
from __future__ import annotations

from pathlib import Path

import torch
from dassl.engine import TRAINER_REGISTRY

from trainers.dassl_feature_trainer import FeatureTrainerX
from trainers.ship.methods import FitInputs
from trainers.ship.methods.tip_adapter import TipAdapter
from trainers.ship.runtime import atomic_save, seed_everything, stage_seed
from trainers.ship.stages import synthetic_stream


@TRAINER_REGISTRY.register()
class SHIP_TipAdapter(FeatureTrainerX):
    stage = "tip_adapter"

    def build_model(self):
        self.setup_clip_and_features()
        self.max_epoch = 0  # no epoch loop: see before_train
        self.method = TipAdapter(self.cfg, self.text_encoder, self.templates)

    def before_train(self):
        super().before_train()
        cfg = self.cfg
        base, label_only = self.split.base.names, self.split.label_only
        val = self.features([d for d in self.dm.dataset.val or [] if d.label < len(base)], "val")
        synthetic = None
        if cfg.TRAINER.SHIP.SYNTHESIZE:
            synthetic = synthetic_stream(cfg, self.text_encoder, self.clip, self.train_features, base, label_only,
                                         Path(self.output_dir))
        seed_everything(stage_seed(cfg.SEED, "SHIP_TipAdapter"))
        self.method.fit(FitInputs(self.train_features, base, label_only, synthetic, val, cfg.DATASET.NAME,
                                  cfg.DATASET.NUM_SHOTS, dict(self.split.class_index)))
        path = Path(self.output_dir) / self.stage / f"model.pth.tar-{self.method.epochs()}"
        atomic_save({"state_dict": self.method.state_dict(), "epoch": self.method.epochs()}, path)
        print(f"Checkpoint saved to {path}")

    def resume_model_if_exist(self, directory):
        return 0  # fitting is one pass; a rerun fits again

    @torch.no_grad()
    def score(self, features, classes):
        return self.method.scorer(classes)(features)

    def load_head(self, path, checkpoint):
        self.method.load_state_dict(checkpoint["state_dict"])
