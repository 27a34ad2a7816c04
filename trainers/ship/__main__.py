"""Command line: any trainer under any protocol (base-to-new, GZSL, cross-dataset) on a CoOp dataset or a folder.

    python -m trainers.ship --dataset Caltech101 --root DATA --output-dir OUT [--trainer SHIP_CoOp]
    python -m trainers.ship --data-dir DIR --output-dir OUT [--trainer SHIP_CoOp]
        [--eval-only --model-dir RUN [--load-epoch E]]
        [--split-file split.json] [--backbone ViT-B/16 | --weights clip.pt]
        [--shots 16] [--seed 1] [--config-file configs/trainers/SHIP/vit_b16.yaml]
        [--features-only [--feature-set KEY]]   (the run's feature sets into CACHE_DIR, nothing else)
        [KEY VALUE ...]
"""
from __future__ import annotations

import sys

from trainers.ship.common.errors import report_errors
from trainers.ship.data.readers import download
from trainers.ship.run.command_line import cfg_from_args, parse_args
from trainers.ship.run.feature_plan import extract_only
from trainers.ship.run.pipeline import run as run_protocol


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def run() -> None:
        cfg = cfg_from_args(args)
        if args.download and cfg.DATASET.NAME != "ImageFolder":
            download(cfg.DATASET.NAME, cfg.DATASET.ROOT)
        if args.features_only:
            extract_only(cfg, args.eval_only, args.feature_set)
            return
        run_protocol(cfg, model_dir=args.model_dir if args.eval_only else None, load_epoch=args.load_epoch)

    return report_errors(run)


if __name__ == "__main__":
    sys.exit(main())
