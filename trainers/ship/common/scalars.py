"""What every training loop reports per epoch, from one record: the log line and, when the run writes
TensorBoard (``OUTPUT_DIR/tensorboard``, as Dassl's trainers do), the same values as scalars.

The run opens (or, under Dassl, hands over) one ``SummaryWriter`` and makes it current with
:func:`writing_to`; the loops (``training.loops``, ``training.tip_cache``) call :func:`report_epoch` with an
:class:`EpochTally` of their batches, and check their final head with :func:`warn_if_collapsed`. Scalar names follow
Dassl's ``train/loss`` style, prefixed by the stage: ``generator/rec``, ``KgCoOp/acc``, ``test/H``; the step of a
per-epoch scalar is the epoch (from 1).
"""
from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import Any, Iterator

import torch

logger = logging.getLogger("ship")

TENSORBOARD_DIR = "tensorboard"  # under OUTPUT_DIR, Dassl's folder
# A collapsed head: with at least COLLAPSE_MIN_CLASSES classes, its few most predicted classes (a quarter of them, at
# least 2) receive at least COLLAPSE_SHARE of its predictions on its training features (real and synthetic) in its last
# epoch. A head that predicts every class equally often gives them a quarter.
COLLAPSE_MIN_CLASSES, COLLAPSE_SHARE = 5, 0.75
COLLAPSE_PROBE = 256  # real training features (and as many synthetic) a final prompt head is checked on

_current: list[Any] = [None]  # the run's SummaryWriter, or None


def open_writer(output_dir: str | Path):
    """A ``SummaryWriter`` at ``output_dir/tensorboard`` (tensorboard is imported only here)."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(Path(output_dir) / TENSORBOARD_DIR))


def use_writer(writer) -> None:
    """Make ``writer`` the run's from now on (Dassl's trainer hands over its own between ``init_writer`` and
    ``close_writer``); None: no scalars."""
    _current[0] = writer


@contextlib.contextmanager
def writing_to(writer) -> Iterator[None]:
    """Make ``writer`` (a ``SummaryWriter``, or None: no scalars) the run's for the block; the previous one after."""
    previous, _current[0] = _current[0], writer
    try:
        yield
    finally:
        _current[0] = previous
        if writer is not None:
            writer.flush()


class LazyWriter:
    """A ``SummaryWriter`` at ``output_dir/tensorboard`` opened by the first scalar (a run that stops on bad input
    before training leaves no folder)."""

    def __init__(self, output_dir: str | Path) -> None:
        self.output_dir, self.writer = output_dir, None

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is None:
            self.writer = open_writer(self.output_dir)
        self.writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@contextlib.contextmanager
def run_scalars(output_dir: str | Path) -> Iterator[None]:
    """A run of the core: its own writer at ``output_dir/tensorboard`` for the block, closed after."""
    writer = LazyWriter(output_dir)
    try:
        with writing_to(writer):
            yield
    finally:
        writer.close()


def write_scalars(prefix: str, values: dict[str, float], step: int) -> None:
    """``prefix/name`` for every value, at ``step``, to the run's writer (nothing without one)."""
    writer = _current[0]
    if writer is not None:
        for name, value in values.items():
            writer.add_scalar(f"{prefix}/{name}", value, step)


class EpochTally:
    """The mean loss, accuracy and predicted classes over one epoch's training batches."""

    def __init__(self) -> None:
        self.loss_sum, self.n, self.correct = 0.0, 0, 0
        self.counts: torch.Tensor | None = None  # predictions per class

    def add(self, loss: float, n: int, logits: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> None:
        """A batch of ``n`` items with mean ``loss``; with ``logits`` [n, C] and ``labels``, its predictions."""
        self.loss_sum += loss * n
        self.n += n
        if logits is not None:
            predicted = logits.detach().argmax(-1)
            self.correct += (predicted == labels).sum().item()
            counts = torch.bincount(predicted.cpu(), minlength=logits.shape[-1])
            self.counts = counts if self.counts is None else self.counts + counts

    def values(self) -> dict[str, float]:
        """``loss`` and, when predictions were added, ``acc`` (%)."""
        values = {"loss": self.loss_sum / max(self.n, 1)}
        if self.counts is not None:
            values["acc"] = 100.0 * self.correct / max(self.n, 1)
        return values


def report_epoch(desc: str, prefix: str, epoch: int, epochs: int, values: dict[str, float], log: bool = True) -> None:
    """One epoch's values: the log line ``<desc> epoch [e/E] loss .. acc .. lr ..`` (when ``log``) and the scalars
    ``<prefix>/<name>`` at step ``epoch``."""
    if log:
        text = " ".join(f"{k} {v:.2e}" if k == "lr" else f"{k} {v:.2f}" if k == "acc" else f"{k} {v:.4f}"
                        for k, v in values.items())
        logger.info(f"{desc} epoch [{epoch}/{epochs}] {text}")
    write_scalars(prefix, values, epoch)


def few_classes(n_classes: int) -> int:
    """How many classes are "a few" of ``n_classes``: a quarter, at least 2."""
    return max(2, math.ceil(n_classes / 4))


def collapse_share(counts: torch.Tensor | None) -> float | None:
    """The share of predictions received by the :func:`few_classes` most predicted classes; None with fewer than
    :data:`COLLAPSE_MIN_CLASSES` classes or no predictions."""
    if counts is None or len(counts) < COLLAPSE_MIN_CLASSES or counts.sum() == 0:
        return None
    return (counts.sort(descending=True).values[:few_classes(len(counts))].sum() / counts.sum()).item()


def warn_if_collapsed(trainer: str, tally: EpochTally, where: str = "its training features in the last epoch") -> bool:
    """One warning line when the head predicted few classes for most of the features of ``tally`` (``where``)
    (:func:`few_classes` of ≥ :data:`COLLAPSE_MIN_CLASSES` classes received ≥ :data:`COLLAPSE_SHARE`)."""
    share = collapse_share(tally.counts)
    if share is None or share < COLLAPSE_SHARE:
        return False
    logger.warning(f"warning: {trainer} collapsed: {few_classes(len(tally.counts))} of its {len(tally.counts)} classes received "
                   f"{100 * share:.0f}% of its predictions on {where} (accuracy {tally.values()['acc']:.1f}%); its "
                   f"results are near chance on most classes")
    return True


def report_test(accuracy: dict[str, float], step: int = 0) -> None:
    """The run's final test accuracies as ``test/base``, ``test/new``, ``test/H`` (GZSL: ``test/seen``, ``test/unseen``,
    ``test/H``; cross-dataset: ``test/accuracy``)."""
    write_scalars("test", {("H" if k == "hm" else k): float(v) for k, v in accuracy.items()}, step)
