"""The config keys SHIP adds to a Dassl / CoOp config, and how a Dassl trainer picks a checkpoint (no dassl import).

A CoOp checkout's ``extend_cfg`` calls :func:`add_ship_cfg` (``trainers.ship.install_into`` adds the call);
keys CoOp defines already (``DATASET.SUBSAMPLE_CLASSES``) keep CoOp's definition.
"""
from __future__ import annotations

import re
from pathlib import Path

from yacs.config import CfgNode

from .config import MOVED, ship_trainer_defaults
from .errors import ShipError
from .methods import method_nodes

BEST = "model-best.pth.tar"


def add_ship_cfg(cfg: CfgNode) -> None:
    """Add ``TRAINER.SHIP``, every registered method's node and the few dataset, model and run keys the SHIP
    trainers read, where absent. A method node CoOp defines already (``TRAINER.COOP``, ``TRAINER.COCOOP``) keeps
    CoOp's keys and defaults and gains the missing ones, so the SHIP configs set N_CTX and CTX_INIT explicitly."""
    added = {
        "TRAINER.SHIP": ship_trainer_defaults(),
        **{f"TRAINER.{node}.{key}": value for node, defaults in method_nodes().items() for key, value in defaults.items()},
        "DATASET.SUBSAMPLE_CLASSES": "all",  # all, base, new (CoCoOp) or gzsl (one joint label space)
        "DATASET.LABEL_ONLY_FROM": [],  # cross-dataset: the target datasets (or .txt files) whose names SHIP synthesises
        "DATASET.TEMPLATES": [],  # zero-shot prompts; empty: the dataset's own
        "MODEL.BACKBONE.WEIGHTS": "",  # a local CLIP checkpoint; overrides MODEL.BACKBONE.NAME
        "MODEL.BACKBONE.DOWNLOAD_ROOT": "~/.cache/clip",
        "CACHE_DIR": "~/.cache/ship",  # cached image features
        "PRECISION": "auto",  # auto (bf16 where native, else fp32), fp32, bf16, fp16
        "ALLOW_SETUP_MISMATCH": False,  # --eval-only of a run trained under another setup
    }
    kept = []
    for key, value in added.items():
        *parents, leaf = key.split(".")
        node = cfg
        for part in parents:
            if part not in node:
                node[part] = CfgNode()
            node = node[part]
        if leaf not in node:
            node[leaf] = value
        elif key.startswith("TRAINER.") and key != "TRAINER.SHIP" and node[leaf] != value:
            kept.append(f"{key} {node[leaf]!r} (SHIP's default: {value!r})")
    if kept:  # CoOp's own nodes: its defaults stay, and a SHIP config that omits these keys trains with them
        print(f"SHIP: the checkout's defaults stay for {', '.join(kept)}; the SHIP configs set these keys")
    for old, new in MOVED.items():  # a config written before the method nodes: yacs names the new key
        if not cfg.key_is_renamed(old):
            cfg.register_renamed_key(old, new, message="each fine-tuner's settings moved to its own node")


def checkpoint_file(folder: str | Path, epoch: int | None, prefer_best: bool = True) -> Path:
    """The checkpoint a Dassl trainer deploys from ``folder``: ``model.pth.tar-<epoch>``; with no epoch, Dassl's
    ``model-best.pth.tar`` (written under ``TEST.FINAL_MODEL best_val``) when present and ``prefer_best``, else
    the last epoch's (what ``--resume`` continues from)."""
    folder = Path(folder)
    if epoch is not None:
        path = folder / f"model.pth.tar-{epoch}"
    elif prefer_best and (folder / BEST).is_file():
        path = folder / BEST
    else:
        found = sorted(folder.glob("model.pth.tar-*"), key=lambda p: int(re.sub(r"\D", "", p.name.split("-")[-1]) or 0))
        if not found:
            raise ShipError(f"no checkpoint in {folder} (expected model.pth.tar-<epoch> or {BEST})")
        path = found[-1]
    if not path.is_file():
        raise ShipError(f"checkpoint not found: {path}")
    return path
