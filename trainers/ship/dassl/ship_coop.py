"""Dassl trainer ``SHIP_CoOp``: Dassl's epoch loop driving the core's CoOp method (imported only with dassl).

Dassl's DataManager supplies the images and class names, from CoOp's readers or this project's; the core finds
the label-only classes, caches CLIP features, fits the generator, and its CoOp method (``methods.coop``) trains the
context on real + synthetic features, one epoch per Dassl ``run_epoch`` (``training.loops.HeadTraining``): the same
seed, learner, recipe and batches as ``python -m trainers.ship --trainer SHIP_CoOp``. Checkpoints
(``prompt_learner/model.pth.tar-<epoch>``, and ``model-best.pth.tar`` under ``TEST.FINAL_MODEL best_val``), logs
(``* accuracy``), ``--resume`` and ``--eval-only --model-dir --load-epoch`` follow CoOp.
"""
from __future__ import annotations

from pathlib import Path

from dassl.engine import TRAINER_REGISTRY

from trainers.ship.dassl.feature_trainer import FeatureTrainerX
from trainers.ship.methods.coop import CoOp
from trainers.ship.training.stages import checkpoint_file, read_checkpoint


@TRAINER_REGISTRY.register()
class SHIP_CoOp(FeatureTrainerX):
    """CoOp's unified context trained on cached features of the base classes plus synthetic
    features of the label-only classes (``TRAINER.SHIP.SYNTHESIZE False``: plain CoOp on features)."""

    stage = CoOp.checkpoint

    def build_model(self):
        self.setup_clip_and_features()
        # what --eval-only loads a finished context into; a training run builds it again under the stage's seed
        self.method = CoOp(self.cfg, self.text_encoder, self.templates)
        self.max_epoch = self.method.epochs()
        self.training = None

    def resume_model_if_exist(self, directory):
        self.resume_from = directory  # resumed in before_train, once the learner and its optimiser exist
        return 0

    def before_train(self):
        super().before_train()  # extracts the train features
        self.method, inputs = self.seeded_method(CoOp)  # the learner built under the stage seed, as the core's
        self.training = self.method.training(inputs)
        optimization = self.training.optimization
        self.register_model(self.stage, self.method.learner, optimization.optimizer, optimization.schedule.scheduler)
        self.start_epoch = self.resume(self.resume_from)

    def run_epoch(self):
        self.set_model_mode("train")
        self.training.run_epoch(self.epoch + 1)
        if self.epoch + 1 == self.max_epoch:
            self.training.finish()

    def resume(self, directory) -> int:
        """The epoch to continue from: the last checkpoint of ``directory`` (Dassl's ``--resume``, or a rerun into
        OUTPUT_DIR) restores the context, the optimiser and the schedule; 0 when there is none."""
        if not list((Path(directory) / self.stage).glob("model.pth.tar-*")):
            return 0
        path = checkpoint_file(Path(directory) / self.stage, None, prefer_best=False)
        checkpoint = read_checkpoint(path)
        self.method.learner.load_state_dict(checkpoint["state_dict"])
        self._optims[self.stage].load_state_dict(checkpoint["optimizer"])
        self._scheds[self.stage].load_state_dict(checkpoint["scheduler"])
        print(f"Resumed from {path} (epoch {checkpoint['epoch']})")
        return checkpoint["epoch"]
