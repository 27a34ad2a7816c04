"""Dassl trainer ``SHIP_CoOp``: a thin adapter over the dassl-free core (imported only with dassl).

Dassl's DataManager supplies the images and class names, from CoOp's readers or this project's; the core finds
the label-only classes, caches CLIP features, fits the generator and trains the CoOp head on real + synthetic
features. Checkpoints (``prompt_learner/model.pth.tar-<epoch>``, and ``model-best.pth.tar`` under
``TEST.FINAL_MODEL best_val``), logs (``* accuracy``) and ``--eval-only --model-dir --load-epoch`` follow CoOp.
"""
from __future__ import annotations

from pathlib import Path

import torch
from dassl.engine import TRAINER_REGISTRY

from trainers.ship.common.runtime import seed_everything, stage_seed
from trainers.ship.common.scalars import report_epoch
from trainers.ship.dassl.feature_trainer import FeatureTrainerX
from trainers.ship.methods.coop import CoOp, node_recipe, twin_recipe
from trainers.ship.model.classifiers import PromptLearner
from trainers.ship.training.loops import epoch_batches, prompt_learner_epoch, warn_if_head_collapsed
from trainers.ship.training.schedules import build_prompt_optimizer
from trainers.ship.training.stages import checkpoint_file


@TRAINER_REGISTRY.register()
class SHIP_CoOp(FeatureTrainerX):
    """CoOp's unified context trained on cached features of the base classes plus synthetic
    features of the label-only classes (``TRAINER.SHIP.SYNTHESIZE False``: plain CoOp on features)."""

    stage = "prompt_learner"

    def build_model(self):
        c = self.cfg.TRAINER.COOP
        self.setup_clip_and_features()
        self.learner = PromptLearner(self.text_encoder, c.N_CTX, c.CTX_INIT)
        self.max_epoch = c.EPOCHS
        recipe = node_recipe(c)
        self.trainer_name = "SHIP_CoOp" if self.cfg.TRAINER.SHIP.SYNTHESIZE else "CoOp"
        if self.cfg.TRAINER.SHIP.SYNTHESIZE:  # the twin's head recipe (TRAINER.SHIP.HEAD_RECIPE), as the core's
            recipe = twin_recipe(self.trainer_name, recipe, self.cfg.TRAINER.SHIP.HEAD_RECIPE, CoOp.twin_head_recipe)
        del recipe["epochs"], recipe["batch_size"]  # Dassl's epoch loop and the trainer's batches
        self.drop_last = recipe.pop("drop_last")
        steps = self.steps_per_epoch(c.BATCH_SIZE, self.drop_last)
        optim, self.optimizer_step, self.schedule = build_prompt_optimizer(self.learner, self.max_epoch, steps, **recipe)
        self.register_model(self.stage, self.learner, optim, self.schedule.scheduler)
        self.synthetic = None

    def before_train(self):
        super().before_train()  # resumes from OUTPUT_DIR (resume_model_if_exist below), extracts train features
        base, label_only = self.split.base.names, self.split.label_only
        if self.cfg.TRAINER.SHIP.SYNTHESIZE:  # the generator stage runs only when training, never for --eval-only
            self.synthetic = self.synthesise()
        self.train_prompts = self.learner.class_prompts(base + (label_only if self.synthetic else []))
        seed_everything(stage_seed(self.cfg.SEED, "SHIP_CoOp"))

    def run_epoch(self):
        self.set_model_mode("train")
        epoch = self.epoch + 1
        done = prompt_learner_epoch(self.learner, self.train_prompts,
                                    epoch_batches(self.train_features, self.cfg.TRAINER.COOP.BATCH_SIZE, self.device,
                                                  self.drop_last),
                                    self.optimizer_step, self.schedule, self.synthetic, epoch)
        report_epoch("prompt learner", self.trainer_name, epoch, self.max_epoch, done)
        if epoch == self.max_epoch:
            warn_if_head_collapsed(self.trainer_name, self.learner, self.train_prompts, self.train_features, self.synthetic)

    @torch.no_grad()
    def score(self, features, classes):
        return self.learner.logits(self.learner.class_prompts(classes.names), features)

    def load_head(self, path, checkpoint):
        self.learner.load_state_dict(checkpoint["state_dict"])

    def resume_model_if_exist(self, directory):
        if not list((Path(directory) / self.stage).glob("model.pth.tar-*")):
            return 0
        path = checkpoint_file(Path(directory) / self.stage, None, prefer_best=False)
        checkpoint = torch.load(path, map_location=self.device, weights_only=False)
        self.learner.load_state_dict(checkpoint["state_dict"])
        self._optims[self.stage].load_state_dict(checkpoint["optimizer"])
        self._scheds[self.stage].load_state_dict(checkpoint["scheduler"])
        print(f"Resumed from {path} (epoch {checkpoint['epoch']})")
        return checkpoint["epoch"]
