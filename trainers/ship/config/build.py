"""The config of a run: defaults, then files, flags and ``KEY VALUE`` overrides, then the one settings check.

:func:`check_settings` checks every declared key of a config (the core's and every registered method's ranges)
at once and raises one :class:`ShipError` naming every bad value (one ``error:`` line).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from yacs.config import CfgNode as CN

from trainers.ship.common.errors import ShipError
from trainers.ship.common.ranges import Spec, node_ranges, violations
from trainers.ship.config.defaults import core_ranges, get_cfg_defaults
from trainers.ship.config.files import read_config_file
from trainers.ship.methods import METHODS


def declared_ranges() -> dict[str, Spec]:
    """Every declared range: the core nodes' and every registered method's."""
    ranges = core_ranges()
    for method in METHODS.values():
        if method.config:
            ranges.update(node_ranges(f"TRAINER.{method.config}", method.ranges()))
    return ranges


# Keys outside TRAINER a Dassl / CoOp config gets from SHIP (dassl.config.add_ship_cfg); Dassl's own keep their meaning.
# The seed too: SHIP seeds its stages from it (CoOp's -1, "no seed", is refused). DATASET.NUM_SHOTS keeps Dassl's meaning
# (-1: every image, for an evaluation).
DASSL_PREFIXES = ("DATASET.SUBSAMPLE_CLASSES", "DATASET.LABEL_ONLY_FROM", "DATASET.TEMPLATES", "PRECISION", "TEST.SELECTION",
                  "TEST.SNAPSHOT_EVERY", "SEED")


def check_settings(cfg: CN, dassl: bool = False) -> None:
    """Raise one :class:`ShipError` (one line naming every bad value) if any declared setting of ``cfg`` is out
    of range. ``dassl``: a Dassl/CoOp config, of which only SHIP's keys and the method nodes are checked."""
    ranges = declared_ranges()
    if dassl:
        ranges = {k: v for k, v in ranges.items() if k != "TRAINER.NAME" and k.startswith(("TRAINER.",) + DASSL_PREFIXES)}
    lines = violations(cfg, ranges)
    if lines:
        raise ShipError("; ".join(lines))


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
    ``KEY VALUE`` pairs (as CoOp's ``train.py``). Unknown keys are one-line errors; an integer may be given for a
    float key; every setting is checked against its declared range (:func:`check_settings`)."""
    cfg = get_cfg_defaults()
    for path in config_files:
        check_moved(_flat_keys(read_config_file(path)), f"config file {path}")
        try:
            cfg.merge_from_file(path)
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
    check_settings(cfg)
    cfg.freeze()
    return cfg
