"""Random-weight CLIP models of the published sizes (timing needs no trained weights)."""
from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import torch

from trainers.ship.common.runtime import resolve_device
from trainers.ship.model.clip_loader import CLIP, LoadedClip, load_clip

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


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Mean seconds per call of ``fn`` after ``warmup`` calls."""
    import time

    for _ in range(warmup):
        fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def matmul_peak_gflops(device: torch.device) -> float:
    """Measured dense matmul throughput of this machine: fp32 on the CPU, bf16 on CUDA (what autocast uses)."""
    n, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (2048, torch.float32)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    seconds = timed(lambda: a @ b, device, repeats=10 if device.type == "cuda" else 5, warmup=2)
    return 2 * n**3 / seconds / 1e9


def text_tower_flops(width: int, layers: int, tokens: int, backward: bool) -> float:
    """Matmul FLOPs of CLIP's text transformer over ``tokens`` positions (attention scores included).

    Per token and layer: QKV 6W², output 2W², MLP 16W² (= 24W²), plus 4·L·W for the attention
    products (L: the sequence length, counted as an average). The backward pass into frozen
    weights needs only input gradients: about as many FLOPs again.
    """
    forward = tokens * layers * 24 * width**2
    return forward * (2 if backward else 1)


def benchmark_parser(module: str, doc: str) -> argparse.ArgumentParser:
    """The options parser of ``python -m <module>``, its docstring ``doc`` as the help text."""
    return argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def tower_benchmark_setup(argv, module: str, doc: str) -> tuple[argparse.Namespace, torch.device, LoadedClip]:
    """The options of the text-tower benchmarks (--arch --batch --repeats --device) and a random CLIP."""
    p = benchmark_parser(module, doc)
    p.add_argument("--arch", default="ViT-B/16", choices=sorted(ARCHS))
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        clip_model = load_clip(weights=str(save_random_clip(args.arch, f"{tmp}/clip.pt")), device=device)
    return args, device, clip_model
