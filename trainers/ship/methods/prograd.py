"""ProGrad (Zhu, Niu, Han, Wu, Zhang: Prompt-aligned Gradient for Prompt Tuning, ICCV 2023): CoOp whose
cross-entropy gradient, where it conflicts with the gradient of KL(zero-shot CLIP's prediction ‖ the
prompt's prediction), loses λ times its component along that gradient (``runtime.project_conflicting``; λ = 1:
the projection orthogonal to it). The zero-shot prediction uses ProGrad's own prompt of the dataset
(``known_datasets.METHOD_TEMPLATES``). Its recipe (its base-to-new script and ``rn50_ep100`` config, on the
ViT-B/16 backbone and 16 shots): 16 context vectors, the last ones initialised from the dataset's prompt phrase
and the others zero (``classifiers.init_context``), 100 epochs (ImageNet: 50, its README's ``rn50_ep50``;
``vit_b16_imagenet``), batch 32, the Dassl recipe (``coop.dassl_recipe``),
λ = 1 (its README: 0.8 for the 8- and 16-shot few-shot results on Flowers102, DTD and EuroSAT; set
``TRAINER.PROGRAD.LAMBDA``). Under SHIP the classes are base + label-only."""
from __future__ import annotations

import logging

import torch.nn.functional as F

from trainers.ship.common.ranges import Num, Positive
from trainers.ship.model.classifiers import PromptLearner, cosine_logits, zero_shot_weights
from trainers.ship.training.loops import StepLoss

from .base import register
from .coop import CoOp, dassl_recipe

logger = logging.getLogger("ship")
AUTO_INIT = "auto"  # CTX_INIT: ProGrad's prompt of the dataset without " {}."


def zero_shot_kl(logits, zero_shot_logits, temperature: float = 1.0):
    """KL(softmax(zero-shot / T) ‖ softmax(logits / T)) · T², averaged over the batch."""
    return F.kl_div(F.log_softmax(logits / temperature, -1), F.softmax(zero_shot_logits / temperature, -1),
                    reduction="batchmean") * temperature ** 2


@register
class ProGrad(CoOp):
    name = "ProGrad"
    config = "PROGRAD"
    extra_settings = {"T": 1.0,  # temperature of the zero-shot KL whose gradient guides CoOp's
                      "LAMBDA": 1.0}  # λ: the weight of the conflicting component removed (its LOSS.LAMBDA)
    extra_ranges = {"T": Positive(), "LAMBDA": Num(0)}

    @classmethod
    def recipe_defaults(cls):
        return dassl_recipe(epochs=100, batch_size=32, n_ctx=16, ctx_init=AUTO_INIT)

    def init_phrase(self) -> str:
        """CTX_INIT, or for ``auto`` ProGrad's prompt of the dataset without its " {}." (its code's rule)."""
        if self.hp.CTX_INIT != AUTO_INIT:
            return self.hp.CTX_INIT
        template = self.own_templates()[0]
        if not template.endswith(" {}."):
            logger.info(f"ProGrad: the prompt {template!r} does not end with ' {{}}.'; its context starts from 'a photo of a'")
            return "a photo of a"
        return template[: -len(" {}.")]

    def build_learner(self) -> PromptLearner:
        return PromptLearner(self.text_encoder, self.hp.N_CTX, self.init_phrase(), rule="prograd")

    def recipe(self) -> dict:
        return {**super().recipe(), "guide_weight": self.hp.LAMBDA}

    def objective(self, names):
        zero_shot = zero_shot_weights(self.text_encoder, names, self.own_templates())
        temperature = self.hp.T

        def loss(learner, prompts, x, y):
            logits = learner.logits(prompts, x)
            guide = zero_shot_kl(logits, cosine_logits(x, zero_shot, self.text_encoder.logit_scale).detach(), temperature)
            return StepLoss(F.cross_entropy(logits, y), logits, guide)

        return loss
