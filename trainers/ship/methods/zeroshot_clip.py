"""Zero-shot CLIP: the dataset's hand-crafted templates (ImageNet: the 7-template ensemble); nothing is fitted."""
from __future__ import annotations

from trainers.ship.model.classifiers import cosine_logits, zero_shot_weights

from .base import FeatureMethod, register


@register
class ZeroshotCLIP(FeatureMethod):
    name = "ZeroshotCLIP"

    def fit(self, inputs) -> None:
        pass

    def scorer(self, classes):
        weights = zero_shot_weights(self.text_encoder, classes.names, self.templates)
        scale = self.text_encoder.logit_scale
        return lambda f: cosine_logits(f, weights, scale)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
