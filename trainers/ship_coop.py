"""Dassl trainer ``SHIP_CoOp``: a thin adapter over the dassl-free core (imported only with dassl).

Dassl's DataManager supplies the images and class names (and, through the dataset wrappers in
``datasets/dassl_datasets.py``, the label-only class names); the core caches CLIP features,
fits the generator and trains the CoOp head on real + synthetic features. Checkpoints
(``prompt_learner/model.pth.tar-<epoch>``), logs (``* accuracy``) and ``--eval-only
--model-dir --load-epoch`` follow CoOp.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from dassl.engine import TRAINER_REGISTRY

from trainers.dassl_feature_trainer import FeatureTrainerX
from trainers.ship.pipeline import synthetic_stream
from trainers.ship.classifiers import PromptLearner
from trainers.ship.training import build_prompt_optimizer, epoch_batches, prompt_learner_step


@TRAINER_REGISTRY.register()
class SHIP_CoOp(FeatureTrainerX):
    """CoOp's unified context trained on cached features of the base classes plus synthetic
    features of the label-only classes (``TRAINER.SHIP.SYNTHESIZE False``: plain CoOp on features)."""

    def build_model(self):
        s = self.cfg.TRAINER.SHIP
        self.setup_clip_and_features()
        self.learner = PromptLearner(self.text_encoder, s.COOP_N_CTX, s.COOP_CTX_INIT)
        self.max_epoch = s.COOP_EPOCHS
        steps_per_epoch = math.ceil(len(self.dm.dataset.train_x) / s.COOP_BATCH_SIZE)
        optim, sched = build_prompt_optimizer(self.learner, self.max_epoch * steps_per_epoch, s.COOP_OPTIM, s.COOP_LR,
                                              s.COOP_MOMENTUM, s.COOP_WEIGHT_DECAY, s.COOP_EPS,
                                              s.COOP_WARMUP_EPOCHS * steps_per_epoch, s.COOP_WARMUP_LR)
        self.register_model("prompt_learner", self.learner, optim, sched)
        self.synthetic = None

    def before_train(self):
        super().before_train()  # resumes from OUTPUT_DIR (resume_model_if_exist below), extracts train features
        if self.label_only:  # the generator stage runs only when training, never for --eval-only
            self.synthetic = synthetic_stream(self.cfg, self.text_encoder, self.clip, self.train_features,
                                              self.classnames, self.label_only, Path(self.output_dir))
        self.train_prompts = self.learner.class_prompts(self.classnames + (self.label_only if self.synthetic else []))

    def run_epoch(self):
        self.set_model_mode("train")
        s = self.cfg.TRAINER.SHIP
        optim, sched = self._optims["prompt_learner"], self._scheds["prompt_learner"]
        losses = [prompt_learner_step(self.learner, self.train_prompts, x, y, optim, sched, self.synthetic, self.epoch + 1)
                  for x, y in epoch_batches(self.train_features, s.COOP_BATCH_SIZE, self.device)]
        print(f"epoch [{self.epoch + 1}/{self.max_epoch}] loss {sum(losses) / len(losses):.4f} "
              f"lr {sched.get_last_lr()[0]:.4e}")

    @torch.no_grad()
    def score(self, features):
        return self.learner.logits(self.learner.class_prompts(self.classnames), features)

    def load_model(self, directory, epoch=None):
        path, checkpoint = self.find_checkpoint(directory, "prompt_learner", epoch)
        self.learner.load_state_dict(checkpoint["state_dict"])
        print(f"Loaded prompt learner from {path} (epoch {checkpoint['epoch']})")

    def resume_model_if_exist(self, directory):
        if not list((Path(directory) / "prompt_learner").glob("model.pth.tar-*")):
            return 0
        path, checkpoint = self.find_checkpoint(directory, "prompt_learner", None)
        self.learner.load_state_dict(checkpoint["state_dict"])
        self._optims["prompt_learner"].load_state_dict(checkpoint["optimizer"])
        self._scheds["prompt_learner"].load_state_dict(checkpoint["scheduler"])
        print(f"Resumed from {path} (epoch {checkpoint['epoch']})")
        return checkpoint["epoch"]
