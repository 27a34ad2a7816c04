"""Load OpenAI CLIP by model name (downloaded like ``clip.load``) or from a local file.

Always the non-JIT model, weights in fp32 (mixed precision comes from autocast
on CUDA), every parameter frozen.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

with warnings.catch_warnings():  # clip-anytorch imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import clip
    from clip import clip as _clip_impl
    from clip.model import CLIP, build_model

from trainers.ship.common.errors import ShipError
from trainers.ship.common.options import option
from trainers.ship.common.runtime import resolve_precision

DEFAULT_DOWNLOAD_ROOT = os.path.expanduser("~/.cache/clip")


@dataclass(frozen=True)
class LoadedClip:
    """A frozen CLIP model, a short name, an identity for cache keys and checks, and its compute precision."""

    model: CLIP
    name: str  # backbone name, or the weights file's stem
    identity: str  # the name and the SHA-256 of the weights file: the same weights wherever the file lies
    precision: str = "fp32"  # fp32, bf16 or fp16 (runtime.resolve_precision)

    @property
    def input_resolution(self) -> int:
        return self.model.visual.input_resolution


def available_backbones() -> list[str]:
    return clip.available_models()


def _weights_file_for(backbone: str, download_root: str) -> Path:
    """The local file of a named backbone, downloading it when absent (as ``clip.load`` does)."""
    url = _clip_impl._MODELS[backbone]
    target = Path(download_root) / os.path.basename(url)
    if target.is_file():
        return target
    try:
        return Path(_clip_impl._download(url, download_root))
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        raise ShipError(
            f"CLIP weights for {backbone} not found at {target} and the download from {url} failed "
            f"({type(exc).__name__}: {exc}); put the file there, set the cache folder with "
            f"{option('clip_cache_dir')}, or pass a local checkpoint with {option('weights')}"
        ) from None


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A CLIP state dict from an OpenAI JIT archive or a saved state dict."""
    try:
        with warnings.catch_warnings():  # torch.jit.load is deprecated, but OpenAI ships JIT archives
            warnings.simplefilter("ignore")
            return torch.jit.load(str(path), map_location="cpu").state_dict()
    except RuntimeError:
        pass  # not a TorchScript archive: try a plain state dict
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle error, ...
        raise ShipError(f"corrupt CLIP weights file {path}: {type(exc).__name__}: {exc}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or "text_projection" not in state:
        raise ShipError(f"{path} is not a CLIP checkpoint (no 'text_projection' in its state dict)")
    return state


# OpenAI's published CLIP architectures: the depths of each stack by its width (vision transformer, ResNet stem,
# text transformer). ``build_model`` counts the blocks it finds, so a missing block would build a shallower model.
PUBLISHED_VIT_LAYERS = {768: {(12,)}, 1024: {(24,)}}
PUBLISHED_RESNET_BLOCKS = {64: {(3, 4, 6, 3), (3, 4, 23, 3)}, 80: {(4, 6, 10, 6)}, 96: {(6, 8, 18, 8)}, 128: {(3, 15, 36, 10)}}
PUBLISHED_TEXT_LAYERS = {512: {(12,)}, 640: {(12,)}, 768: {(12,)}, 1024: {(12,)}}


def _block_count(state: dict[str, torch.Tensor], prefix: str, path: Path) -> int:
    """The number of blocks ``prefix``0.., ``prefix``1.. of the state dict; one error if one in between is missing."""
    indices = {int(i) for i in (k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)) if i.isdigit()}
    missing = sorted(set(range(max(indices, default=-1) + 1)) - indices)
    if not indices or missing:
        raise ShipError(f"CLIP weights file {path} lacks block {missing[0] if missing else 0} of {prefix.rstrip('.')}; "
                        f"the file is incomplete")
    return len(indices)


def check_blocks(state: dict[str, torch.Tensor], path: Path) -> None:
    """One :class:`ShipError` if a block of the state dict is missing: the blocks of each stack are numbered
    without gaps, and a stack as wide as a published CLIP's is as deep as it (a dropped last block)."""
    stem = state.get("visual.conv1.weight")
    checks = [(("transformer.resblocks.",), state["text_projection"].shape[0], PUBLISHED_TEXT_LAYERS)]
    if stem is not None and "visual.proj" in state:  # without a stem, build_model names what is missing
        checks.append((("visual.transformer.resblocks.",), stem.shape[0], PUBLISHED_VIT_LAYERS))
    elif stem is not None:
        checks.append((tuple(f"visual.layer{stage}." for stage in range(1, 5)), stem.shape[0] * 2, PUBLISHED_RESNET_BLOCKS))
    for prefixes, width, published in checks:
        depth = tuple(_block_count(state, prefix, path) for prefix in prefixes)
        if width in published and depth not in published[width]:
            expected = " or ".join("/".join(map(str, d)) for d in sorted(published[width]))
            raise ShipError(f"CLIP weights file {path} has {'/'.join(map(str, depth))} blocks in "
                            f"{prefixes[0].rstrip('.')}{'..4' if len(prefixes) > 1 else ''}, but a published CLIP of "
                            f"width {width} has {expected}; the file is incomplete")


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (CLIP's weights: about a second for ViT-L)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def load_clip(
    backbone: str = "ViT-B/16",
    weights: str | None = None,
    device: torch.device | str = "cpu",
    download_root: str | None = None,
    precision: str = "auto",
) -> LoadedClip:
    """Load a frozen fp32 CLIP.

    ``weights`` (a local file: OpenAI JIT archive or state dict) wins over
    ``backbone``; otherwise ``backbone`` must be one of ``clip.available_models()``
    and is read from (or downloaded to) ``download_root`` (default ``~/.cache/clip``).
    ``precision`` (auto, fp32, bf16, fp16) is resolved for ``device`` (see ``runtime.resolve_precision``).
    """
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ShipError(f"CLIP weights file not found: {path} (expected an OpenAI CLIP .pt file or state dict)")
        name = path.stem
    elif backbone in available_backbones():
        path = _weights_file_for(backbone, os.path.expanduser(download_root or DEFAULT_DOWNLOAD_ROOT))
        name = backbone
    else:
        raise ShipError(f"unknown backbone {backbone!r}; expected one of {available_backbones()} or {option('weights')}")

    state = _read_state_dict(path)
    check_blocks(state, path)
    try:
        model = build_model(state)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ShipError(f"corrupt CLIP weights file {path}: cannot build a model ({type(exc).__name__}: {exc})") from None
    device = torch.device(device)
    model = model.float().eval().requires_grad_(False).to(device)
    return LoadedClip(model=model, name=name, identity=f"{name}:sha256:{file_digest(path)[:16]}",
                      precision=resolve_precision(precision, device))
