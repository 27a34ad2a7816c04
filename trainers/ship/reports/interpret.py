"""What learned prompt vectors say: their nearest vocabulary tokens, as CoOp's ``interpret_prompt.py`` reads its context.

    python -m trainers.ship.reports.interpret RUN [--topk 5] [--samples 3] [--weights clip.pt | --backbone ViT-B/16]

For a finished run: each global prompt vector of the SHIP generator, the local bias r(z) for a few z drawn from
the prior, and the context of the run's prompt learner (CoOp, KgCoOp, ProGrad, CoCoOp), each with its ``topk``
nearest tokens by Euclidean distance in CLIP's token-embedding space. Prints a table and writes it to
``RUN/interpretation.md``. The CLIP is the run's (``setup.json``), unless ``--weights`` / ``--backbone`` names one.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from clip.simple_tokenizer import SimpleTokenizer

from trainers.ship.common.errors import ShipError, report_errors
from trainers.ship.model.clip_loader import LoadedClip, load_clip
from trainers.ship.training.stages import checkpoint_file, read_checkpoint


def nearest_tokens(vectors: torch.Tensor, embedding: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances and ids ``[N, k]`` of the ``k`` token embeddings nearest (Euclidean) to each vector."""
    distances = torch.cdist(vectors.float(), embedding.float())
    return distances.topk(k, dim=-1, largest=False)


def token_texts(ids: list[int]) -> list[str]:
    """Vocabulary entries of token ids ("</w>" marks a word's end; shown as a trailing space dropped)."""
    decoder = SimpleTokenizer().decoder
    return [decoder[i].replace("</w>", "") for i in ids]


# Which prompt vectors each generator variant holds: its global prompts, its local-bias MLP r(z), or neither
# (``feature`` maps z to a feature directly; ``untrained`` is SHIP's prompt generator at its initial weights).
PROMPT_PARTS = {"prompt": ("global", "local"), "untrained": ("global", "local"), "cvae": ("global", "local"),
                "global_only": ("global",), "local_only": ("local",), "feature": ()}


def learned_vectors(run: Path, samples: int, seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """(label, vectors [n, W]) of the run's generator (global prompts, local biases) and prompt learner (context)."""
    found = []
    if (run / "generator").is_dir():
        state = read_checkpoint(checkpoint_file(run / "generator", None, prefer_best=False))["state_dict"]
        setup = json.loads((run / "setup.json").read_text()) if (run / "setup.json").is_file() else {}
        generator = setup.get("settings", {}).get("generator", {})
        variant = generator.get("TRAINER.SHIP.GENERATOR", "prompt")
        if variant not in PROMPT_PARTS:
            raise ShipError(f"{run}: TRAINER.SHIP.GENERATOR {variant!r} in setup.json; expected one of {', '.join(PROMPT_PARTS)}")
        parts = PROMPT_PARTS[variant]
        suffix = " (untrained)" if variant == "untrained" else ""
        if not parts:
            print(f"note: {run}: the {variant} generator maps z to a feature, not to prompt vectors; "
                  "no generator row", file=sys.stderr)
        if "global" in parts:
            found.append(("global prompt" + suffix, state["global_prompts"]))
        if "local" in parts:
            w1, b1, w2, b2 = (state[f"bias_mlp.{i}.{p}"] for i in (0, 2) for p in ("weight", "bias"))
            z = torch.randn(samples, w1.shape[1], generator=torch.Generator().manual_seed(seed))
            hidden = z @ w1.t() + b1
            leaky = generator.get("TRAINER.SHIP.LEAKY_RELU", False)
            hidden = torch.nn.functional.leaky_relu(hidden, 0.2) if leaky else torch.relu(hidden)
            found.append(("local bias r(z), z ~ N(0, I)" + suffix, hidden @ w2.t() + b2))
    if (run / "prompt_learner").is_dir():
        found.append(("prompt learner context", read_checkpoint(checkpoint_file(run / "prompt_learner", None))["state_dict"]["ctx"]))
    if not found:
        raise ShipError(f"{run} holds no generator/ or prompt_learner/ checkpoint to interpret")
    return found


def interpret(run: str | Path, clip_model: LoadedClip, topk: int = 5, samples: int = 3) -> str:
    """The markdown table of the run's learned vectors and their nearest tokens."""
    run = Path(run)
    embedding = clip_model.model.token_embedding.weight.detach().cpu()
    lines = ["| vector | # | nearest tokens (distance) |", "|---|---|---|"]
    for label, vectors in learned_vectors(run, samples):
        if vectors.shape[-1] != embedding.shape[1]:
            raise ShipError(f"{run}: {label} vectors have width {vectors.shape[-1]}, but this CLIP's tokens have "
                            f"{embedding.shape[1]}; pass the run's CLIP with --weights or --backbone")
        distances, ids = nearest_tokens(vectors.cpu(), embedding, topk)
        for i, (d, t) in enumerate(zip(distances, ids)):
            words = token_texts(t.tolist())
            lines.append(f"| {label} | {i + 1} | " + ", ".join(f"{w} ({x:.3f})" for w, x in zip(words, d.tolist())) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainers.ship.reports.interpret", description=__doc__.split("\n")[0])
    p.add_argument("run", help="a finished run folder")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--samples", type=int, default=3, help="z drawn from the prior for the local bias")
    p.add_argument("--weights", help="a local CLIP checkpoint (default: the run's, from setup.json)")
    p.add_argument("--backbone", help="a CLIP model name (default: the run's)")
    args = p.parse_args(argv)

    def run() -> None:
        setup_file = Path(args.run) / "setup.json"
        setup = json.loads(setup_file.read_text()) if setup_file.is_file() else {}
        weights = args.weights or (None if args.backbone else setup.get("clip_weights")) or None
        backbone = args.backbone or setup.get("clip", "ViT-B/16").split(":")[0]
        clip_model = load_clip(backbone, weights, "cpu")
        if setup.get("clip") and not (args.weights or args.backbone) and clip_model.identity != setup["clip"]:
            raise ShipError(f"the CLIP found ({clip_model.identity}) is not the run's ({setup['clip']}); pass --weights")
        table = interpret(args.run, clip_model, args.topk, args.samples)
        print(table)
        (Path(args.run) / "interpretation.md").write_text(table + "\n")
        print(f"wrote {Path(args.run) / 'interpretation.md'}")

    return report_errors(run)


if __name__ == "__main__":
    sys.exit(main())
