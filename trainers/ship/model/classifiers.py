"""Text-side classifiers over CLIP features: zero-shot templates, CoOp's learnable context and
CoCoOp's context conditioned on the image feature."""
from __future__ import annotations

import logging
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from trainers.ship.common.errors import ShipError
from trainers.ship.common.progress import Progress
from trainers.ship.model.text_encoder import ClassPrompts, TextEncoder, tokenize

logger = logging.getLogger("ship")


def zero_shot_weights(text_encoder: TextEncoder, classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """Normalised class weights ``[C, D]``: the mean of the normalised template features of each class."""
    names = [name.replace("_", " ") for name in classnames]
    per_template = torch.stack([text_encoder.encode_text([t.format(n) for n in names]) for t in templates])
    return F.normalize(per_template.mean(0), dim=-1)


CTX_INIT_RULES = ("coop", "prograd")
# CoCoOp's meta-net init: ``torch`` PyTorch's default Linear init (the CoCoOp code); ``zero`` its last layer zero, so
# that π(x) = 0 at the start and the context starts at the init phrase, as CoOp's does
META_NET_INITS = ("torch", "zero")


def init_context(text_encoder: TextEncoder, n_ctx: int, ctx_init: str, rule: str = "coop"
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The initial context vectors ``[M, W]`` and the phrase's token ids kept fixed after them (or None).

    No phrase: ``n_ctx`` random vectors (std 0.02). ``coop`` (CoOp, CoCoOp, KgCoOp): M = the phrase's word
    count, whatever ``n_ctx`` says (one log line when they differ), initialised from the phrase's first M
    tokens. ``prograd``: M = ``n_ctx`` ≥ the word count W; the last W vectors from the phrase's first W tokens,
    the others zero. In both, tokens of the phrase beyond its word count (a comma: "pet," is two tokens) stay
    in the prompt as fixed tokens, as the official prompts keep them.
    """
    if not ctx_init:
        return torch.randn(n_ctx, text_encoder.width, device=text_encoder.device) * 0.02, None
    phrase = ctx_init.replace("_", " ")
    n_words = len(phrase.split())
    ids = tokenize([phrase])[0]
    tokens = ids[1 : int(ids.argmax())]  # between SOS and EOT
    vectors, fixed = text_encoder.embed_tokens(tokens[:n_words]), tokens[n_words:]
    if rule == "coop":
        if n_words != n_ctx:
            logger.info(f"CTX_INIT {ctx_init!r} has {n_words} words, so the context has {n_words} vectors (CoOp's "
                        f"rule), not N_CTX {n_ctx}")
        return vectors, fixed
    if rule == "prograd":
        if n_words > n_ctx:
            raise ShipError(f"N_CTX {n_ctx} is smaller than the {n_words} words of the init phrase {ctx_init!r}; "
                            f"ProGrad needs N_CTX >= the phrase's word count")
        ctx = torch.zeros(n_ctx, text_encoder.width, device=text_encoder.device)
        ctx[n_ctx - n_words :] = vectors
        logger.info(f"context: {n_ctx} vectors, the last {n_words} initialised from {ctx_init!r}, the others zero "
                    f"(ProGrad's rule)")
        return ctx, fixed
    raise ShipError(f"unknown context init rule {rule!r}; expected one of {', '.join(CTX_INIT_RULES)}")


class PromptLearner(nn.Module):
    """CoOp's unified context: M learnable vectors shared by every class, "[ctx] classname ." (see
    :func:`init_context` for M and the initial vectors)."""

    def __init__(self, text_encoder: TextEncoder, n_ctx: int = 4, ctx_init: str = "a photo of a", rule: str = "coop"):
        super().__init__()
        self.text_encoder = text_encoder  # frozen, not a submodule
        ctx, self.fixed_ids = init_context(text_encoder, n_ctx, ctx_init, rule)
        self.n_ctx = len(ctx)
        self.ctx = nn.Parameter(ctx.clone())

    def class_prompts(self, classnames: Sequence[str]) -> ClassPrompts:
        return ClassPrompts(self.text_encoder, classnames, self.n_ctx, self.fixed_ids)

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
    image therefore has its own text features for every class. ``meta_net_init``: :data:`META_NET_INITS`.
    """

    def __init__(self, text_encoder: TextEncoder, n_ctx: int = 4, ctx_init: str = "a photo of a",
                 max_prompts: int = 8192, meta_net_init: str = "torch"):
        super().__init__(text_encoder, n_ctx, ctx_init)
        if meta_net_init not in META_NET_INITS:
            raise ShipError(f"unknown META_NET_INIT {meta_net_init!r}; expected one of {', '.join(META_NET_INITS)}")
        dim, width = text_encoder.embed_dim, text_encoder.width
        self.meta_net = nn.Sequential(nn.Linear(dim, dim // 16), nn.ReLU(), nn.Linear(dim // 16, width))
        if meta_net_init == "zero":
            nn.init.zeros_(self.meta_net[2].weight)
            nn.init.zeros_(self.meta_net[2].bias)
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
