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
from trainers.ship.classifiers import zero_shot_weights
from trainers.ship.runtime import atomic_save, seed_everything, stage_seed
from trainers.ship.stages import fit_tip_adapter
from trainers.ship.tip_adapter import TipAdapter


@TRAINER_REGISTRY.register()
class SHIP_TipAdapter(FeatureTrainerX):
    stage = "tip_adapter"

    def build_model(self):
        self.setup_clip_and_features()
        self.max_epoch = 0  # no epoch loop: see before_train
        self.adapter = TipAdapter(torch.empty(0), torch.empty(0))

    def before_train(self):
        super().before_train()
        cfg, s = self.cfg, self.cfg.TRAINER.SHIP
        n_base = len(self.split.base.names)
        val = self.features([d for d in self.dm.dataset.val or [] if d.label < n_base], "val")
        seed_everything(stage_seed(cfg.SEED, "SHIP_TipAdapter"))
        self.adapter, _ = fit_tip_adapter(cfg, s.SYNTHESIZE, self.text_encoder, self.clip, self.train_features, val,
                                          self.split.base.names, self.split.label_only, self.templates,
                                          cfg.DATASET.NAME, Path(self.output_dir))
        self.adapter.class_index = dict(self.split.class_index)
        epochs = s.TIP_EPOCHS if s.TIP_FINETUNE else 0
        path = Path(self.output_dir) / self.stage / f"model.pth.tar-{epochs}"
        atomic_save({"state_dict": self.adapter.state_dict(), "epoch": epochs}, path)
        print(f"Checkpoint saved to {path}")

    def resume_model_if_exist(self, directory):
        return 0  # fitting is one pass; a rerun fits again

    @torch.no_grad()
    def score(self, features, classes):
        zero_shot = zero_shot_weights(self.text_encoder, classes.names, self.templates)
        return self.adapter.logits(features, zero_shot, self.text_encoder.logit_scale, self.adapter.columns(classes.ids))

    def load_head(self, path, checkpoint):
        self.adapter.load_state_dict(checkpoint["state_dict"])
