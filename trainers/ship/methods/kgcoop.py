"""KgCoOp (Yao, Zhang, Xu: Visual-Language Prompt Tuning with Knowledge-guided Context Optimization, CVPR 2023):
CoOp plus λ · mean_i ‖w_i − w_i^clip‖² between the learned text features w_i and the hand-crafted (zero-shot)
ones w_i^clip of the training classes, both normalised; λ = 8 as published (``TRAINER.KGCOOP.LAMBDA``). Under SHIP the
training classes are base + label-only."""
from __future__ import annotations

import torch.nn.functional as F

from ..classifiers import zero_shot_weights
from .base import register
from .coop import CoOp


def knowledge_distance(learned, hand_crafted):
    """mean_i ‖w_i − w_i^clip‖² of normalised class text features [C, D]."""
    return (F.normalize(learned.float(), dim=-1) - F.normalize(hand_crafted.float(), dim=-1)).pow(2).sum(-1).mean()


@register
class KgCoOp(CoOp):
    name = "KgCoOp"
    config = "KGCOOP"
    extra_settings = {"LAMBDA": 8.0}  # weight of mean ||w - w_clip||^2, as published for base-to-new

    def objective(self, names):
        hand_crafted = zero_shot_weights(self.text_encoder, names, self.templates)
        weight = self.hp.LAMBDA

        def loss(learner, prompts, x, y):
            text = learner(prompts)
            logits = self.text_encoder.logit_scale * x.float() @ text.t()
            return F.cross_entropy(logits, y) + weight * knowledge_distance(text, hand_crafted)

        return loss
