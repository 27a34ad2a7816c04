"""CLIP-Adapter (Gao et al., IJCV 2023): a residual bottleneck adapter on the image feature,
x' = ρ · A(x) + (1 − ρ) · x with A = ReLU(W₂ ReLU(W₁ x)) (no biases, W₁: D → D/r), r = 4 and ρ = 0.2 as
published; logits = 100 · cos(x', w_c) against the zero-shot text weights, trained by cross-entropy. The
adapter does not depend on the classes, so it scores any class; under SHIP it trains on real base and
synthetic label-only features over base + label-only classes."""
from __future__ import annotations

import torch
import torch.nn as nn

from ..classifiers import cosine_logits, zero_shot_weights
from ..training import train_prompt_learner
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
    settings = ("CLIPADAPTER_REDUCTION", "CLIPADAPTER_RATIO", "CLIPADAPTER_EPOCHS", "CLIPADAPTER_LR",
                "CLIPADAPTER_BATCH_SIZE")

    def __init__(self, cfg, text_encoder, templates):
        super().__init__(cfg, text_encoder, templates)
        s = cfg.TRAINER.SHIP
        self.adapter = ResidualAdapter(text_encoder, s.CLIPADAPTER_REDUCTION, s.CLIPADAPTER_RATIO)

    def epochs(self) -> int:
        return self.cfg.TRAINER.SHIP.CLIPADAPTER_EPOCHS

    def fit(self, inputs) -> None:
        """SGD with a cosine schedule (CLIP-Adapter's recipe, as in CoOp's code base) on cross-entropy."""
        s = self.cfg.TRAINER.SHIP
        names = inputs.base_names + (inputs.label_only if inputs.synthetic is not None else [])
        weights = zero_shot_weights(self.text_encoder, names, self.templates)
        train_prompt_learner(self.adapter, weights, inputs.train, inputs.synthetic, epochs=s.CLIPADAPTER_EPOCHS,
                             lr=s.CLIPADAPTER_LR, batch_size=s.CLIPADAPTER_BATCH_SIZE, momentum=0.9, weight_decay=5e-4)
        self.adapter.eval()

    def scorer(self, classes):
        weights = zero_shot_weights(self.text_encoder, classes.names, self.templates)
        return lambda f: self.adapter.logits(weights, f)

    def state_dict(self) -> dict:
        return {k: v for k, v in self.adapter.state_dict().items()}

    def load_state_dict(self, state: dict) -> None:
        self.adapter.load_state_dict(state)
        self.adapter.eval()
