"""yacs configuration of a SHIP run; defaults are the paper's (official code) values.

The keys mirror Dassl's (``MODEL.BACKBONE.NAME``, ``DATASET.*``, ``TRAINER.SHIP.*``)
so that one YAML file under ``configs/`` drives both this command and
``train.py`` on Dassl.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from yacs.config import CfgNode as CN

from .errors import ShipError
from .run_log import usable_cpus


def ship_trainer_defaults() -> CN:
    """``TRAINER.SHIP``: feature extraction, the generator and synthesis. Each fine-tuner's own settings are in
    its node (``TRAINER.COOP``, ``TRAINER.TIPADAPTER``, ...: ``methods``)."""
    s = CN()
    # Feature extraction: K augmented passes over the few-shot images.
    s.AUG_PASSES = 10
    s.AUG_SCALE = (0.5, 1.0)  # RandomResizedCrop scale; ImageNet: (0.08, 1.0)
    # Generator (VAE): encoder, local-bias MLP, M global prompts.
    s.GENERATOR = "prompt"  # prompt (SHIP), feature, global_only, local_only, cvae: the paper's ablations
    s.N_CTX = 4
    s.ENCODER_HIDDEN = 2048  # ImageNet: 4096
    s.MLP_HIDDEN = 4096
    s.LATENT_DIM = 0  # 0: the CLIP feature size
    s.LEAKY_RELU = False  # ImageNet: True (LeakyReLU(0.2) in the bias MLP)
    s.KL_WEIGHT = 1.0
    s.GEN_EPOCHS = 50  # ImageNet: 10
    s.GEN_LR = 1e-3
    s.GEN_BATCH_SIZE = 256
    # Synthetic features of label-only classes (False: a SHIP_<method> trainer is the plain method on features).
    s.SYNTHESIZE = True
    # 0 = fresh synthetic features for every batch (reference code), N > 0 = a pool of N per class.
    s.SYN_POOL_PER_CLASS = 0
    # feature_map.png after a SHIP run: real vs synthetic features of up to this many classes per panel (0: none).
    s.FEATURE_MAP = 10
    # SHIP + Tip-Adapter: synthetic cache keys per label-only class; 0: as many as the shots
    s.TIP_SYN_PER_CLASS = 0
    return s


def get_cfg_defaults() -> CN:
    cfg = CN()
    cfg.OUTPUT_DIR = "output"
    cfg.SEED = 1
    cfg.DEVICE = "auto"
    # auto: bf16 on GPUs that compute it natively (compute capability >= 8.0), else fp32; fp16 scales the loss
    cfg.PRECISION = "auto"
    # --eval-only of a run trained with another CLIP, trainer, shots, seed, settings or dataset: error unless True
    cfg.ALLOW_SETUP_MISMATCH = False
    cfg.CACHE_DIR = "~/.cache/ship"  # cached image features

    cfg.MODEL = CN()
    cfg.MODEL.BACKBONE = CN()
    cfg.MODEL.BACKBONE.NAME = "ViT-B/16"
    cfg.MODEL.BACKBONE.WEIGHTS = ""  # a local CLIP checkpoint; overrides NAME
    cfg.MODEL.BACKBONE.DOWNLOAD_ROOT = "~/.cache/clip"

    cfg.DATASET = CN()
    cfg.DATASET.NAME = "ImageFolder"  # or a CoOp dataset: Caltech101, EuroSAT, ImageNet, ... (datasets/catalog.py)
    cfg.DATASET.ROOT = ""  # ImageFolder: the folder of class sub-folders; otherwise the DATA root
    cfg.DATASET.SPLIT_FILE = ""  # ImageFolder only: a CoOp split JSON; empty: a fixed 50/20/30 split per class
    cfg.DATASET.NUM_SHOTS = 16
    cfg.DATASET.NUM_BASE = 0  # 0: the first half of the labels (CoCoOp's rule)
    # Training always uses the base classes; this picks what is evaluated: "all" (base and new, and H),
    # "base" / "new" alone (CoOp's train_base / test_new runs), or "gzsl" (one joint label space:
    # seen / unseen / H as mean per-class accuracies).
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"
    # Cross-dataset transfer: train on every class of NAME, with the class names of these datasets (catalog
    # names, or .txt files of names) as the label-only classes SHIP synthesises; then evaluate the run on
    # each of them. Empty: base-to-new. One list for all targets (one training run) or one target per run.
    cfg.DATASET.LABEL_ONLY_FROM = []
    cfg.DATASET.TEMPLATES = []  # zero-shot CLIP prompts; empty: the dataset's own ("a photo of a {}." for folders)

    cfg.DATALOADER = CN()
    cfg.DATALOADER.NUM_WORKERS = min(4, usable_cpus())  # fewer on a machine with fewer cores (torch warns otherwise)
    cfg.DATALOADER.BATCH_SIZE = 128  # image encoding

    cfg.TRAINER = CN()
    cfg.TRAINER.NAME = "SHIP_CoOp"
    cfg.TRAINER.SHIP = ship_trainer_defaults()
    from .methods import method_nodes  # the methods import the stages, which do not import this module

    for node, defaults in method_nodes().items():
        cfg.TRAINER[node] = defaults
    return cfg


# Keys of TRAINER.SHIP that moved into a method's own node
MOVED = {
    **{f"TRAINER.SHIP.COOP_{k}": f"TRAINER.COOP.{k}" for k in ("N_CTX", "CTX_INIT", "EPOCHS", "LR", "BATCH_SIZE", "OPTIM",
                                                              "MOMENTUM", "WEIGHT_DECAY", "EPS", "WARMUP_EPOCHS", "WARMUP_LR")},
    **{f"TRAINER.SHIP.COCOOP_{k}": f"TRAINER.COCOOP.{k}" for k in ("N_CTX", "CTX_INIT", "EPOCHS", "LR", "BATCH_SIZE",
                                                                  "MOMENTUM", "WEIGHT_DECAY", "WARMUP_EPOCHS", "WARMUP_LR")},
    **{f"TRAINER.SHIP.TIP_{k}": f"TRAINER.TIPADAPTER.{k}" for k in ("FINETUNE", "EPOCHS", "LR", "BATCH_SIZE", "INIT_ALPHA",
                                                                   "INIT_BETA", "SEARCH_SCALE")},
}


def check_moved(keys, where: str) -> None:
    """One error line for a key that moved to a method's node (configs written before the method registry)."""
    for key in keys:
        if key in MOVED:
            raise ShipError(f"{key} moved to {MOVED[key]} ({where}); rename it there")


