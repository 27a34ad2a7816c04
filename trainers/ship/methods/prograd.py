"""ProGrad (Zhu, Niu, Han, Wu, Zhang: Prompt-aligned Gradient for Prompt Tuning, ICCV 2023): CoOp whose
cross-entropy gradient, where it conflicts with the gradient of KL(zero-shot CLIP's prediction ‖ the
prompt's prediction), is replaced by its projection orthogonal to that gradient (``runtime.project_conflicting``).
Under SHIP the classes are base + label-only."""
from __future__ import annotations

import torch.nn.functional as F

from ..classifiers import cosine_logits, zero_shot_weights
from .base import register
from .coop import CoOp


def zero_shot_kl(logits, zero_shot_logits, temperature: float = 1.0):
    """KL(softmax(zero-shot / T) ‖ softmax(logits / T)) · T², averaged over the batch."""
    return F.kl_div(F.log_softmax(logits / temperature, -1), F.softmax(zero_shot_logits / temperature, -1),
                    reduction="batchmean") * temperature ** 2


@register
class ProGrad(CoOp):
    name = "ProGrad"
    config = "PROGRAD"
    extra_settings = {"T": 1.0}  # temperature of the zero-shot KL whose gradient guides CoOp's

    def objective(self, names):
        zero_shot = zero_shot_weights(self.text_encoder, names, self.templates)
        temperature = self.hp.T

        def loss(learner, prompts, x, y):
            logits = learner.logits(prompts, x)
            guide = zero_shot_kl(logits, cosine_logits(x, zero_shot, self.text_encoder.logit_scale).detach(), temperature)
            return F.cross_entropy(logits, y), guide

        return loss
