"""Device, precision, seeding, logging and atomic file writes."""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np
import torch

from trainers.ship.common.errors import ShipError
from trainers.ship.common.run_log import TIMESTAMPED


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


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_precision(name: str, device: torch.device) -> str:
    """The compute precision of a run: ``fp32``, ``bf16`` or ``fp16``.

    ``auto`` is bf16 on a GPU that computes it natively (compute capability 8.0 and newer: A100, H100, ...)
    and fp32 elsewhere (the CPU, V100, T4, where bf16 is only emulated). fp16 must be asked for; its
    training steps then scale the loss (:class:`OptimizerStep`).
    """
    if name not in PRECISIONS:
        raise ShipError(f"unknown PRECISION {name!r}; expected one of {', '.join(PRECISIONS)}")
    if device.type != "cuda":
        if name in ("bf16", "fp16"):
            raise ShipError(f"PRECISION {name} needs a CUDA device, but the run is on {device.type}; use fp32 or auto")
        return "fp32"
    major, minor = torch.cuda.get_device_capability(device)
    native_bf16 = major >= 8
    if name == "bf16" and not native_bf16:
        raise ShipError(f"PRECISION bf16 is only emulated on {torch.cuda.get_device_name(device)} (compute capability "
                        f"{major}.{minor} < 8.0); use fp16 (with loss scaling) or fp32")
    if name == "auto":
        return "bf16" if native_bf16 else "fp32"
    return name


def autocast(precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA for ``bf16`` / ``fp16``; nothing for ``fp32``.

    CLIP weights stay fp32; autocast runs the matmuls in half precision.
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


class OptimizerStep:
    """zero_grad, backward and step of one optimiser; under fp16 the loss is scaled (``torch.amp.GradScaler``)
    so that small gradients do not underflow, and steps with inf/NaN gradients are skipped."""

    def __init__(self, optimizer: torch.optim.Optimizer, precision: str = "fp32", device_type: str = "cuda"):
        self.optimizer = optimizer
        self.scaler = torch.amp.GradScaler(device_type) if precision == "fp16" else None

    def __call__(self, loss: torch.Tensor, guide: torch.Tensor | None = None, guide_weight: float = 1.0) -> None:
        """One step on ``loss``; with ``guide`` (ProGrad), the loss's gradient loses ``guide_weight`` (ProGrad's λ)
        times its component that conflicts with the guide's gradient (:func:`project_conflicting`) before the step."""
        self.optimizer.zero_grad(set_to_none=True)
        params = [p for group in self.optimizer.param_groups for p in group["params"] if p.requires_grad]
        guide_grads = torch.autograd.grad(guide, params, retain_graph=True, allow_unused=True) if guide is not None else None
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()
        if guide_grads is not None:  # linear in the loss's gradient, so the loss scale carries through
            project_conflicting(params, guide_grads, guide_weight)
        if self.scaler is None:
            self.optimizer.step()
            return
        self.scaler.step(self.optimizer)
        self.scaler.update()


def project_conflicting(params: list[torch.Tensor], guide_grads, weight: float = 1.0) -> None:
    """ProGrad's gradient surgery, in place on ``params``' gradients g: where g · g_guide < 0 (taken over all
    parameters at once; ProGrad's code takes each parameter tensor apart, the same for a single context tensor),
    g becomes g − λ (g · g_guide / ‖g_guide‖²) g_guide with λ = ``weight`` (λ = 1: its projection orthogonal to
    the guide; ProGrad's ``LOSS.LAMBDA``); otherwise g is kept."""
    pairs = [(p.grad, g) for p, g in zip(params, guide_grads) if p.grad is not None and g is not None]
    dot = sum((g * h).sum() for g, h in pairs)
    norm = sum((h * h).sum() for _, h in pairs)
    if pairs and dot < 0 and norm > 0:
        for g, h in pairs:
            g.sub_(weight * dot / norm * h)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (the same calls Dassl's ``set_random_seed`` makes)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def stage_seed(seed: int, stage: str) -> int:
    """The seed a stage starts from: a function of the run's seed and the stage's name only, so a stage
    draws the same numbers whether the stages before it were trained, loaded or skipped."""
    return int(hashlib.sha256(f"{seed}:{stage}".encode()).hexdigest()[:8], 16)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write to a temporary file beside ``path``, then rename: a killed process never leaves a half-written
    file under the final name. The file gets the mode ``open`` would give it (0644 under umask 022; mkstemp's
    own is 0600). A failed write (disk full, no permission) is one :class:`ShipError` naming ``path``."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        failed = _os_error_in(exc)
        if failed is not None:
            raise ShipError(f"cannot write {path}: {failed.strerror or failed}") from None
        raise


def _os_error_in(exc: BaseException | None) -> OSError | None:
    """The ``OSError`` of a failed write, also where a library re-raised it as another exception (``torch.save``'s
    zip writer turns a full disk into a ``RuntimeError``)."""
    while exc is not None and not isinstance(exc, OSError):
        exc = exc.__cause__ or exc.__context__
    return exc


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save``, atomically."""
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_json(obj: Any, path: str | os.PathLike) -> None:
    """Indented JSON, atomically."""
    _atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


class _StopOnWriteError:
    """A log line that cannot be written (a full disk) stops the run with one :class:`ShipError` line, instead of
    the traceback ``logging`` prints and goes on after."""

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            raise ShipError(f"cannot write {getattr(self, 'baseFilename', 'the standard output')}: "
                            f"{exc.strerror or exc}") from None
        super().handleError(record)


class _StreamHandler(_StopOnWriteError, logging.StreamHandler):
    pass


class _FileHandler(_StopOnWriteError, logging.FileHandler):
    pass


def setup_logger(output_dir: str | os.PathLike | None, stream=None) -> logging.Logger:
    """The ``ship`` logger: plain lines to ``stream`` (default stdout) and, each with its time, appended to
    ``<output_dir>/log.txt`` (Dassl's log; none without ``output_dir``)."""
    logger = logging.getLogger("ship")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    handlers = [_StreamHandler(sys.stdout if stream is None else stream)]
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        handlers.append(_FileHandler(Path(output_dir) / "log.txt"))
    for handler in handlers:
        handler.setFormatter(TIMESTAMPED if isinstance(handler, logging.FileHandler) else logging.Formatter("%(message)s"))
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
