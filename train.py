"""Dassl entry point in CoOp's style: ``python train.py --trainer SHIP_<method> --root DATA ...``.

Same flags as CoOp's ``train.py``. Without dassl, the same experiment runs through
``python -m trainers.ship`` with the same config files.
"""
from __future__ import annotations

import argparse
import sys

from trainers.ship.common.errors import ShipError, report_errors
from trainers.ship.common.run_log import run_header
from trainers.ship.config import set_key
from trainers.ship.dassl.config import add_ship_cfg, config_for_dataset, ship_trainer_names

DASSL_MISSING = (
    "error: this entry point needs Dassl, which is not installed: git clone "
    "https://github.com/KaiyangZhou/Dassl.pytorch && cd Dassl.pytorch && pip install -r requirements.txt && "
    "pip install --no-build-isolation -e . (docs/running_with_dassl.md; or run the same experiment without Dassl: python -m trainers.ship --help)"
)


def extend_cfg(cfg, trainer: str = "") -> None:
    """Keys SHIP adds to Dassl's config (yacs rejects unknown keys in config files)."""
    add_ship_cfg(cfg, trainer or None)


def setup_cfg(args):
    """The run's config; ``args.config_file`` becomes the config actually read (SHIP's ImageNet recipe for ImageNet)."""
    from dassl.config import get_cfg_default

    cfg = get_cfg_default()
    extend_cfg(cfg, args.trainer)
    if args.dataset_config_file:
        cfg.merge_from_file(args.dataset_config_file)
    if args.config_file:
        args.config_file, note = config_for_dataset(args.config_file, cfg.DATASET.NAME)
        if note:
            print(note)
        cfg.merge_from_file(args.config_file)
    for key, value in (("DATASET.ROOT", args.root), ("OUTPUT_DIR", args.output_dir), ("RESUME", args.resume),
                       ("SEED", args.seed), ("TRAINER.NAME", args.trainer), ("MODEL.BACKBONE.NAME", args.backbone)):
        if value not in ("", None, -1):
            set_key(cfg, key, value)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    return cfg


def main(args) -> int:
    try:
        import dassl  # noqa: F401
    except ImportError:
        print(DASSL_MISSING, file=sys.stderr)
        return 2
    from dassl.engine import build_trainer
    from dassl.utils import set_random_seed, setup_logger

    import trainers.ship_methods  # noqa: F401  registers the datasets, SHIP_CoOp and SHIP_<method> for every registered method

    try:
        cfg = setup_cfg(args)
    except (KeyError, ValueError, AssertionError, FileNotFoundError) as exc:
        print(f"error: bad config: {exc}", file=sys.stderr)
        return 2
    except ShipError as exc:  # a config file that is no YAML mapping, a bad trainer name, seed or DATA root
        print(f"error: {exc}", file=sys.stderr)
        return 2
    set_random_seed(cfg.SEED)  # in [0, 2**32 - 1]: checked with the config
    setup_logger(cfg.OUTPUT_DIR)  # Dassl tees stdout into OUTPUT_DIR/log.txt (log.txt-<time> when one exists)
    print(run_header())
    print(f"config file: {args.config_file or '(none)'}; dataset config file: {args.dataset_config_file or '(none)'}")
    print(f"** Config **\n{cfg}")
    def run() -> None:
        trainer = build_trainer(cfg)
        if args.eval_only:
            trainer.load_model(args.model_dir, epoch=args.load_epoch)
            trainer.test()
        elif not args.no_train:
            trainer.train()

    return report_errors(run)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default="", help="DATA root with CoOp's dataset folders")
    p.add_argument("--output-dir", default="", help="output directory")
    p.add_argument("--resume", default="", help="checkpoint directory to resume from")
    p.add_argument("--seed", type=int, default=1, help="the run's seed, 0 ... 2**32-1 (as python -m trainers.ship)")
    p.add_argument("--config-file", default="", help="trainer config, e.g. configs/trainers/SHIP/vit_b16.yaml")
    p.add_argument("--dataset-config-file", default="", help="dataset config, e.g. configs/datasets/caltech101.yaml")
    p.add_argument("--trainer", default="", help=f"name of trainer: {', '.join(ship_trainer_names())}")
    p.add_argument("--backbone", default="", help="CLIP backbone name")
    p.add_argument("--eval-only", action="store_true", help="evaluation only")
    p.add_argument("--model-dir", default="", help="load the model from this directory for --eval-only")
    p.add_argument("--load-epoch", type=int, help="load the checkpoint of this epoch")
    p.add_argument("--no-train", action="store_true", help="do not call trainer.train()")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main(parse_args()))
