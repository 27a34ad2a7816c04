"""Every benchmark, one after another: ``python -m benchmarks [--quick]``.

Each one also runs alone: ``python -m benchmarks.<name> --help`` (text_encoder, generator, base2new_pipeline,
vs_coop_image_loop).

Full sizes (ViT-B/16, 100 classes, the paper's schedule) are meant for a GPU; ``--quick`` uses sizes
a 2-core CPU finishes in minutes (the text tower and generator at ViT-B/16 size, the whole runs
with 8 classes and short schedules). Each benchmark prints one JSON line per measurement.
"""
from __future__ import annotations

from trainers.ship.methods import trainer_names

from . import base2new_pipeline, generator, text_encoder, vs_coop_image_loop
from .common import benchmark_parser

SHIP_TRAINERS = ["SHIP_CoOp", "SHIP_TipAdapter", "SHIP_CLIPAdapter", "SHIP_KgCoOp", "SHIP_ProGrad"]

QUICK = [
    (text_encoder, ["--batch", "64", "--repeats", "2"]),
    (generator, ["--batch", "64", "--repeats", "2"]),
    (base2new_pipeline, ["--classes", "8", "--shots", "4", "--test-per-class", "4", "--trainers", ",".join(SHIP_TRAINERS),
                         "TRAINER.SHIP.GEN_EPOCHS", "5", "TRAINER.SHIP.AUG_PASSES", "2", "DATALOADER.NUM_WORKERS", "2",
                         *[w for node in ("COOP", "KGCOOP", "PROGRAD", "CLIPADAPTER") for w in (f"TRAINER.{node}.EPOCHS", "5")]]),
    (vs_coop_image_loop, ["--classes", "8", "--shots", "4", "--test-per-class", "4", "--epochs", "5", "--workers", "2",
                          "TRAINER.SHIP.GEN_EPOCHS", "5", "TRAINER.SHIP.AUG_PASSES", "2"]),
]
FULL = [(text_encoder, []), (generator, []), (base2new_pipeline, ["--trainers", ",".join(trainer_names())]),
        (vs_coop_image_loop, [])]


def main(argv: list[str] | None = None) -> None:
    p = benchmark_parser("benchmarks", __doc__)
    p.add_argument("--quick", action="store_true", help="sizes a 2-core CPU finishes in minutes (default: full, GPU sizes)")
    args = p.parse_args(argv)
    for module, module_args in QUICK if args.quick else FULL:
        module.main(module_args)


if __name__ == "__main__":
    main()
