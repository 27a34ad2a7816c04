"""The command line of a run (``python -m trainers.ship``): its arguments and the config they build. The feature
planner (``run.feature_plan``) reads the grid's command lines with the same parser."""
from __future__ import annotations

import argparse

from yacs.config import CfgNode

from trainers.ship.common.errors import ShipError
from trainers.ship.config import build_cfg
from trainers.ship.methods import trainer_names

DESCRIPTION = "Command line: any trainer under any protocol (base-to-new, GZSL, cross-dataset) on a CoOp dataset or a folder."


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m trainers.ship", description=DESCRIPTION)
    p.add_argument("--dataset", help="a CoOp dataset name (Caltech101, EuroSAT, ...) or ImageFolder (DATASET.NAME)")
    p.add_argument("--root", "--data-dir", dest="data_dir",
                   help="DATA root holding CoOp's dataset folders, or for ImageFolder the folder of class sub-folders (DATASET.ROOT)")
    p.add_argument("--download", action="store_true",
                   help="fetch the dataset into --root first if it is missing (datasets torchvision hosts)")
    p.add_argument("--split-file", help="ImageFolder: CoOp split JSON with paths relative to the folder (DATASET.SPLIT_FILE)")
    p.add_argument("--num-base", type=int, help="number of base classes; default: first half (DATASET.NUM_BASE)")
    p.add_argument("--trainer", choices=trainer_names(), help="method to run (TRAINER.NAME; default SHIP_CoOp)")
    p.add_argument("--backbone", help="CLIP model name, downloaded on first use (MODEL.BACKBONE.NAME)")
    p.add_argument("--weights", help="local CLIP checkpoint, overrides --backbone (MODEL.BACKBONE.WEIGHTS)")
    p.add_argument("--clip-cache-dir", help="where named CLIP weights are looked for and downloaded (default ~/.cache/clip)")
    p.add_argument("--shots", type=int, help="labelled images per base class (DATASET.NUM_SHOTS; default 16)")
    p.add_argument("--seed", type=int, help="random seed (SEED; default 1)")
    p.add_argument("--output-dir", help="run folder for log.txt, results.json, checkpoints (OUTPUT_DIR)")
    p.add_argument("--cache-dir", help="feature cache folder (CACHE_DIR; default ~/.cache/ship)")
    p.add_argument("--device", help="auto, cpu or cuda (DEVICE)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"),
                   help="compute precision (PRECISION; auto: bf16 where the GPU has it natively, else fp32)")
    p.add_argument("--eval-only", action="store_true", help="evaluate a trained run (--model-dir) instead of training")
    p.add_argument("--model-dir", help="with --eval-only: the run folder that holds prompt_learner/")
    p.add_argument("--load-epoch", type=int, help="with --eval-only: the checkpoint epoch (default: the config's last)")
    p.add_argument("--allow-mismatch", action="store_true", default=None,
                   help="with --eval-only: evaluate a run trained under another setup (ALLOW_SETUP_MISMATCH)")
    p.add_argument("--features-only", action="store_true",
                   help="extract (or find in CACHE_DIR) every feature set this run reads, then stop: nothing else runs")
    p.add_argument("--feature-set", metavar="KEY",
                   help="with --features-only: only the set of this plan key (python -m trainers.ship.run.feature_plan)")
    p.add_argument("--config-file", action="append", default=[], help="YAML config, may be repeated")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return p.parse_args(argv)


ARG_TO_KEY = {
    "data_dir": "DATASET.ROOT", "split_file": "DATASET.SPLIT_FILE", "dataset": "DATASET.NAME",
    "num_base": "DATASET.NUM_BASE", "trainer": "TRAINER.NAME", "backbone": "MODEL.BACKBONE.NAME",
    "weights": "MODEL.BACKBONE.WEIGHTS", "clip_cache_dir": "MODEL.BACKBONE.DOWNLOAD_ROOT",
    "shots": "DATASET.NUM_SHOTS", "seed": "SEED", "output_dir": "OUTPUT_DIR", "cache_dir": "CACHE_DIR", "device": "DEVICE",
    "precision": "PRECISION", "allow_mismatch": "ALLOW_SETUP_MISMATCH",
}


def cfg_from_args(args: argparse.Namespace) -> CfgNode:
    """The run's config: the config files, then the flags, then the KEY VALUE overrides; checked."""
    overrides = {key: getattr(args, arg) for arg, key in ARG_TO_KEY.items() if getattr(args, arg) is not None}
    cfg = build_cfg(args.config_file, overrides, args.opts)
    if not cfg.DATASET.ROOT:
        raise ShipError("no data given: pass --root DATA (with --dataset NAME) or --data-dir DIR (a folder of class sub-folders)")
    if args.eval_only and not args.model_dir:
        raise ShipError("--eval-only needs --model-dir (the folder of a finished training run)")
    if args.feature_set and not args.features_only:
        raise ShipError("--feature-set needs --features-only (it names which of the run's feature sets to extract)")
    return cfg
