"""The config keys SHIP adds to a Dassl / CoOp config, and how a Dassl trainer picks a checkpoint (no dassl import).

A CoOp checkout's ``extend_cfg`` calls :func:`add_ship_cfg` (``trainers.ship.tools.install_into`` adds the call);
keys CoOp defines already (``DATASET.SUBSAMPLE_CLASSES``) keep CoOp's definition.
"""
from __future__ import annotations

import sys
from pathlib import Path

from yacs.config import CfgNode

from trainers.ship.common.errors import ShipError, one_line
from trainers.ship.common.run_log import usable_cpus
from trainers.ship.config import (MOVED, FloatTolerantCfgNode, accept_ints_for_floats, check_settings,
                                  get_cfg_defaults)
from trainers.ship.methods import METHODS

DASSL_NOTES: list[str] = []  # lines a SHIP trainer prints when it starts (not at import: CoOp's own runs stay quiet)


def trainer_from_argv(argv: list[str] | None = None) -> str | None:
    """The ``--trainer`` of a ``train.py`` command line (CoOp's extend_cfg runs before its arguments are applied)."""
    argv = sys.argv[1:] if argv is None else argv
    for i, arg in enumerate(argv):
        if arg == "--trainer" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--trainer="):
            return arg.split("=", 1)[1]
    return None


# Keys of the core's config the Dassl route does not read: Dassl has its own (USE_CUDA; DATALOADER.TEST.BATCH_SIZE
# for encoding), and only the core's ImageFolder reader reads the split file and the number of base classes.
CORE_ONLY = ("DEVICE", "DATALOADER.BATCH_SIZE", "DATASET.SPLIT_FILE", "DATASET.NUM_BASE")


def core_keys(core: CfgNode, prefix: str = ""):
    """(dotted key, default) of every leaf of the core's config (``get_cfg_defaults``) but :data:`CORE_ONLY`."""
    for key, value in core.items():
        if isinstance(value, CfgNode):
            yield from core_keys(value, f"{prefix}{key}.")
        elif f"{prefix}{key}" not in CORE_ONLY:
            yield f"{prefix}{key}", value


def add_ship_cfg(cfg: CfgNode, trainer: str | None = None) -> None:
    """Add every key of the core's config (``config.get_cfg_defaults``: ``TRAINER.SHIP``, every registered method's
    node, and the dataset, model and run keys the SHIP trainers read; not :data:`CORE_ONLY`) where absent, with the
    core's default: one default in one place. A method node CoOp defines already (``TRAINER.COOP``,
    ``TRAINER.COCOOP``) keeps CoOp's keys and defaults and gains the missing ones, so the SHIP configs set N_CTX and
    CTX_INIT explicitly.

    ``trainer`` (default: the command line's ``--trainer``) that is not a ``SHIP_`` trainer (CoOp's own run in a
    checkout) gets nothing added: its config and log stay CoOp's, but for one line."""
    trainer = trainer if trainer is not None else trainer_from_argv()
    if trainer and not trainer.upper().startswith("SHIP"):
        print(f"SHIP plug-in: installed; trainer {trainer} runs without it (SHIP's config keys are added for SHIP_ trainers)")
        return
    if trainer and not getattr(sys.excepthook, "ship_config", False):  # CoOp's train.py merges the configs next
        sys.excepthook = _config_errors_in_one_line(sys.excepthook)
    if trainer:
        check_trainer_name(trainer)  # before Dassl opens log.txt or reads any data
    added = dict(core_keys(get_cfg_defaults()))
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
        elif key.startswith("TRAINER.") and not key.startswith(("TRAINER.SHIP.", "TRAINER.NAME")) and node[leaf] != value:
            kept.append(f"{key} {node[leaf]!r} (SHIP's default: {value!r})")
    if kept:  # CoOp's own nodes: its defaults stay, and a SHIP config that omits these keys trains with them
        print(f"SHIP: the checkout's defaults stay for {', '.join(kept)}; the SHIP configs set these keys")
    for old, new in MOVED.items():  # a config written before the method nodes: yacs names the new key
        if not cfg.key_is_renamed(old):
            cfg.register_renamed_key(old, new, message="each fine-tuner's settings moved to its own node")
    if "NUM_WORKERS" in cfg.get("DATALOADER", {}):  # Dassl's 4, fewer on fewer cores (torch warns otherwise)
        cfg.DATALOADER.NUM_WORKERS = min(cfg.DATALOADER.NUM_WORKERS, usable_cpus())
    # train.py's later merges: TRAINER.SHIP.KL_WEIGHT 10 is 10.0, not a Type mismatch; its freeze checks the run
    accept_ints_for_floats(cfg, ShipDasslCfgNode)


def check_trainer_name(trainer: str) -> None:
    """One error line for a SHIP-like trainer name that is not registered (``SHIP_Coop``)."""
    if trainer.upper().startswith("SHIP") and trainer not in ship_trainer_names():
        raise ShipError(f"unknown trainer {trainer!r} (--trainer, TRAINER in CoOp's scripts); the SHIP trainers are "
                        f"{', '.join(ship_trainer_names())}")


def check_before_run(cfg: CfgNode) -> None:
    """What a SHIP run under ``train.py`` checks once its config is merged, before Dassl seeds, opens ``log.txt``
    or reads any data: the trainer's name, every SHIP setting and the seed (the one settings check), TEST.SELECTION, and
    that the DATA root exists (CoOp's readers create ``split_fewshot/`` under it before SHIP sees the data)."""
    check_trainer_name(cfg.TRAINER.get("NAME", ""))
    check_settings(cfg, dassl=True)  # the seed's range too: CoOp's -1 ("no seed") would still seed SHIP's stages
    check_selection(cfg)
    root = cfg.get("DATASET", {}).get("ROOT", "")
    if root and not Path(root).expanduser().is_dir():
        raise ShipError(f"DATA root not found: {root} (--root, DATASET.ROOT, DATA in CoOp's scripts: the folder that "
                        f"holds the dataset folders)")


