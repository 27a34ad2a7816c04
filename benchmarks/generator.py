"""SHIP generator throughput: training steps (features/s, GFLOP/s vs the measured matmul peak) and synthesis.

    python -m benchmarks.generator [--arch ViT-B/16] [--batch 256] [--repeats 5] [--device auto]

Random-weight CLIP of the named size; 50 Caltech-like class names; prints one JSON line.
"""
from __future__ import annotations

import json

import torch
import torch.nn.functional as F

from trainers.ship.common.runtime import autocast
from trainers.ship.model.generator import ShipGenerator
from trainers.ship.model.synthesis import synthesize_per_class
from trainers.ship.model.text_encoder import TextEncoder

from .common import device_name, matmul_peak_gflops, text_tower_flops, timed, tower_benchmark_setup

NAMES = ("accordion airplane anchor ant barrel bass beaver binocular bonsai brain brontosaurus buddha butterfly camera "
         "cannon car side ceiling fan cellphone chair chandelier cougar body crab crayfish crocodile cup dalmatian "
         "dollar bill dolphin dragonfly electric guitar elephant emu euphonium ewer ferry flamingo garfield gerenuk "
         "gramophone grand piano hawksbill headphone hedgehog helicopter ibis inline skate joshua tree").split()[:50]


def main(argv=None):
    args, device, clip_model = tower_benchmark_setup(argv, "benchmarks.generator", __doc__)
    encoder = TextEncoder(clip_model.model, clip_model.precision)
    torch.manual_seed(0)
    generator = ShipGenerator(encoder)
    prompts = generator.class_prompts(NAMES)
    optimizer = torch.optim.AdamW(generator.parameters(), lr=1e-3)
    x = F.normalize(torch.randn(args.batch, encoder.embed_dim, device=device), dim=-1)
    labels = torch.randint(len(NAMES), (args.batch,), device=device)

    def step():
        with autocast(clip_model.precision):
            rec, kl = generator(x, prompts, labels)
        optimizer.zero_grad(set_to_none=True)
        (rec + kl).backward()
        optimizer.step()

    def synthesize():
        synthesize_per_class(generator, prompts, max(1, args.batch // len(NAMES)))

    t_step = timed(step, device, args.repeats)
    t_syn = timed(synthesize, device, args.repeats)
    n_syn = max(1, args.batch // len(NAMES)) * len(NAMES)
    tokens = int((prompts.eot[labels].max() + 1)) * args.batch  # every prompt runs to the batch's last EOT
    d, w = encoder.embed_dim, encoder.width
    mlp = 2 * args.batch * (d * 2048 + 2 * 2048 * generator.latent_dim + generator.latent_dim * 4096 + 4096 * w)
    flops = text_tower_flops(w, clip_model.model.transformer.layers, tokens, backward=True) + 3 * mlp
    peak = matmul_peak_gflops(device)
    print(json.dumps({
        "benchmark": "generator", "arch": args.arch, "device": device_name(device), "batch": args.batch,
        "train_features_per_s": args.batch / t_step, "step_ms": 1000 * t_step, "step_gflops": flops / t_step / 1e9,
        "matmul_peak_gflops": peak, "fraction_of_peak": flops / t_step / 1e9 / peak,
        "synthesis_features_per_s": n_syn / t_syn,
    }))


if __name__ == "__main__":
    main()
