"""CLIP-Adapter (Gao et al., IJCV 2023): a residual bottleneck adapter on the image feature,
x' = ρ · A(x) + (1 − ρ) · x with A = ReLU(W₂ ReLU(W₁ x)) (no biases, W₁: D → D/r), r = 4 and ρ = 0.2 as
published; logits = 100 · cos(x', w_c) against the zero-shot text weights of its own single prompt of the dataset
(its ``CUSTOM_TEMPLATES``; ImageNet "a photo of a {}.", not the 7-template ensemble), trained by cross-entropy. The
adapter does not depend on the classes, so it scores any class; under SHIP it trains on real base and
synthetic label-only features over base + label-only classes."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from trainers.ship.common.ranges import Choice, Flag, Int, Interval, Num, Positive
from trainers.ship.model.classifiers import cosine_logits, zero_shot_weights
from trainers.ship.training.loops import HeadTraining, StepLoss
from trainers.ship.training.schedules import LR_SCHEDULERS

from .base import FeatureMethod, register


class ResidualAdapter(nn.Module):
    """x ↦ ρ · A(x) + (1 − ρ) · x, the adapter CLIP-Adapter puts on the image feature."""

    def __init__(self, text_encoder, reduction: int = 4, ratio: float = 0.2):
        super().__init__()
        dim = text_encoder.embed_dim
        self.text_encoder, self.ratio = text_encoder, ratio  # the encoder only lends its precision
        self.body = nn.Sequential(nn.Linear(dim, dim // reduction, bias=False), nn.ReLU(),
                                  nn.Linear(dim // reduction, dim, bias=False), nn.ReLU()).to(text_encoder.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return self.ratio * self.body(x) + (1 - self.ratio) * x

    def logits(self, weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits of image features ``x`` over the classes of the zero-shot ``weights``."""
        adapted = self(x)
        return cosine_logits(adapted / adapted.norm(dim=-1, keepdim=True), weights, self.text_encoder.logit_scale)


@register
class CLIPAdapter(FeatureMethod):
    name = "CLIPAdapter"
    checkpoint = "clip_adapter"
    config = "CLIPADAPTER"

    @classmethod
    def defaults(cls):
        c = CN()
        c.REDUCTION = 4  # bottleneck D -> D/4, as published
        c.RATIO = 0.2  # residual ratio, as published
        c.EPOCHS = 200  # ImageNet: 50 (vit_b16_imagenet, CoOp's *_ep50 configs)
        c.LR = 2e-3
        c.BATCH_SIZE = 32
        c.MOMENTUM = 0.9
        c.WEIGHT_DECAY = 5e-4
        c.LR_SCHEDULER = "dassl"  # CoOp's command: one constant warm-up epoch, then Dassl's per-epoch cosine
        c.WARMUP_EPOCHS = 1
        c.WARMUP_LR = 1e-5
        c.CROP_SCALE = (0.08, 1.0)  # Dassl's random_resized_crop
        c.DROP_LAST = True  # Dassl's train loader drops an epoch's last partial batch
        return c

    @classmethod
    def ranges(cls):
        return dict(REDUCTION=Int(1), RATIO=Num(0, 1), EPOCHS=Int(1), LR=Positive(), BATCH_SIZE=Int(1), MOMENTUM=Num(0, 1),
                    WEIGHT_DECAY=Num(0), LR_SCHEDULER=Choice(LR_SCHEDULERS), WARMUP_EPOCHS=Int(0), WARMUP_LR=Num(0),
                    CROP_SCALE=Interval(0, 1, low_open=True), DROP_LAST=Flag())

    def __init__(self, cfg, text_encoder, templates):
        super().__init__(cfg, text_encoder, templates)
        self.templates = self.own_templates()  # its own prompt of the dataset, unless DATASET.TEMPLATES is set
        self.adapter = ResidualAdapter(text_encoder, self.hp.REDUCTION, self.hp.RATIO)

    def epochs(self) -> int:
        return self.hp.EPOCHS

    def fit(self, inputs) -> None:
        """SGD, one constant warm-up epoch, then Dassl's per-epoch cosine (CLIP-Adapter's trainer run by CoOp's
        command and ``rn50``-style config) on cross-entropy."""
        h = self.hp
        names = inputs.base_names + (inputs.label_only if inputs.synthetic is not None else [])
        weights = zero_shot_weights(self.text_encoder, names, self.templates)
        adapter = self.adapter

        def loss(x: torch.Tensor, y: torch.Tensor) -> StepLoss:
            logits = adapter.logits(weights, x)
            return StepLoss(F.cross_entropy(logits, y), logits)

        HeadTraining(adapter.parameters(), loss, lambda x: adapter.logits(weights, x), inputs.train, inputs.synthetic,
                     self.text_encoder.precision, self.text_encoder.device, trainer=self.trainer_name(inputs.synthetic is not None),
                     epochs=h.EPOCHS, batch_size=h.BATCH_SIZE, drop_last=h.DROP_LAST, optimizer="sgd", lr=h.LR,
                     momentum=h.MOMENTUM, weight_decay=h.WEIGHT_DECAY, lr_scheduler=h.LR_SCHEDULER,
                     warmup_epochs=h.WARMUP_EPOCHS, warmup_lr=h.WARMUP_LR).run()
        self.adapter.eval()

    def scorer(self, classes):
        weights = zero_shot_weights(self.text_encoder, classes.names, self.templates)
        return lambda f: self.adapter.logits(weights, f)

    def state_dict(self) -> dict:
        return {k: v for k, v in self.adapter.state_dict().items()}

    def load_state_dict(self, state: dict) -> None:
        self.adapter.load_state_dict(state)
        self.adapter.eval()
