"""CoCoOp (Zhou et al., CVPR 2022): CoOp's context shifted per image by a meta-net of the image feature
(D → D/16 → W); CoCoOp's recipe (batch 1, 10 epochs, SGD 2e-3, one constant warm-up epoch at 1e-5)."""
from __future__ import annotations

from ..classifiers import ConditionalPromptLearner
from .base import register
from .coop import CoOp


@register
class CoCoOp(CoOp):
    name = "CoCoOp"
    settings = ("COCOOP_N_CTX", "COCOOP_CTX_INIT", "COCOOP_EPOCHS", "COCOOP_LR", "COCOOP_BATCH_SIZE",
                "COCOOP_MOMENTUM", "COCOOP_WEIGHT_DECAY", "COCOOP_WARMUP_EPOCHS", "COCOOP_WARMUP_LR")

    def build_learner(self) -> ConditionalPromptLearner:
        s = self.cfg.TRAINER.SHIP
        return ConditionalPromptLearner(self.text_encoder, s.COCOOP_N_CTX, s.COCOOP_CTX_INIT)

    def recipe(self) -> dict:
        s = self.cfg.TRAINER.SHIP
        return dict(epochs=s.COCOOP_EPOCHS, lr=s.COCOOP_LR, batch_size=s.COCOOP_BATCH_SIZE, optimizer="sgd",
                    momentum=s.COCOOP_MOMENTUM, weight_decay=s.COCOOP_WEIGHT_DECAY,
                    warmup_epochs=s.COCOOP_WARMUP_EPOCHS, warmup_lr=s.COCOOP_WARMUP_LR)
