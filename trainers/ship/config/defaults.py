"""The defaults of a SHIP run (the paper's, official code's values) and the allowed values of the core's keys.

The keys mirror Dassl's (``MODEL.BACKBONE.NAME``, ``DATASET.*``, ``TRAINER.SHIP.*``) so that one YAML file under
``configs/`` drives both ``python -m trainers.ship`` and ``train.py`` on Dassl; each method's node
(``TRAINER.COOP``, ...) comes from its file in ``methods/``.
"""
from __future__ import annotations

from yacs.config import CfgNode as CN

from trainers.ship.common.ranges import (SEED, SHOTS, SUBSAMPLE_CLASSES, Choice, Flag, Int, Interval, Names,
                                         Num, Positive, Spec, Templates, Text, node_ranges)
from trainers.ship.common.run_log import usable_cpus
from trainers.ship.common.runtime import PRECISIONS
from trainers.ship.config.files import accept_ints_for_floats
from trainers.ship.methods import method_nodes, trainer_names
from trainers.ship.model.generator import VARIANTS

HEAD_RECIPES = ("auto", "ship", "method")  # TRAINER.SHIP.HEAD_RECIPE (methods.coop.twin_recipe resolves auto)


def ship_trainer_defaults() -> CN:
    """``TRAINER.SHIP``: feature extraction, the generator and synthesis. Each fine-tuner's own settings are in
    its node (``TRAINER.COOP``, ``TRAINER.TIPADAPTER``, ...: ``methods``)."""
    s = CN()
    # Feature extraction: K augmented passes over the few-shot images.
    s.AUG_PASSES = 10
    s.AUG_SCALE = (0.5, 1.0)  # RandomResizedCrop scale of the generator's features (a method: its CROP_SCALE); ImageNet: (0.08, 1.0)
    # Generator (VAE): encoder, local-bias MLP, M global prompts.
    s.GENERATOR = "prompt"  # prompt (SHIP); feature, global_only, local_only, cvae: the paper's ablations; untrained: a control
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
    # How a SHIP twin of a CoOp-family prompt learner (CoOp, KgCoOp, ProGrad, CoCoOp) trains its head: "ship", the SHIP
    # code's head (SGD without momentum or weight decay, per-iteration cosine, no warm-up; the method's epochs, batch,
    # lr, context and loss); "method", the method's own recipe (its node's keys, e.g. Dassl's momentum 0.9); "auto": each
    # method's choice (methods.coop.CoOp.twin_head_recipe): ship for CoOp, KgCoOp, ProGrad; method for CoCoOp (batch 1).
    s.HEAD_RECIPE = "auto"
    # feature_map.png after a SHIP run: real vs synthetic features of up to this many classes per panel (0: none).
    s.FEATURE_MAP = 10
    # SHIP + Tip-Adapter: synthetic cache keys per label-only class; 0: as many as the shots
    s.TIP_SYN_PER_CLASS = 0
    return s


def ship_trainer_ranges() -> dict[str, Spec]:
    """The allowed values of each ``TRAINER.SHIP`` key (``common.ranges``)."""
    return dict(
        AUG_PASSES=Int(1), AUG_SCALE=Interval(0, 1, low_open=True), GENERATOR=Choice(lambda: VARIANTS),
        N_CTX=Int(1, 64), ENCODER_HIDDEN=Int(1), MLP_HIDDEN=Int(1), LATENT_DIM=Int(0), LEAKY_RELU=Flag(),
        KL_WEIGHT=Num(0), GEN_EPOCHS=Int(1, hint="0 would synthesise from a random generator: for that control use "
                                                 "TRAINER.SHIP.GENERATOR untrained"),
        GEN_LR=Positive(), GEN_BATCH_SIZE=Int(1), SYNTHESIZE=Flag(), SYN_POOL_PER_CLASS=Int(0), FEATURE_MAP=Int(0),
        TIP_SYN_PER_CLASS=Int(0), HEAD_RECIPE=Choice(HEAD_RECIPES),
    )


def core_ranges() -> dict[str, Spec]:
    """The allowed values of every key outside the methods' nodes (run, model, dataset, loader, TRAINER.SHIP)."""
    return {
        "OUTPUT_DIR": Text(nonempty=True), "SEED": SEED, "DEVICE": Text(nonempty=True), "PRECISION": Choice(PRECISIONS),
        "ALLOW_SETUP_MISMATCH": Flag(), "CACHE_DIR": Text(nonempty=True),
        "MODEL.BACKBONE.NAME": Text(nonempty=True), "MODEL.BACKBONE.WEIGHTS": Text(), "MODEL.BACKBONE.DOWNLOAD_ROOT": Text(),
        "DATASET.NAME": Text(nonempty=True), "DATASET.ROOT": Text(), "DATASET.SPLIT_FILE": Text(),
        "DATASET.NUM_SHOTS": SHOTS, "DATASET.NUM_BASE": Int(0),
        "DATASET.SUBSAMPLE_CLASSES": SUBSAMPLE_CLASSES, "DATASET.LABEL_ONLY_FROM": Names(),
        "DATASET.TEMPLATES": Templates(),
        "DATALOADER.NUM_WORKERS": Int(0), "DATALOADER.BATCH_SIZE": Int(1),
        "TEST.SELECTION": Choice(("honest", "paper")), "TEST.SNAPSHOT_EVERY": Int(1),
        "TRAINER.NAME": Choice(trainer_names),
        **node_ranges("TRAINER.SHIP", ship_trainer_ranges()),
    }


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

    cfg.TEST = CN()
    # honest: every stage runs its full schedule once, nothing is chosen on test data. paper: the official code's
    # protocol, to check a setup against the published numbers: a SHIP run retrains its head on the generator of
    # epochs SNAPSHOT_EVERY, 2·SNAPSHOT_EVERY, ..., GEN_EPOCHS and keeps the best test H; Tip-Adapter-F keeps its
    # best test epoch. Such results say "selection: test (as the official code)".
    cfg.TEST.SELECTION = "honest"
    cfg.TEST.SNAPSHOT_EVERY = 10  # the official SHIP code retrains its head after every 10th generator epoch

    cfg.TRAINER = CN()
    cfg.TRAINER.NAME = "SHIP_CoOp"
    cfg.TRAINER.SHIP = ship_trainer_defaults()
    for node, defaults in method_nodes().items():
        cfg.TRAINER[node] = defaults
    return accept_ints_for_floats(cfg)  # KL_WEIGHT 10 in a file or an override is 10.0
