"""CLIP's frozen text tower fed with prompt embeddings (CoOp-style prompt injection).

Prompts are ``[SOS] ctx_1 .. ctx_M <class-name tokens> . [EOT] <pad>``. The
transformer is causal, so nothing after the batch's last EOT can change the
EOT feature: sequences are cut there (exact, and several times faster than 77
tokens for short class names). The residual blocks are run here with a causal
mask of the cut length, so the encoder works with any ``clip`` package of
OpenAI's module layout, including CoOp's copy whose blocks hold a fixed
77-token mask.
"""
from __future__ import annotations

import logging
from typing import Sequence

import torch
import torch.nn.functional as F

from trainers.ship.common.errors import ShipError
from trainers.ship.model.clip_loader import CLIP, clip

logger = logging.getLogger("ship")


class TextEncoder:
    """Frozen text tower of a CLIP model, called on token embeddings.

    A plain callable, not an ``nn.Module``: CLIP's weights therefore never
    enter an optimizer or a checkpoint of the modules that use it, while
    gradients still flow through it to the prompt embeddings.
    """

    def __init__(self, clip_model: CLIP, precision: str = "fp32"):
        self.clip = clip_model
        self.precision = precision  # of the training and synthesis steps that run through this encoder

    @property
    def width(self) -> int:
        """Transformer width W: the size of a token embedding."""
        return self.clip.ln_final.weight.shape[0]

    @property
    def embed_dim(self) -> int:
        """Joint embedding size D: the size of an image or text feature."""
        return self.clip.text_projection.shape[1]

    @property
    def device(self) -> torch.device:
        return self.clip.text_projection.device

    @property
    def logit_scale(self) -> float:
        return float(self.clip.logit_scale.exp())

    @torch.no_grad()
    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.clip.token_embedding(token_ids.to(self.device)).float()

    def __call__(self, prompts: torch.Tensor, eot: torch.Tensor) -> torch.Tensor:
        """Project the EOT outputs of prompt embeddings ``[B, T, W]`` to features ``[B, D]``.

        ``eot`` holds the EOT position of each prompt. Not normalised.
        """
        length = int(eot.max()) + 1  # causal mask: later positions never reach an EOT
        x = prompts[:, :length] + self.clip.positional_embedding[:length]
        x = run_blocks(self.clip.transformer.resblocks, x.permute(1, 0, 2)).permute(1, 0, 2)  # sequence-first
        x = self.clip.ln_final(x)
        rows = torch.arange(x.shape[0], device=x.device)
        return x[rows, eot.to(x.device)] @ self.clip.text_projection

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """L2-normalised features of plain strings (zero-shot CLIP), no gradient."""
        ids = tokenize(texts)
        with torch.no_grad():
            return F.normalize(self(self.embed_tokens(ids), ids.argmax(-1)).float(), dim=-1)


def causal_mask(length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """CLIP's additive attention mask for ``length`` tokens: -inf above the diagonal."""
    return torch.full((length, length), float("-inf"), device=device, dtype=dtype).triu(1)


def run_blocks(blocks: Sequence[torch.nn.Module], x: torch.Tensor) -> torch.Tensor:
    """CLIP's residual attention blocks on ``x`` ``[L, B, W]`` under a causal mask of length L:
    x + attn(ln_1(x)), then x + mlp(ln_2(x)), as ``clip.model.ResidualAttentionBlock`` computes them."""
    mask = causal_mask(x.shape[0], x.device, x.dtype)
    for block in blocks:
        h = block.ln_1(x)
        x = x + block.attn(h, h, h, need_weights=False, attn_mask=mask.to(h.dtype))[0]
        x = x + block.mlp(block.ln_2(x))
    return x


_TOO_LONG_LOGGED: set[str] = set()


def tokenize(texts: Sequence[str]) -> torch.Tensor:
    """CLIP token ids ``[N, 77]``. A text longer than CLIP's 77-token context is cut to its first 76 tokens
    plus the EOT token (what ``clip.tokenize(truncate=True)`` does), with one log line per text naming it."""
    texts = list(texts)
    try:
        return clip.tokenize(texts)
    except RuntimeError:  # "Input ... is too long for context length 77"
        pass
    for text in texts:
        if text not in _TOO_LONG_LOGGED:
            try:
                clip.tokenize([text])
            except RuntimeError:
                _TOO_LONG_LOGGED.add(text)
                logger.info(f"text longer than CLIP's 77-token context, cut to its first 76 tokens: {text[:60]!r}...")
    return clip.tokenize(texts, truncate=True)


class ClassPrompts:
    """Token embeddings of ``"X .. X <classname>."`` for a list of classes, cut after the last EOT.

    The M placeholder tokens mark where learnable context vectors go;
    :meth:`assemble` puts them there.
    """

    def __init__(self, text_encoder: TextEncoder, classnames: Sequence[str], n_ctx: int,
                 fixed_ids: torch.Tensor | None = None):
        """``fixed_ids``: token ids kept fixed between the context and the class name (the tokens of an init
        phrase beyond its word count, which CoOp's prompts keep as text)."""
        if not classnames:
            raise ShipError("a prompt needs at least one class name; got none")
        self.classnames = [name.replace("_", " ") for name in classnames]
        self.n_ctx = n_ctx
        placeholder = " ".join(["X"] * n_ctx)
        ids = tokenize([f"{placeholder} {name}." for name in self.classnames])
        if fixed_ids is not None and len(fixed_ids):
            fixed = fixed_ids.to(ids.dtype).unsqueeze(0).expand(len(ids), -1)
            ids = torch.cat([ids[:, : 1 + n_ctx], fixed, ids[:, 1 + n_ctx :]], 1)[:, : ids.shape[1]]
        self.eot = ids.argmax(-1).to(text_encoder.device)
        embeddings = text_encoder.embed_tokens(ids[:, : int(self.eot.max()) + 1])
        self.prefix = embeddings[:, :1]  # [C, 1, W]  SOS
        self.suffix = embeddings[:, 1 + n_ctx :]  # [C, S, W]  class tokens, '.', EOT, (pad)

    def __len__(self) -> int:
        return len(self.classnames)

    def assemble(self, ctx: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt embeddings and EOT positions.

        ``ctx`` is ``[M, W]`` (one context shared by every prompt) or ``[B, M, W]``
        (one context per prompt); ``labels`` picks the class of each prompt
        (default: one prompt per class, in order).
        """
        prefix, suffix, eot = self.prefix, self.suffix, self.eot
        if labels is not None:
            prefix, suffix, eot = prefix[labels], suffix[labels], eot[labels]
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(prefix.shape[0], -1, -1)
        return torch.cat([prefix, ctx.to(prefix.dtype), suffix], dim=1), eot
