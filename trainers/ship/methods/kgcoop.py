"""KgCoOp (Yao, Zhang, Xu: Visual-Language Prompt Tuning with Knowledge-guided Context Optimization, CVPR 2023):
CoOp plus λ · (1 − mean_i cos(w_i, w_i^clip)) between the learned text features w_i and the hand-crafted ones
w_i^clip of the training classes (KgCoOp's own prompt of the dataset, ``known_datasets.METHOD_TEMPLATES``); λ = 8
(``TRAINER.KGCOOP.LAMBDA``, its code's ``TRAINER.COOP.W``) as its base-to-new script runs it. Its recipe is its
``vit_b16_ep100_ctxv1`` config: 4 tokens from "a photo of a", 100 epochs, batch 128, the Dassl recipe
(``coop.dassl_recipe``). Under SHIP the training classes are base + label-only."""
from __future__ import annotations

import torch.nn.functional as F

from trainers.ship.common.ranges import Num
from trainers.ship.model.classifiers import zero_shot_weights
from trainers.ship.training.loops import StepLoss

from .base import register
from .coop import CoOp, dassl_recipe


def knowledge_distance(learned, hand_crafted):
    """1 − mean_i cos(w_i, w_i^clip) of class text features [C, D] (KgCoOp's score: cosine with eps 1e-7)."""
    return 1.0 - F.cosine_similarity(learned.float(), hand_crafted.float(), dim=-1, eps=1e-7).mean()


@register
class KgCoOp(CoOp):
    name = "KgCoOp"
    config = "KGCOOP"
    extra_settings = {"LAMBDA": 8.0}  # weight of 1 - mean cos(w, w_clip), as its base-to-new script runs it
    extra_ranges = {"LAMBDA": Num(0)}

    @classmethod
    def recipe_defaults(cls):
        return dassl_recipe(epochs=100, batch_size=128)

    def objective(self, names):
        hand_crafted = zero_shot_weights(self.text_encoder, names, self.own_templates())
        weight = self.hp.LAMBDA

        def loss(learner, prompts, x, y):
            text = learner(prompts)
            logits = self.text_encoder.logit_scale * x.float() @ text.t()
            return StepLoss(F.cross_entropy(logits, y) + weight * knowledge_distance(text, hand_crafted), logits)

        return loss
