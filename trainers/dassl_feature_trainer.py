"""The part the Dassl trainers share: CLIP, the feature cache, and testing on cached features.

Imported only where dassl is installed. Subclasses build their head in ``build_model`` (after
calling ``setup_clip_and_features``) and score features in ``score``.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from dassl.engine import TrainerX

from trainers.ship.clip_loader import load_clip
from trainers.ship.errors import ShipError
from trainers.ship.features import FeatureCache, FeatureSet
from trainers.ship.text_encoder import TextEncoder


class FeatureTrainerX(TrainerX):
    """A Dassl TrainerX whose images are encoded once by the core's feature cache."""

    def setup_clip_and_features(self) -> None:
        cfg = self.cfg
        self.clip = load_clip(cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.WEIGHTS or None, self.device,
                              cfg.MODEL.BACKBONE.DOWNLOAD_ROOT)
        self.text_encoder = TextEncoder(self.clip.model)
        self.cache = FeatureCache(cfg.CACHE_DIR)
        self.classnames = list(self.dm.dataset.classnames)
        # the label-only classes of a base run (datasets/dassl_datasets.py); none when not synthesising
        synthesize = cfg.TRAINER.SHIP.SYNTHESIZE
        self.label_only = list(getattr(self.dm.dataset, "label_only_classnames", [])) if synthesize else []
        self.train_features = None  # extracted in before_train: an --eval-only run reads no training images

    def before_train(self):
        super().before_train()
        self.train_features = self.features(self.dm.dataset.train_x, "train", augment=True)

    def features(self, datums, split: str, augment: bool = False) -> FeatureSet:
        cfg = self.cfg
        return self.cache.get_or_extract(
            self.clip, [d.impath for d in datums], [d.label for d in datums], self.device,
            dataset=f"{cfg.DATASET.NAME}-{cfg.DATASET.SUBSAMPLE_CLASSES}", split=split,
            shots=cfg.DATASET.NUM_SHOTS if augment or split == "val" else None, seed=cfg.SEED,
            passes=cfg.TRAINER.SHIP.AUG_PASSES, augment=augment, aug_scale=tuple(cfg.TRAINER.SHIP.AUG_SCALE),
            batch_size=cfg.DATALOADER.TEST.BATCH_SIZE, num_workers=cfg.DATALOADER.NUM_WORKERS,
        )

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of normalised image features over ``self.classnames``."""
        raise NotImplementedError

    @torch.no_grad()
    def test(self, split=None):
        """Score the cached features of the split's images with Dassl's evaluator (``* accuracy`` lines)."""
        use_val = (split or self.cfg.TEST.SPLIT) == "val" and bool(self.dm.dataset.val)
        name = "val" if use_val else "test"
        print(f"Evaluate on the *{name}* set")
        features = self.features(self.dm.dataset.val if use_val else self.dm.dataset.test, name)
        self.set_model_mode("eval")
        self.evaluator.reset()
        self.evaluator.process(self.score(features.features[0].to(self.device)), features.labels.to(self.device))
        return list(self.evaluator.evaluate().values())[0]

    # Dassl's own loader uses torch.load's weights_only default (checkpoints hold scheduler state)
    # and crashes on val_result None; this reads the checkpoints these trainers write.
    def find_checkpoint(self, directory: str, stage: str, epoch: int | None) -> tuple[Path, dict]:
        """``<directory>/<stage>/model.pth.tar-<epoch>`` (the latest when ``epoch`` is None) and its contents."""
        folder = Path(directory) / stage
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
