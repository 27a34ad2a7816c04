"""Declared ranges of settings, and the one check of a config against them.

Each config node declares the allowed values of its keys beside its defaults (``config.core_ranges`` for
``TRAINER.SHIP``, ``DATASET``, ``DATALOADER`` and the run keys; a method's ``ranges()`` for its node);
:func:`check_settings` checks every declared key of a config at once and raises one :class:`ShipError`
naming every bad value (one ``error:`` line). :class:`FloatTolerantCfgNode` lets an integer override a float key
(``TRAINER.SHIP.KL_WEIGHT 10``), which yacs refuses by default.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from yacs.config import CfgNode

from .config_file import read_config_file
from .errors import ShipError


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Num:
    """A number in [low, high] (an open bound with ``low_open``); integers only with ``integer``; never NaN/inf.
    ``hint`` is added to the error (what to use instead)."""

    low: float | None = None
    high: float | None = None
    integer: bool = False
    low_open: bool = False
    hint: str = ""

    def expected(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.low is not None and self.high is not None and not self.low_open:
            bounds = f" in [{self.low}, {self.high}]"
        else:
            parts = ([f"{'>' if self.low_open else '>='} {self.low}"] if self.low is not None else []) + \
                    ([f"<= {self.high}"] if self.high is not None else [])
            bounds = " " + " and ".join(parts) if parts else ""
        return kind + bounds + (f"; {self.hint}" if self.hint else "")

    def ok(self, value: Any) -> bool:
        if not _number(value) or (self.integer and not isinstance(value, int)) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high


def Int(low: int | None = None, high: int | None = None, hint: str = "") -> Num:
    """An integer in [low, high]."""
    return Num(low, high, integer=True, hint=hint)


def Positive() -> Num:
    """A finite number > 0 (learning rates, temperatures)."""
    return Num(0, low_open=True)


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of strings, or of a set known only at run time (``options`` a callable)."""

    options: Sequence[str] | Callable[[], Sequence[str]]

    def _options(self) -> Sequence[str]:
        return self.options() if callable(self.options) else self.options

    def expected(self) -> str:
        return "one of " + ", ".join(self._options())

    def ok(self, value: Any) -> bool:
        return value in self._options()


@dataclass(frozen=True)
class Text:
    """Any string (a path, a prompt's words); ``nonempty`` refuses ''."""

    nonempty: bool = False

    def expected(self) -> str:
        return "a non-empty string" if self.nonempty else "a string"

    def ok(self, value: Any) -> bool:
        return isinstance(value, str) and (bool(value) or not self.nonempty)


@dataclass(frozen=True)
class Flag:
    """True or False."""

    def expected(self) -> str:
        return "True or False"

    def ok(self, value: Any) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True)
class Interval:
    """A pair (a, b) of numbers with low <= a <= b <= high (``low_open``: low < a): a crop scale."""

    low: float
    high: float
    low_open: bool = False

    def expected(self) -> str:
        first = f"{self.low} {'<' if self.low_open else '<='} a"
        return f"a pair (a, b) with {first} <= b <= {self.high}"

    def ok(self, value: Any) -> bool:
        if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(_number(v) and math.isfinite(v) for v in value):
            return False
        a, b = value
        return (a > self.low if self.low_open else a >= self.low) and a <= b <= self.high


@dataclass(frozen=True)
class Pair:
    """Empty (a default chosen elsewhere) or two numbers, each in ``item``'s range."""

    item: Num

    def expected(self) -> str:
        return f"() or a pair of {self.item.expected().replace('a finite number', 'numbers').replace('an integer', 'integers')}"

    def ok(self, value: Any) -> bool:
        return isinstance(value, (tuple, list)) and (len(value) == 0 or (len(value) == 2 and all(map(self.item.ok, value))))


@dataclass(frozen=True)
class Names:
    """A list of non-empty strings without repeats (dataset names, files)."""

    def expected(self) -> str:
        return "a list of distinct non-empty strings"

    def ok(self, value: Any) -> bool:
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) and v.strip() for v in value) \
            and len(set(value)) == len(value)


@dataclass(frozen=True)
class Templates:
    """A list of prompt templates, each with exactly one ``{}`` for the class name and other words (may be empty:
    the dataset's own)."""

    def expected(self) -> str:
        return "a list of templates, each with one {} for the class name and words around it, e.g. 'a photo of a {}.'"

    def ok(self, value: Any) -> bool:
        if not isinstance(value, (list, tuple)):
            return False
        for template in value:
            if not isinstance(template, str) or template.count("{}") != 1 or not template.replace("{}", "").strip():
                return False
            try:
                template.format("x")
            except (IndexError, KeyError, ValueError):
                return False
        return True


Spec = Num | Choice | Text | Flag | Interval | Pair | Names | Templates
Ranges = Mapping[str, Spec]  # full key (TRAINER.SHIP.KL_WEIGHT) -> its allowed values


def _lookup(cfg: CfgNode, key: str) -> tuple[bool, Any]:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def violations(cfg: CfgNode, ranges: Ranges) -> list[str]:
    """One line per declared key of ``cfg`` whose value is outside its range (keys ``cfg`` lacks are skipped)."""
    lines = []
    for key, spec in ranges.items():
        present, value = _lookup(cfg, key)
        if present and not spec.ok(value):
            lines.append(f"{key} {value!r} is not allowed; expected {spec.expected()}")
    return lines


def node_ranges(node: str, ranges: Mapping[str, Spec]) -> dict[str, Spec]:
    """``ranges`` of a node's keys as full keys (``TRAINER.COOP`` + ``N_CTX``)."""
    return {f"{node}.{key}": spec for key, spec in ranges.items()}


def declared_ranges() -> dict[str, Spec]:
    """Every declared range: the core nodes' and every registered method's."""
    from .config import core_ranges
    from .methods import METHODS

    ranges = core_ranges()
    for method in METHODS.values():
        if method.config:
            ranges.update(node_ranges(f"TRAINER.{method.config}", method.ranges()))
    return ranges


# Keys outside TRAINER a Dassl / CoOp config gets from SHIP (dassl_config.add_ship_cfg); Dassl's own keep their meaning.
DASSL_PREFIXES = ("DATASET.SUBSAMPLE_CLASSES", "DATASET.LABEL_ONLY_FROM", "DATASET.TEMPLATES", "PRECISION", "TEST.SELECTION",
                  "TEST.SNAPSHOT_EVERY")


def check_settings(cfg: CfgNode, dassl: bool = False) -> None:
    """Raise one :class:`ShipError` (one line naming every bad value) if any declared setting of ``cfg`` is out
    of range. ``dassl``: a Dassl/CoOp config, of which only SHIP's keys and the method nodes are checked."""
    ranges = declared_ranges()
    if dassl:
        ranges = {k: v for k, v in ranges.items() if k != "TRAINER.NAME" and k.startswith(("TRAINER.",) + DASSL_PREFIXES)}
    lines = violations(cfg, ranges)
    if lines:
        raise ShipError("; ".join(lines))


# --------------------------------------------------------------------------- integers for float keys
def _target(cfg: CfgNode, key: str) -> Any:
    return _lookup(cfg, key)[1]


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
    a file that is no YAML mapping is one error line naming the file and the line (``config_file``)."""

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
