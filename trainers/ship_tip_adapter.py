"""Dassl trainer ``SHIP_TipAdapter``: Tip-Adapter(-F) whose cache also holds synthetic keys of the
label-only classes (``TRAINER.SHIP.SYNTHESIZE False``: plain Tip-Adapter). Imported only with dassl.

Fitting (synthesis, optional key fine-tuning, the α/β search on val) happens once before Dassl's
epoch loop, which has nothing to iterate; the adapter is saved as ``tip_adapter/model.pth.tar-<E>``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from dassl.engine import TRAINER_REGISTRY

from trainers.dassl_feature_trainer import FeatureTrainerX
from trainers.ship.pipeline import fit_tip_adapter
from trainers.ship.classifiers import zero_shot_weights
from trainers.ship.runtime import atomic_save
from trainers.ship.tip_adapter import TipAdapter


@TRAINER_REGISTRY.register()
class SHIP_TipAdapter(FeatureTrainerX):
    def build_model(self):
        self.setup_clip_and_features()
        self.max_epoch = 0  # no epoch loop: see before_train
        self.adapter = TipAdapter(torch.empty(0), torch.empty(0))
        self.templates = list(self.cfg.DATASET.TEMPLATES) or self.dm.dataset.templates
        self.zero_shot = zero_shot_weights(self.text_encoder, self.classnames, self.templates)

    def before_train(self):
        super().before_train()
        cfg, s = self.cfg, self.cfg.TRAINER.SHIP
        val = self.features(self.dm.dataset.val or [], "val")
        self.adapter = fit_tip_adapter(cfg, bool(self.label_only), self.text_encoder, self.clip, self.train_features,
                                       val, self.classnames, self.label_only, self.templates, cfg.DATASET.NAME,
                                       Path(self.output_dir))
        epochs = s.TIP_EPOCHS if s.TIP_FINETUNE else 0
        path = Path(self.output_dir) / "tip_adapter" / f"model.pth.tar-{epochs}"
        atomic_save({"state_dict": self.adapter.state_dict(), "epoch": epochs}, path)
        print(f"Checkpoint saved to {path}")

    def resume_model_if_exist(self, directory):
        return 0  # fitting is one pass; a rerun fits again

    def score(self, features):
        columns = self.adapter.columns(self.classnames)
        return self.adapter.logits(features, self.zero_shot, self.text_encoder.logit_scale, columns)

    def load_model(self, directory, epoch=None):
        path, checkpoint = self.find_checkpoint(directory, "tip_adapter", epoch)
        self.adapter.load_state_dict(checkpoint["state_dict"])
        print(f"Loaded Tip-Adapter from {path}")
