"""CoCoOp (Zhou et al., CVPR 2022): CoOp's context shifted per image by a meta-net of the image feature
(D → D/16 → W); CoCoOp's recipe (batch 1, 10 epochs, SGD 2e-3, one constant warm-up epoch at 1e-5, then Dassl's
cosine stepped once per epoch, crop 0.08–1)."""
from __future__ import annotations

from yacs.config import CfgNode as CN

from trainers.ship.common.ranges import Choice
from trainers.ship.model.classifiers import META_NET_INITS, ConditionalPromptLearner

from .base import register
from .coop import CoOp, coop_ranges


@register
class CoCoOp(CoOp):
    name = "CoCoOp"
    config = "COCOOP"
    # HEAD_RECIPE auto: CoCoOp's own recipe; with one image a step, momentum is what averages its gradients (in the
    # tests' behaviour world, META_NET_INIT zero: the twin's mean H 69.7 with it, 67.5 without; CoCoOp's 44.1)
    twin_head_recipe = "method"

    @classmethod
    def defaults(cls) -> CN:
        """CoCoOp's vit_b16_c4_ep10_batch1_ctxv1 recipe."""
        c = CN()
        c.N_CTX = 4
        c.CTX_INIT = "a photo of a"
        c.EPOCHS = 10
        c.LR = 2e-3
        c.BATCH_SIZE = 1
        c.MOMENTUM = 0.9  # Dassl's SGD defaults
        c.WEIGHT_DECAY = 5e-4
        c.LR_SCHEDULER = "dassl"  # constant warm-up, then Dassl's cosine stepped once per epoch
        c.WARMUP_EPOCHS = 1
        c.WARMUP_LR = 1e-5
        c.CROP_SCALE = (0.08, 1.0)  # Dassl's random_resized_crop
        c.DROP_LAST = True  # Dassl's train loader
        # PyTorch's default Linear init, as the CoCoOp code; "zero": the meta-net's last layer zero, so the context starts
        # at CTX_INIT (its default shift is a random vector many times the context's norm)
        c.META_NET_INIT = "torch"
        return c

    @classmethod
    def ranges(cls):
        return {**{k: v for k, v in coop_ranges().items() if k in cls.defaults()}, "META_NET_INIT": Choice(META_NET_INITS)}

    def build_learner(self) -> ConditionalPromptLearner:
        return ConditionalPromptLearner(self.text_encoder, self.hp.N_CTX, self.hp.CTX_INIT,
                                        meta_net_init=self.hp.META_NET_INIT)

    def recipe(self) -> dict:
        h = self.hp
        return dict(epochs=h.EPOCHS, lr=h.LR, batch_size=h.BATCH_SIZE, optimizer="sgd", momentum=h.MOMENTUM,
                    weight_decay=h.WEIGHT_DECAY, lr_scheduler=h.LR_SCHEDULER, warmup_epochs=h.WARMUP_EPOCHS,
                    warmup_lr=h.WARMUP_LR, drop_last=h.DROP_LAST)
