"""Training loops on cached features: the SHIP generator and the CoOp / CoCoOp prompt heads (their optimisers
and schedules: ``schedules``)."""
from __future__ import annotations

import logging
import math
from typing import Callable, Iterator, NamedTuple

import torch
import torch.nn.functional as F

from trainers.ship.common.errors import ShipError
from trainers.ship.common.progress import Progress
from trainers.ship.common.runtime import OptimizerStep, autocast
from trainers.ship.common.scalars import COLLAPSE_PROBE, EpochTally, report_epoch, warn_if_collapsed
from trainers.ship.data.features import FeatureSet
from trainers.ship.model.classifiers import PromptLearner
from trainers.ship.model.generator import ShipGenerator
from trainers.ship.model.synthesis import SyntheticStream
from trainers.ship.model.text_encoder import ClassPrompts
from trainers.ship.training.schedules import Schedule, build_prompt_optimizer, epoch_steps

logger = logging.getLogger("ship")


def epoch_batches(train: FeatureSet, batch_size: int, device: torch.device,
                  drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One shuffled epoch over the images, each seen once under one of its augmentation passes; ``drop_last``:
    see :func:`epoch_steps`."""
    passes, n, _ = train.features.shape
    order = torch.randperm(n)
    chosen_pass = torch.randint(passes, (n,))
    for idx in order.split(batch_size)[:epoch_steps(n, batch_size, drop_last)]:
        yield train.features[chosen_pass[idx], idx].to(device, non_blocking=True), train.labels[idx].to(device)


def check_finite(loss: torch.Tensor, stage: str, epoch: int) -> None:
    """Stop with a message naming the stage and epoch when a loss is NaN or infinite."""
    if not torch.isfinite(loss):
        raise ShipError(f"{stage} loss became {loss.item()} at epoch {epoch}; lower the learning rate or check the features")


def train_generator(
    generator: ShipGenerator,
    prompts: ClassPrompts,
    train: FeatureSet,
    epochs: int = 50,
    lr: float = 1e-3,
    batch_size: int = 256,
    kl_weight: float = 1.0,
    after_epoch: Callable[[int], None] | None = None,
) -> list[dict[str, float]]:
    """Fit E, G and the global prompts by AdamW on reconstruction + KL; returns per-epoch mean losses.

    ``train.labels`` index ``prompts`` (the base classes); ``after_epoch(epoch)`` is called after each epoch
    (``TEST.SELECTION paper`` keeps snapshots of the generator).
    """
    device, precision = generator.global_prompts.device, generator.text_encoder.precision
    step = OptimizerStep(torch.optim.AdamW(generator.parameters(), lr=lr), precision, device.type)
    generator.train()
    history = []
    progress = Progress("generator", epochs * math.ceil(len(train) / batch_size))
    for epoch in progress.epochs(epochs):
        sums = {"loss": 0.0, "rec": 0.0, "kl": 0.0}
        for x, y in progress.track(epoch_batches(train, batch_size, device)):
            with autocast(precision):
                rec, kl = generator(x, prompts, y)
            loss = rec + kl_weight * kl
            check_finite(loss, "generator", epoch)
            step(loss)
            for name, value in (("loss", loss), ("rec", rec), ("kl", kl)):
                sums[name] += value.item() * len(y)
        history.append({k: v / len(train) for k, v in sums.items()})
        report_epoch("generator", "generator", epoch, epochs, {**history[-1], "lr": step.optimizer.param_groups[0]["lr"]})
        if after_epoch is not None:
            after_epoch(epoch)
    generator.eval()
    return history


class StepLoss(NamedTuple):
    """What an objective returns: the loss, the logits it was computed from (the epoch's training accuracy), and
    for ProGrad a guide whose gradient steers the loss's."""

    loss: torch.Tensor
    logits: torch.Tensor
    guide: torch.Tensor | None = None


# (learner, prompts, features, labels) -> StepLoss; None: CoOp's cross-entropy
Objective = Callable[[PromptLearner, ClassPrompts, torch.Tensor, torch.Tensor], StepLoss]


def cross_entropy(learner: PromptLearner, prompts: ClassPrompts, x: torch.Tensor, y: torch.Tensor) -> StepLoss:
    """CoOp's objective: cross-entropy of scale · cos(feature, class text feature)."""
    logits = learner.logits(prompts, x)
    return StepLoss(F.cross_entropy(logits, y), logits)


def prompt_learner_step(
    learner: PromptLearner,
    prompts: ClassPrompts,
    x: torch.Tensor,
    y: torch.Tensor,
    step: OptimizerStep,
    schedule: Schedule,
    synthetic: SyntheticStream | None = None,
    epoch: int = 0,
    objective: Objective | None = None,
    guide_weight: float = 1.0,
    tally: EpochTally | None = None,
) -> float:
    """One step of a prompt learner on a batch of real features; with ``synthetic``, as many synthetic
    features join it (SHIP). ``guide_weight``: ProGrad's λ (:func:`runtime.project_conflicting`); ``tally``
    adds the step's loss and predictions to its epoch's."""
    if synthetic is not None:
        x_syn, y_syn = synthetic.sample(len(y))
        x, y = torch.cat([x, x_syn]), torch.cat([y, y_syn])
    with autocast(learner.text_encoder.precision):
        out = (objective or cross_entropy)(learner, prompts, x, y)
    check_finite(out.loss, "prompt learner", epoch)
    step(out.loss, out.guide, guide_weight)
    schedule.after_step()
    if tally is not None:
        tally.add(out.loss.item(), len(y), out.logits, y)
    return out.loss.item()


def prompt_learner_epoch(learner: PromptLearner, prompts: ClassPrompts, batches, step: OptimizerStep,
                         schedule: Schedule, synthetic: SyntheticStream | None = None, epoch: int = 0,
                         objective: Objective | None = None, guide_weight: float = 1.0) -> dict[str, float]:
    """One epoch of :func:`prompt_learner_step` over ``batches``: its mean ``loss``, training accuracy ``acc`` (real and
    synthetic features, %) and learning rate ``lr``."""
    lr, tally = schedule.lr(), EpochTally()
    for x, y in batches:
        prompt_learner_step(learner, prompts, x, y, step, schedule, synthetic, epoch, objective, guide_weight, tally)
    schedule.after_epoch()
    return {**tally.values(), "lr": lr}


def train_prompt_learner(
    learner: PromptLearner,
    prompts: ClassPrompts,
    train: FeatureSet,
    synthetic: SyntheticStream | None = None,
    epochs: int = 200,
    lr: float = 2e-3,
    batch_size: int = 256,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    eps: float = 1e-8,
    lr_scheduler: str = "cosine_iter",
    warmup_epochs: int = 0,
    warmup_lr: float = 1e-5,
    objective: Objective | None = None,
    guide_weight: float = 1.0,
    drop_last: bool = False,
    trainer: str = "CoOp",
) -> list[float]:
    """CoOp (or CoCoOp) on features: cross-entropy of scale·cos(feature, class text feature) over
    ``prompts``' classes (or ``objective``: KgCoOp, ProGrad).

    With ``synthetic``, every batch of real features is joined by as many
    synthetic features of label-only classes (SHIP). The learning rate follows ``lr_scheduler``
    (:func:`build_schedule`); ``drop_last``: the Dassl recipes' loader (:func:`epoch_steps`). Returns per-epoch
    mean losses. Every epoch is reported (``scalars``: the scalars ``<trainer>/loss``, ``/acc``, ``/lr``; a log
    line at epochs 1, every 10th and the last); a head that collapsed is one warning line naming ``trainer``.
    """
    device = next(learner.parameters()).device
    steps_per_epoch = epoch_steps(len(train), batch_size, drop_last)
    _, step, schedule = build_prompt_optimizer(learner, epochs, steps_per_epoch, optimizer, lr, momentum, weight_decay,
                                               eps, lr_scheduler, warmup_epochs, warmup_lr)
    history = []
    progress = Progress("prompt learner", epochs * steps_per_epoch)
    for epoch in progress.epochs(epochs):
        done = prompt_learner_epoch(learner, prompts, progress.track(epoch_batches(train, batch_size, device, drop_last)), step,
                                    schedule, synthetic, epoch, objective, guide_weight)
        history.append(done["loss"])
        report_epoch("prompt learner", trainer, epoch, epochs, done,
                     log=epoch == 1 or epoch % 10 == 0 or epoch == epochs)
    warn_if_head_collapsed(trainer, learner, prompts, train, synthetic)
    return history


@torch.no_grad()
def warn_if_head_collapsed(trainer: str, learner: PromptLearner, prompts: ClassPrompts, train: FeatureSet,
                           synthetic: SyntheticStream | None = None) -> bool:
    """One warning line (:func:`scalars.warn_if_collapsed`) when the final head predicts a few classes for most of
    up to :data:`scalars.COLLAPSE_PROBE` of its training features (first pass, evenly spread) and as many synthetic
    ones; the random state is left as it was."""
    device = next(learner.parameters()).device
    n = min(len(train), COLLAPSE_PROBE)
    if n == 0:
        return False
    pick = torch.linspace(0, len(train) - 1, n).round().long()
    x, y = train.features[0, pick].to(device), train.labels[pick].to(device)
    if synthetic is not None:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            x_syn, y_syn = synthetic.sample(n)
        x, y = torch.cat([x, x_syn.to(device)]), torch.cat([y, y_syn.to(device)])
    with autocast(learner.text_encoder.precision):
        logits = learner.logits(prompts, x)
    tally = EpochTally()
    tally.add(0.0, len(y), logits.float(), y)
    what = f"{n} of its training features" + (f" and {n} synthetic ones" if synthetic is not None else "")
    return warn_if_collapsed(trainer, tally, f"{what} after training")
