"""Progress of every long loop (feature extraction, the generator, the prompt learners, Tip-Adapter-F).

On a terminal, a tqdm bar on stderr; the ``ship`` logger's console lines are written above it, never on
the bar's line. When stdout is not a terminal (nohup, sbatch, a pipe), a log line every
``SHIP_PROGRESS_SECONDS`` seconds (default 30), counted in steps or images, so long epochs are never silent::

    prompt learner: 1200/8000 steps (15%), epoch 2/10, 1m 05s elapsed, about 6m 08s left
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from typing import Callable, Iterable, Iterator, TypeVar

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from trainers.ship.common.errors import ShipError, stop_if_interrupted

logger = logging.getLogger("ship")
T = TypeVar("T")

INTERVAL_ENV = "SHIP_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 30.0
_clock = time.monotonic  # replaced in tests


def progress_interval() -> float:
    """Seconds between two progress lines: ``$SHIP_PROGRESS_SECONDS``, default 30."""
    value = os.environ.get(INTERVAL_ENV, "").strip()
    if not value:
        return DEFAULT_INTERVAL
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ShipError(f"{INTERVAL_ENV}={value!r}: expected a positive number of seconds between progress lines")
    return seconds


def is_terminal(stream) -> bool:
    """Whether ``stream`` is an open terminal (Dassl's stdout tee, a closed or absent stream: no)."""
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


def duration(seconds: float) -> str:
    """``2h 05m``, ``3m 07s`` or ``12s``."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


class Progress:
    """``total`` units (``unit``: steps, images) of the loop ``desc``.

    A tqdm bar when stderr is a terminal; a log line every ``interval`` seconds (default:
    :func:`progress_interval`) when stdout is not. The outer loop runs over :meth:`epochs` or :meth:`over`
    (which close the bar when it ends or fails), the inner one over :meth:`track`::

        progress = Progress("generator", epochs * steps_per_epoch)
        for epoch in progress.epochs(epochs):
            for x, y in progress.track(batches()):
                ...
    """

    def __init__(self, desc: str, total: int, unit: str = "step", interval: float | None = None):
        self.desc, self.total, self.unit, self.done, self.note = desc, total, unit, 0, ""
        self.interval = progress_interval() if interval is None else interval
        self._start = self._last = _clock()
        self._lines = not is_terminal(sys.stdout)
        self._redirect = contextlib.ExitStack()
        self._bar = None
        if is_terminal(sys.stderr):
            if any(type(h) is logging.StreamHandler and h.stream in (sys.stdout, sys.stderr) for h in logger.handlers):
                self._redirect.enter_context(logging_redirect_tqdm([logger]))  # log lines above the bar
            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr, dynamic_ncols=True)

    def over(self, iterable: Iterable[T], note: Callable[[T], str] | None = None) -> Iterator[T]:
        """The items of the outer loop, each shown as ``note(item)``; the bar closes when the loop ends."""
        try:
            for item in iterable:
                if note is not None:
                    self.set_note(note(item))
                yield item
        finally:
            self.close()

    def epochs(self, epochs: int) -> Iterator[int]:
        """1, ..., ``epochs``, shown as ``epoch e/epochs``."""
        return self.over(range(1, epochs + 1), lambda epoch: f"epoch {epoch}/{epochs}")

    def track(self, iterable: Iterable[T], size: Callable[[T], int] | None = None, close: bool = False) -> Iterator[T]:
        """The items of the inner loop, counting ``size(item)`` units (default 1) after each; ``close``: close the
        bar when the loop ends (a loop that is its own outer loop)."""
        try:
            for item in iterable:
                yield item
                self.update(1 if size is None else size(item))
        finally:
            if close:
                self.close()

    def set_note(self, note: str) -> None:
        """A short state shown beside the count (``epoch 2/10``, ``pass 3/10``)."""
        self.note = note
        if self._bar is not None:
            self._bar.set_postfix_str(note, refresh=False)

    def update(self, n: int = 1) -> None:
        stop_if_interrupted()
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self._lines:
            now = _clock()
            if now - self._last >= self.interval:
                self._last = now
                logger.info(self.status(now))

    def status(self, now: float | None = None) -> str:
        """``desc: done/total unit (pct), note, elapsed, about ... left``."""
        elapsed = (_clock() if now is None else now) - self._start
        parts = [f"{self.desc}: {self.done}/{self.total} {self.unit}s ({100 * self.done / max(self.total, 1):.0f}%)"]
        if self.note:
            parts.append(self.note)
        parts.append(f"{duration(elapsed)} elapsed")
        if 0 < self.done < self.total:
            parts.append(f"about {duration(elapsed / self.done * (self.total - self.done))} left")
        return ", ".join(parts)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._redirect.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