def _flat_keys(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in (tree or {}).items():
        keys += _flat_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"]
    return keys


def set_key(cfg: CN, key: str, value: Any) -> None:
    """``cfg.A.B = value`` for ``key`` "A.B" (a typed value, as argparse gives it)."""
    *parents, leaf = key.split(".")
    node = cfg
    for part in parents:
        node = node[part]
    node[leaf] = value


def build_cfg(config_files: Sequence[str] = (), overrides: Mapping[str, Any] | None = None, opts: Sequence[str] = ()) -> CN:
    """Defaults, then each YAML file, then ``overrides`` (command-line flags, typed), then
    ``KEY VALUE`` pairs (as CoOp's ``train.py``). Unknown keys are one-line errors."""
    cfg = get_cfg_defaults()
    for path in config_files:
        if Path(path).is_file():
            check_moved(_flat_keys(yaml.safe_load(Path(path).read_text())), f"config file {path}")
        try:
            cfg.merge_from_file(path)
        except FileNotFoundError:
            raise ShipError(f"config file not found: {path}") from None
        except (KeyError, ValueError, AssertionError) as exc:
            raise ShipError(f"bad config file {path}: {exc}") from None
    for key, value in (overrides or {}).items():
        set_key(cfg, key, value)
    if len(opts) % 2:
        raise ShipError(f"config overrides come in KEY VALUE pairs; got {len(opts)} words: {' '.join(opts)}")
    check_moved(opts[::2], "command line")
    try:
        cfg.merge_from_list(list(opts))
    except (KeyError, ValueError, AssertionError) as exc:
        raise ShipError(f"bad config override: {exc}") from None
    cfg.freeze()
    return cfg