class ShipDasslCfgNode(FloatTolerantCfgNode):
    """The config of a SHIP run under ``train.py``: its root's ``freeze()`` (the end of CoOp's ``setup_cfg``) runs
    :func:`check_before_run`."""

    def freeze(self) -> None:
        if "TRAINER" in self and "DATASET" in self and self.TRAINER.get("NAME", "").startswith("SHIP_"):
            check_before_run(self)
        super().freeze()


def _config_errors_in_one_line(previous):
    """An excepthook for a SHIP run under a ``train.py`` without a handler (CoOp's): a config that yacs refuses (an
    unknown key, a wrong type) is one ``error: bad config`` line and exit status 2; anything else goes to ``previous``."""
    def hook(kind, error, trace):
        if issubclass(kind, ShipError):  # a bad config file, trainer name, seed or DATA root: before log.txt opens
            print(one_line(error)[0].replace("\n", " "), file=sys.stderr)
            sys.exit(2)
        frames, step = [], trace
        while step is not None:
            frames.append(Path(step.tb_frame.f_code.co_filename))
            step = step.tb_next
        if issubclass(kind, (KeyError, ValueError, AssertionError)) and frames and frames[-1].parent.name == "yacs":
            print(f"error: bad config: {error}".replace("\n", " "), file=sys.stderr)
            sys.exit(2)
        previous(kind, error, trace)
    hook.ship_config = True
    return hook


def check_selection(cfg: CfgNode) -> None:
    """One error line for ``TEST.SELECTION paper`` under Dassl: its test-selected protocol is the core's alone."""
    if cfg.TEST.get("SELECTION", "honest") == "paper":
        raise ShipError(f"TEST.SELECTION paper is not run by {cfg.TRAINER.NAME} under train.py (it runs honest: every stage "
                        f"its full schedule, nothing chosen on test data); the official selection is the core's: "
                        f"python -m trainers.ship ... TEST.SELECTION paper, or scripts/ship/paper.sh")


def ship_trainer_names() -> list[str]:
    """The Dassl trainers SHIP registers: ``SHIP_<method>`` for every registered method that trains."""
    return [f"SHIP_{name}" for name, method in METHODS.items() if method.checkpoint]


IMAGENET_RECIPE = {"vit_b16.yaml": "vit_b16_imagenet.yaml"}  # SHIP's 10-dataset recipe -> its ImageNet recipe


def config_for_dataset(config_file: str, dataset: str) -> tuple[str, str]:
    """The config a SHIP run of ``dataset`` reads, and a line saying so when it is not ``config_file``: for ImageNet,
    SHIP's ImageNet recipe in place of its 10-dataset recipe (``configs/trainers/SHIP*/vit_b16.yaml``)."""
    path = Path(config_file)
    swap = IMAGENET_RECIPE.get(path.name)
    if dataset != "ImageNet" or not swap or not path.parent.name.startswith("SHIP") or not (path.parent / swap).is_file():
        return config_file, ""
    chosen = str(path.parent / swap)
    return chosen, f"config: {chosen} (SHIP's ImageNet recipe, in place of {config_file}, the recipe of the other datasets)"


def check_coop_keys(cfg: CfgNode, dassl_max_epoch: int) -> None:
    """One error line for a CoOp key a SHIP trainer would otherwise ignore: ``TRAINER.COOP.CSC True`` (class-specific
    contexts) and ``TRAINER.COOP.CLASS_TOKEN_POSITION`` middle/front (CoOp's ``scripts/coop/main.sh`` passes them;
    SHIP trains one unified context before the class name, as the SHIP code does), and ``OPTIM.MAX_EPOCH`` set to
    anything but Dassl's default ``dassl_max_epoch`` (SHIP's methods read their own ``TRAINER.<METHOD>.EPOCHS``)."""
    coop = cfg.TRAINER.get("COOP", CfgNode())
    trainer = cfg.TRAINER.NAME
    if coop.get("CSC", False):
        raise ShipError(f"TRAINER.COOP.CSC True (class-specific contexts) is not supported by {trainer}: it trains one "
                        f"context shared by all classes (CSC False), as the SHIP code does; drop the key or set it False")
    if coop.get("CLASS_TOKEN_POSITION", "end") != "end":
        raise ShipError(f"TRAINER.COOP.CLASS_TOKEN_POSITION {coop.CLASS_TOKEN_POSITION!r} is not supported by {trainer}: "
                        f"the class name follows the context (end), as the SHIP code does; set it to end")
    method = METHODS.get(trainer.removeprefix("SHIP_")) if trainer.startswith("SHIP_") else None
    node = method.config if method else ""
    epochs = cfg.TRAINER[node].get("EPOCHS") if node and node in cfg.TRAINER else None
    if epochs is not None and cfg.OPTIM.MAX_EPOCH not in (dassl_max_epoch, epochs):
        raise ShipError(f"OPTIM.MAX_EPOCH {cfg.OPTIM.MAX_EPOCH} is not read by {trainer}: it trains for "
                        f"TRAINER.{node}.EPOCHS ({epochs}); set TRAINER.{node}.EPOCHS {cfg.OPTIM.MAX_EPOCH} instead")
