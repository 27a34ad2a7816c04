"""Text-side classifiers over CLIP features: zero-shot templates, CoOp's learnable context and
CoCoOp's context conditioned on the image feature."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .progress import Progress
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

    def logits(self, prompts: ClassPrompts, features: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, C]`` of normalised image features over the classes of ``prompts``."""
        return cosine_logits(features, self(prompts), self.text_encoder.logit_scale)


class ConditionalPromptLearner(PromptLearner):
    """CoCoOp: the context is shifted per image by a meta-net of its feature, ctx_m(x) = ctx_m + π(x).

    π = Linear(D, D/16) → ReLU → Linear(D/16, W), one shift shared by the M context vectors; every
    image therefore has its own text features for every class.
    """

    def __init__(self, text_encoder: TextEncoder, n_ctx: int = 4, ctx_init: str = "a photo of a",
                 max_prompts: int = 8192):
        super().__init__(text_encoder, n_ctx, ctx_init)
        dim, width = text_encoder.embed_dim, text_encoder.width
        self.meta_net = nn.Sequential(nn.Linear(dim, dim // 16), nn.ReLU(), nn.Linear(dim // 16, width))
        self.meta_net.to(text_encoder.device)
        self.max_prompts = max_prompts  # images x classes encoded at once: bounds the memory of a batch

    def logits(self, prompts: ClassPrompts, features: torch.Tensor) -> torch.Tensor:
        chunk = max(1, self.max_prompts // len(prompts))
        parts = features.split(chunk)
        if len(parts) > 1:  # a test set: every image through the text encoder with every class, minutes long
            parts = Progress("CoCoOp scoring", len(features), "image").track(parts, len, close=True)
        return torch.cat([self._logits(prompts, part) for part in parts])

    def _logits(self, prompts: ClassPrompts, features: torch.Tensor) -> torch.Tensor:
        n_images, n_classes = len(features), len(prompts)
        ctx = self.ctx.unsqueeze(0) + self.meta_net(features.to(self.ctx.dtype)).unsqueeze(1)  # [B, M, W]
        labels = torch.arange(n_classes, device=ctx.device).repeat(n_images)  # image-major: (b, c) -> b·C + c
        embeddings, eot = prompts.assemble(ctx.repeat_interleave(n_classes, 0), labels)
        text = F.normalize(self.text_encoder(embeddings, eot).float(), dim=-1).view(n_images, n_classes, -1)
        return self.text_encoder.logit_scale * torch.einsum("bd,bcd->bc", features.float(), text)


def cosine_logits(features: torch.Tensor, class_weights: torch.Tensor, logit_scale: float) -> torch.Tensor:
    """CLIP's logits: scale · cos(feature, class weight)."""
    return logit_scale * features.float() @ class_weights.float().t()
