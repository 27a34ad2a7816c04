"""Random-weight CLIP models of the published sizes (timing needs no trained weights)."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from trainers.ship.clip_loader import CLIP

ARCHS = {
    # name: CLIP(...) arguments of OpenAI's checkpoints
    "ViT-B/16": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
                     context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8, transformer_layers=12),
    "ViT-B/32": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
                     context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8, transformer_layers=12),
}


def save_random_clip(arch: str, path: str | Path, seed: int = 0) -> Path:
    """A CLIP of ``arch``'s size with random weights and the trained logit scale (100), saved as a state dict."""
    torch.manual_seed(seed)
    state = CLIP(**ARCHS[arch]).state_dict()
    state["logit_scale"] = torch.tensor(math.log(100.0))
    torch.save(state, path)
    return Path(path)
