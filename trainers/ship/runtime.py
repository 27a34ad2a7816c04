"""Device, precision, seeding, logging and atomic file writes."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, IO

import numpy as np
import torch

from .errors import ShipError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ShipError(f"device {name!r} was asked for but CUDA is not available; use 'cpu' or 'auto'")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ShipError(f"unknown device {name!r}; expected 'auto', 'cpu' or 'cuda[:N]'") from None


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA (bf16 where supported, else fp16); fp32 on the CPU.

    CLIP weights stay fp32; autocast runs the matmuls in half precision.
    """
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (the same calls Dassl's ``set_random_seed`` makes)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def _atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write to a temporary file beside ``path``, then rename: a killed process
    never leaves a half-written file under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save``, atomically."""
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_json(obj: Any, path: str | os.PathLike) -> None:
    """Indented JSON, atomically."""
    _atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


def setup_logger(output_dir: str | os.PathLike) -> logging.Logger:
    """The ``ship`` logger: plain lines to stdout and appended to ``<output_dir>/log.txt`` (Dassl's log)."""
    logger = logging.getLogger("ship")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    for handler in (logging.StreamHandler(sys.stdout), logging.FileHandler(Path(output_dir) / "log.txt")):
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    return logger


class StageMeter:
    """Seconds and peak memory (MiB) of consecutive stages: GPU memory on CUDA (reset per stage),
    otherwise the process's maximum resident size so far."""

    def __init__(self, device: torch.device):
        self._clock, self.device = time.perf_counter, device
        self._last = self._start = self._clock()
        self.seconds: dict[str, float] = {}
        self.peak_mib: dict[str, float] = {}
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def done(self, stage: str) -> None:
        now = self._clock()
        self.seconds[stage], self._last = round(now - self._last, 3), now
        if self.device.type == "cuda":
            self.peak_mib[stage] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            import resource  # Unix only

            self.peak_mib[stage] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    def summary(self) -> dict:
        return {"seconds": {**self.seconds, "total": round(self._clock() - self._start, 3)},
                "peak_memory_mib": {"kind": "gpu" if self.device.type == "cuda" else "process_max_rss", **self.peak_mib}}
