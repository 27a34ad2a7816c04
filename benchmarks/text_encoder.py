"""Text encoder throughput: prompts/s forward+backward, 77 tokens vs cut after the last EOT.

    python -m benchmarks.text_encoder [--arch ViT-B/16] [--batch 256] [--repeats 5] [--device auto]

Prints one JSON line: both speeds, the speed-up, and the largest difference of the outputs.
"""
from __future__ import annotations

import json

import torch

from trainers.ship.common.runtime import autocast
from trainers.ship.model.text_encoder import ClassPrompts, TextEncoder

from .common import device_name, matmul_peak_gflops, text_tower_flops, timed, tower_benchmark_setup

NAMES = ["golden retriever", "aircraft carrier", "joshua tree", "motorbike", "sunflower", "pizza", "tabby cat",
         "playing guitar"]


def main(argv=None):
    args, device, clip_model = tower_benchmark_setup(argv, "benchmarks.text_encoder", __doc__)
    encoder = TextEncoder(clip_model.model, clip_model.precision)
    prompts = ClassPrompts(encoder, NAMES, n_ctx=4)
    labels = torch.arange(args.batch, device=device) % len(NAMES)
    ctx = torch.zeros(args.batch, 4, encoder.width, device=device, requires_grad=True)
    cut, eot = prompts.assemble(ctx, labels)
    full = torch.cat([cut, torch.zeros(args.batch, 77 - cut.shape[1], encoder.width, device=device)], dim=1)

    def forward(embeddings, length):
        """The text tower over the first ``length`` positions (77: no cut)."""
        with autocast(clip_model.precision):
            x = embeddings[:, :length] + clip_model.model.positional_embedding[:length]
            x = clip_model.model.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
            x = clip_model.model.ln_final(x)[torch.arange(args.batch, device=device), eot]
            return (x @ clip_model.model.text_projection).float()

    def step(embeddings, length):
        return lambda: forward(embeddings, length).sum().backward(retain_graph=True)

    with torch.no_grad():
        diff = (forward(full, 77) - encoder(cut, eot).float()).abs().max().item()
    t_full = timed(step(full, 77), device, args.repeats)
    t_cut = timed(step(cut, cut.shape[1]), device, args.repeats)
    transformer = clip_model.model.transformer
    flops = text_tower_flops(encoder.width, transformer.layers, args.batch * cut.shape[1], backward=True)
    peak = matmul_peak_gflops(device)
    print(json.dumps({
        "benchmark": "text_encoder", "arch": args.arch, "device": device_name(device), "batch": args.batch,
        "tokens_cut": cut.shape[1], "prompts_per_s_77": args.batch / t_full, "prompts_per_s_cut": args.batch / t_cut,
        "speedup": t_full / t_cut, "max_abs_diff": diff, "gflops_cut": flops / t_cut / 1e9,
        "matmul_peak_gflops": peak, "fraction_of_peak": flops / t_cut / 1e9 / peak,
    }))


if __name__ == "__main__":
    main()
