"""Text-side classifiers over CLIP features: zero-shot templates and CoOp's learnable context."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .text_encoder import ClassPrompts, TextEncoder, tokenize


def zero_shot_weights(text_encoder: TextEncoder, classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """Normalised class weights ``[C, D]``: the mean of the normalised template features of each class."""
    names = [name.replace("_", " ") for name in classnames]
    per_template = torch.stack([text_encoder.encode_text([t.format(n) for n in names]) for t in templates])
    return F.normalize(per_template.mean(0), dim=-1)


class PromptLearner(nn.Module):
    """CoOp's unified context: M learnable vectors shared by every class, "[ctx] classname ."."""

    def __init__(self, text_encoder: TextEncoder, n_ctx: int = 4, ctx_init: str = "a photo of a"):
        super().__init__()
        self.text_encoder = text_encoder  # frozen, not a submodule
        self.n_ctx = n_ctx
        init_ids = tokenize([ctx_init])[0] if ctx_init else None
        n_words = int(init_ids.argmax()) - 1 if ctx_init else 0  # tokens between SOS and EOT
        if ctx_init and n_words == n_ctx:
            ctx = text_encoder.embed_tokens(init_ids[1 : 1 + n_ctx])
        else:  # no init phrase, or one of another length: CoOp's random init
            ctx = torch.randn(n_ctx, text_encoder.width, device=text_encoder.device) * 0.02
        self.ctx = nn.Parameter(ctx.clone())

    def class_prompts(self, classnames: Sequence[str]) -> ClassPrompts:
        return ClassPrompts(self.text_encoder, classnames, self.n_ctx)

    def forward(self, prompts: ClassPrompts) -> torch.Tensor:
        """Normalised text features ``[C, D]`` of every class of ``prompts`` under the current context."""
        embeddings, eot = prompts.assemble(self.ctx)
        return F.normalize(self.text_encoder(embeddings, eot).float(), dim=-1)


def cosine_logits(features: torch.Tensor, class_weights: torch.Tensor, logit_scale: float) -> torch.Tensor:
    """CLIP's logits: scale · cos(feature, class weight)."""
    return logit_scale * features.float() @ class_weights.float().t()
