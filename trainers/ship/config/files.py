"""Reading config files and ``KEY VALUE`` overrides into yacs nodes.

A YAML syntax error, or a top level that is not a mapping, is one error line naming the file and the line (yacs
would raise yaml's multi-line error or an AttributeError). :class:`FloatTolerantCfgNode` lets an integer override a
float key (``TRAINER.SHIP.KL_WEIGHT 10``), which yacs refuses by default.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml
from yacs.config import CfgNode

from trainers.ship.common.errors import ShipError
from trainers.ship.common.ranges import lookup


def read_config_file(path: str | Path) -> dict:
    """The mapping a config file holds ({} for an empty file). ShipError for a missing file, a YAML syntax error
    (its line) or a top level that is not ``KEY: value`` pairs."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ShipError(f"config file not found: {path}") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise ShipError(f"unreadable config file {path}: {type(exc).__name__}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ShipError(f"bad config file {path}{where}: YAML syntax error ({problem}); expected KEY: value lines "
                        f"as in configs/trainers/SHIP/vit_b16.yaml") from None
    if tree is not None and not isinstance(tree, dict):
        line = node.start_mark.line + 1 if node is not None else 1
        raise ShipError(f"bad config file {path}, line {line}: its top level is a {type(tree).__name__}, expected a "
                        f"mapping of KEY: value (e.g. TRAINER: / SHIP: / GEN_EPOCHS: 50)")
    return tree or {}


# --------------------------------------------------------------------------- integers for float keys
def _target(cfg: CfgNode, key: str) -> Any:
    return lookup(cfg, key)[1]


def _as_float(value: Any, target: Any) -> Any:
    """``value`` as a float where ``target`` (the key's current value) is a float: 10 -> 10.0, 'nan' -> nan (which
    the range check then names)."""
    if not isinstance(target, float) or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in ("nan", "inf", "-inf", "+inf"):
        return float(value)
    return value


def float_overrides(cfg: CfgNode, opts: Sequence[Any]) -> list[Any]:
    """``KEY VALUE`` pairs (as ``merge_from_list`` takes them) with integers given for float keys as floats."""
    out = list(opts)
    for i in range(0, len(out) - 1, 2):
        value = CfgNode._decode_cfg_value(out[i + 1]) if isinstance(out[i + 1], str) else out[i + 1]
        coerced = _as_float(value, _target(cfg, str(out[i])))
        if coerced is not value:
            out[i + 1] = coerced
    return out


def _plain_floats(tree: Mapping, cfg: Any) -> dict:
    """``tree`` as plain nested dicts, with integers given for float keys of ``cfg`` as floats."""
    out = {}
    for key, value in tree.items():
        target = cfg.get(key) if isinstance(cfg, dict) else None
        out[key] = _plain_floats(value, target) if isinstance(value, dict) else _as_float(value, target)
    return out


class FloatTolerantCfgNode(CfgNode):
    """A yacs root node whose merges (files, other nodes, ``KEY VALUE`` lists) accept an integer for a float key;
    a file that is no YAML mapping is one error line naming the file and the line (:func:`read_config_file`)."""

    def merge_from_file(self, cfg_filename: str) -> None:
        read_config_file(cfg_filename)
        super().merge_from_file(cfg_filename)

    def merge_from_other_cfg(self, cfg_other: CfgNode) -> None:
        super().merge_from_other_cfg(type(self)(_plain_floats(cfg_other, self)))

    def merge_from_list(self, cfg_list: list) -> None:
        super().merge_from_list(float_overrides(self, cfg_list))


def accept_ints_for_floats(cfg: CfgNode, node_class: type[FloatTolerantCfgNode] = FloatTolerantCfgNode) -> CfgNode:
    """Make an existing config (Dassl's ``cfg``) accept integers for float keys in its later merges: every node
    becomes a ``node_class`` (yacs builds merged nodes of the root's class and compares node types)."""
    object.__setattr__(cfg, "__class__", node_class)  # CfgNode.__setattr__ takes only values
    for value in cfg.values():
        if isinstance(value, CfgNode):
            accept_ints_for_floats(value, node_class)
    return cfg
