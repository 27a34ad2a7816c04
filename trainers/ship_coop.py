"""Dassl trainer ``SHIP_CoOp``: a thin adapter over the dassl-free core (imported only with dassl).

Dassl's DataManager supplies the images and class names (and, through the dataset wrappers in
``datasets/dassl_datasets.py``, the label-only class names); the core caches CLIP features,
fits the generator and trains the CoOp head on real + synthetic features. Checkpoints
(``prompt_learner/model.pth.tar-<epoch>``), logs (``* accuracy``) and ``--eval-only
--model-dir --load-epoch`` follow CoOp.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import torch
from dassl.engine import TRAINER_REGISTRY, TrainerX

from trainers.ship.base2new import synthetic_stream
from trainers.ship.classifiers import PromptLearner, cosine_logits
from trainers.ship.clip_loader import load_clip
from trainers.ship.errors import ShipError
from trainers.ship.features import FeatureCache, FeatureSet
from trainers.ship.text_encoder import TextEncoder
from trainers.ship.training import build_prompt_optimizer, epoch_batches, prompt_learner_step


@TRAINER_REGISTRY.register()
class SHIP_CoOp(TrainerX):
    """CoOp's unified context trained on cached features of the base classes plus synthetic
    features of the label-only classes (``TRAINER.SHIP.SYNTHESIZE False``: plain CoOp on features)."""

    def build_model(self):
        cfg, s = self.cfg, self.cfg.TRAINER.SHIP
        self.clip = load_clip(cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.WEIGHTS or None, self.device,
                              cfg.MODEL.BACKBONE.DOWNLOAD_ROOT)
        self.text_encoder = TextEncoder(self.clip.model)
        self.cache = FeatureCache(cfg.CACHE_DIR)
        self.classnames = list(self.dm.dataset.classnames)
        self.label_only = list(getattr(self.dm.dataset, "label_only_classnames", [])) if s.SYNTHESIZE else []
        self.train_features = self._features(self.dm.dataset.train_x, "train", augment=True)

        self.learner = PromptLearner(self.text_encoder, s.COOP_N_CTX, s.COOP_CTX_INIT)
        self.max_epoch = s.COOP_EPOCHS
        steps = self.max_epoch * math.ceil(len(self.train_features) / s.COOP_BATCH_SIZE)
        optim, sched = build_prompt_optimizer(self.learner, steps, s.COOP_OPTIM, s.COOP_LR, s.COOP_MOMENTUM,
                                              s.COOP_WEIGHT_DECAY, s.COOP_EPS)
        self.register_model("prompt_learner", self.learner, optim, sched)
        self.synthetic = None

    def _features(self, datums, split: str, augment: bool = False) -> FeatureSet:
        cfg = self.cfg
        return self.cache.get_or_extract(
            self.clip, [d.impath for d in datums], [d.label for d in datums], self.device,
            dataset=f"{cfg.DATASET.NAME}-{cfg.DATASET.SUBSAMPLE_CLASSES}", split=split,
            shots=cfg.DATASET.NUM_SHOTS if augment else None, seed=cfg.SEED,
            passes=cfg.TRAINER.SHIP.AUG_PASSES, augment=augment, aug_scale=tuple(cfg.TRAINER.SHIP.AUG_SCALE),
            batch_size=cfg.DATALOADER.TEST.BATCH_SIZE, num_workers=cfg.DATALOADER.NUM_WORKERS,
        )

    def before_train(self):
        super().before_train()  # resumes from OUTPUT_DIR through resume_model_if_exist below
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
    def test(self, split=None):
        """Score cached features of the split's images against the text features of this run's classes."""
        split = split or self.cfg.TEST.SPLIT
        datums = self.dm.dataset.val if split == "val" and self.dm.dataset.val else self.dm.dataset.test
        print(f"Evaluate on the *{'val' if datums is self.dm.dataset.val else 'test'}* set")
        features = self._features(datums, "val" if datums is self.dm.dataset.val else "test")
        self.set_model_mode("eval")
        weights = self.learner(self.learner.class_prompts(self.classnames))
        logits = cosine_logits(features.features[0].to(self.device), weights, self.text_encoder.logit_scale)
        self.evaluator.reset()
        self.evaluator.process(logits, features.labels.to(self.device))
        results = self.evaluator.evaluate()
        return list(results.values())[0]

    # Dassl's own loaders use torch.load's weights_only default (checkpoints hold scheduler state)
    # and crash on val_result None; these read the checkpoints this trainer wrote.
    def _checkpoint(self, directory: str, epoch: int | None) -> tuple[Path, dict]:
        folder = Path(directory) / "prompt_learner"
        if epoch is None:
            found = sorted(folder.glob("model.pth.tar-*"), key=lambda p: int(re.sub(r"\D", "", p.name.split("-")[-1]) or 0))
            if not found:
                raise ShipError(f"no checkpoint in {folder} (expected model.pth.tar-<epoch>)")
            path = found[-1]
        else:
            path = folder / f"model.pth.tar-{epoch}"
        if not path.is_file():
            raise ShipError(f"checkpoint not found: {path}")
        try:
            return path, torch.load(path, map_location=self.device, weights_only=False)
        except Exception as exc:
            raise ShipError(f"corrupt checkpoint {path} ({type(exc).__name__}: {exc})") from None

    def load_model(self, directory, epoch=None):
        path, checkpoint = self._checkpoint(directory, epoch)
        self.learner.load_state_dict(checkpoint["state_dict"])
        print(f"Loaded prompt learner from {path} (epoch {checkpoint['epoch']})")

    def resume_model_if_exist(self, directory):
        if not list((Path(directory) / "prompt_learner").glob("model.pth.tar-*")):
            return 0
        path, checkpoint = self._checkpoint(directory, None)
        self.learner.load_state_dict(checkpoint["state_dict"])
        self._optims["prompt_learner"].load_state_dict(checkpoint["optimizer"])
        self._scheds["prompt_learner"].load_state_dict(checkpoint["scheduler"])
        print(f"Resumed from {path} (epoch {checkpoint['epoch']})")
        return checkpoint["epoch"]
