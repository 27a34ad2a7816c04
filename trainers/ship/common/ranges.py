"""The settings vocabulary: the allowed values of a config key (``Num``, ``Int``, ``Choice``, ``Flag``, ...).

Each config node declares the allowed values of its keys beside its defaults (``config.defaults.core_ranges`` for
``TRAINER.SHIP``, ``DATASET``, ``DATALOADER`` and the run keys; a method's ``ranges()`` for its node);
:func:`violations` names every value of a config outside its range (``config.build.check_settings`` makes them
one ``error:`` line).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from yacs.config import CfgNode

from trainers.ship.common.errors import ShipError


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Num:
    """A number in [low, high] (an open bound with ``low_open``); integers only with ``integer``; never NaN/inf;
    with ``unset`` (what None means), also None. ``hint`` is added to the error (what to use instead)."""

    low: float | None = None
    high: float | None = None
    integer: bool = False
    low_open: bool = False
    hint: str = ""
    unset: str = ""

    def expected(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.low is not None and self.high is not None and not self.low_open:
            bounds = f" in [{self.low}, {self.high}]"
        else:
            parts = ([f"{'>' if self.low_open else '>='} {self.low}"] if self.low is not None else []) + \
                    ([f"<= {self.high}"] if self.high is not None else [])
            bounds = " " + " and ".join(parts) if parts else ""
        unset = f", or None ({self.unset})" if self.unset else ""
        return kind + bounds + unset + (f"; {self.hint}" if self.hint else "")

    def ok(self, value: Any) -> bool:
        if value is None and self.unset:
            return True
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


def lookup(cfg: CfgNode, key: str) -> tuple[bool, Any]:
    """(True, the value) of a dotted key of ``cfg``; (False, None) where ``cfg`` lacks it."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def not_allowed(key: str, value: Any, spec: Spec) -> str:
    """How a value outside its range is named: the key, the value and what ``spec`` expects."""
    return f"{key} {value!r} is not allowed; expected {spec.expected()}"


def violations(cfg: CfgNode, ranges: Ranges) -> list[str]:
    """One line per declared key of ``cfg`` whose value is outside its range (keys ``cfg`` lacks are skipped)."""
    lines = []
    for key, spec in ranges.items():
        present, value = lookup(cfg, key)
        if present and not spec.ok(value):
            lines.append(not_allowed(key, value, spec))
    return lines


def require(key: str, value: Any, spec: Spec) -> None:
    """One :class:`ShipError` line, as the settings check words it, when ``value`` of ``key`` is outside ``spec``:
    for a library call that no settings check precedes (a dataset reader called directly)."""
    if not spec.ok(value):
        raise ShipError(not_allowed(key, value, spec))


SEED_MAX = 2**32 - 1  # numpy's seeds: 0 ... 2**32 - 1
# The run's seed, shots and class subset: declared once, checked by the one settings check (config.check_settings) on
# both routes, and by the dataset readers through :func:`require` when they are called directly.
SEED = Int(0, SEED_MAX, hint="pass --seed (CoOp's train.py passes -1 when --seed is omitted, as a seed of its own)")
SHOTS = Int(1, hint="the number of training images per class")
SUBSAMPLE_CLASSES = Choice(("all", "base", "new", "gzsl"))


def node_ranges(node: str, ranges: Mapping[str, Spec]) -> dict[str, Spec]:
    """``ranges`` of a node's keys as full keys (``TRAINER.COOP`` + ``N_CTX``)."""
    return {f"{node}.{key}": spec for key, spec in ranges.items()}
