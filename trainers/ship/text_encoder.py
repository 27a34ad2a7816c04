"""CLIP's frozen text tower fed with prompt embeddings (CoOp-style prompt injection).

Prompts are ``[SOS] ctx_1 .. ctx_M <class-name tokens> . [EOT] <pad>``. The
transformer is causal, so nothing after the batch's last EOT can change the
EOT feature: sequences are cut there (exact, and several times faster than 77
tokens for short class names).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .clip_loader import CLIP, clip
from .errors import ShipError


class TextEncoder:
    """Frozen text tower of a CLIP model, called on token embeddings.

    A plain callable, not an ``nn.Module``: CLIP's weights therefore never
    enter an optimizer or a checkpoint of the modules that use it, while
    gradients still flow through it to the prompt embeddings.
    """

    def __init__(self, clip_model: CLIP):
        self.clip = clip_model

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
        x = self.clip.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)  # clip's blocks are sequence-first
        x = self.clip.ln_final(x)
        rows = torch.arange(x.shape[0], device=x.device)
        return x[rows, eot.to(x.device)] @ self.clip.text_projection

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """L2-normalised features of plain strings (zero-shot CLIP), no gradient."""
        ids = tokenize(texts)
        with torch.no_grad():
            return F.normalize(self(self.embed_tokens(ids), ids.argmax(-1)).float(), dim=-1)


def tokenize(texts: Sequence[str]) -> torch.Tensor:
    """CLIP token ids ``[N, 77]``; a text too long for CLIP's context is named in the error."""
    try:
        return clip.tokenize(list(texts))
    except RuntimeError as exc:  # clip names the text: "Input ... is too long for context length 77"
        raise ShipError(f"{exc}: shorten the class name or template") from None


class ClassPrompts:
    """Token embeddings of ``"X .. X <classname>."`` for a list of classes, cut after the last EOT.

    The M placeholder tokens mark where learnable context vectors go;
    :meth:`assemble` puts them there.
    """

    def __init__(self, text_encoder: TextEncoder, classnames: Sequence[str], n_ctx: int):
        if not classnames:
            raise ShipError("a prompt needs at least one class name; got none")
        self.classnames = [name.replace("_", " ") for name in classnames]
        self.n_ctx = n_ctx
        placeholder = " ".join(["X"] * n_ctx)
        ids = tokenize([f"{placeholder} {name}." for name in self.classnames])
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
