"""The two training loops on cached features: the SHIP generator's (:func:`train_generator`) and every head's
(:class:`HeadTraining`: CoOp and its variants, CLIP-Adapter, Tip-Adapter-F), one epoch at a time so that Dassl's
epoch loop can drive it. Their optimisers and schedules come from one factory (``schedules.build_optimization``)."""
from __future__ import annotations

import logging
from typing import Callable, Iterable, Iterator, NamedTuple

import torch
import torch.nn.functional as F

from trainers.ship.common.errors import ShipError
from trainers.ship.common.progress import Progress
from trainers.ship.common.runtime import autocast
from trainers.ship.common.scalars import COLLAPSE_PROBE, EpochTally, report_epoch, warn_if_collapsed
from trainers.ship.data.features import FeatureSet
from trainers.ship.model.classifiers import PromptLearner
from trainers.ship.model.generator import ShipGenerator
from trainers.ship.model.synthesis import SyntheticStream
from trainers.ship.model.text_encoder import ClassPrompts
from trainers.ship.training.schedules import build_optimization, epoch_steps

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
    """Fit E, G and the global prompts by AdamW (torch's defaults, weight decay 0.01, as the SHIP code) at a
    constant rate on reconstruction + KL; returns per-epoch mean losses.

    ``train.labels`` index ``prompts`` (the base classes); ``after_epoch(epoch)`` is called after each epoch
    (``TEST.SELECTION paper`` keeps snapshots of the generator).
    """
    device, precision = generator.global_prompts.device, generator.text_encoder.precision
    steps_per_epoch = epoch_steps(len(train), batch_size)
    opt = build_optimization(list(generator.parameters()), precision, device.type, epochs, steps_per_epoch, "adamw", lr,
                             weight_decay=0.01, lr_scheduler="constant")
    generator.train()
    history = []
    progress = Progress("generator", epochs * steps_per_epoch)
    for epoch in progress.epochs(epochs):
        sums = {"loss": 0.0, "rec": 0.0, "kl": 0.0}
        lr_now = opt.schedule.lr()
        for x, y in progress.track(epoch_batches(train, batch_size, device)):
            with autocast(precision):
                rec, kl = generator(x, prompts, y)
            loss = rec + kl_weight * kl
            check_finite(loss, "generator", epoch)
            opt.step(loss)
            opt.schedule.after_step()
            for name, value in (("loss", loss), ("rec", rec), ("kl", kl)):
                sums[name] += value.item() * len(y)
        opt.schedule.after_epoch()
        history.append({k: v / len(train) for k, v in sums.items()})
        report_epoch("generator", "generator", epoch, epochs, {**history[-1], "lr": lr_now})
        if after_epoch is not None:
            after_epoch(epoch)
    generator.eval()
    return history


class StepLoss(NamedTuple):
    """What a head's loss returns: the loss, the logits it was computed from (the epoch's training accuracy), and
    for ProGrad a guide whose gradient steers the loss's."""

    loss: torch.Tensor
    logits: torch.Tensor
    guide: torch.Tensor | None = None


HeadLoss = Callable[[torch.Tensor, torch.Tensor], StepLoss]  # (features, labels) -> StepLoss of a head
Logits = Callable[[torch.Tensor], torch.Tensor]  # features -> logits over the head's training classes

# (learner, prompts, features, labels) -> StepLoss of a prompt learner; None: CoOp's cross-entropy
Objective = Callable[[PromptLearner, ClassPrompts, torch.Tensor, torch.Tensor], StepLoss]


def cross_entropy(learner: PromptLearner, prompts: ClassPrompts, x: torch.Tensor, y: torch.Tensor) -> StepLoss:
    """CoOp's objective: cross-entropy of scale · cos(feature, class text feature)."""
    logits = learner.logits(prompts, x)
    return StepLoss(F.cross_entropy(logits, y), logits)


class HeadTraining:
    """A head trained on cached features, one epoch at a time: the optimiser and schedule of its recipe
    (``schedules.build_optimization``), its shuffled batches (:func:`epoch_batches`; ``drop_last``: Dassl's train
    loader), and with ``synthetic`` as many synthetic features of the label-only classes joining every batch (SHIP).

    :meth:`run` trains every epoch (the core); Dassl's ``SHIP_CoOp`` calls :meth:`run_epoch` from its own epoch
    loop and registers :attr:`optimization`'s optimiser and scheduler for its checkpoints. ``stage`` names the loop
    in progress and log lines, ``trainer`` the scalars (``<trainer>/loss``, ``/acc``, ``/lr``) and the collapse
    warning; ``logits``: the final head's logits, for :func:`warn_if_head_collapsed`.
    """

    def __init__(self, params: Iterable[torch.Tensor], loss: HeadLoss, logits: Logits, train: FeatureSet,
                 synthetic: SyntheticStream | None, precision: str, device: torch.device, *, trainer: str,
                 epochs: int, batch_size: int, drop_last: bool = False, guide_weight: float = 1.0,
                 stage: str = "prompt learner", **optimizer):
        self.loss, self.logits, self.train, self.synthetic = loss, logits, train, synthetic
        self.precision, self.device, self.trainer, self.stage = precision, device, trainer, stage
        self.epochs, self.batch_size, self.drop_last, self.guide_weight = epochs, batch_size, drop_last, guide_weight
        self.steps_per_epoch = epoch_steps(len(train), batch_size, drop_last)
        self.optimization = build_optimization(list(params), precision, device.type, epochs, self.steps_per_epoch,
                                               **optimizer)

    def step(self, x: torch.Tensor, y: torch.Tensor, epoch: int, tally: EpochTally | None = None) -> float:
        """One step on a batch of real features (and as many synthetic ones); ``tally`` adds its loss and
        predictions to the epoch's."""
        if self.synthetic is not None:
            x_syn, y_syn = self.synthetic.sample(len(y))
            x, y = torch.cat([x, x_syn]), torch.cat([y, y_syn])
        with autocast(self.precision):
            out = self.loss(x, y)
        check_finite(out.loss, self.stage, epoch)
        self.optimization.step(out.loss, out.guide, self.guide_weight)
        self.optimization.schedule.after_step()
        if tally is not None:
            tally.add(out.loss.item(), len(y), out.logits, y)
        return out.loss.item()

    def run_epoch(self, epoch: int, track: Callable[[Iterator], Iterator] = iter, log: bool = True) -> dict[str, float]:
        """Epoch ``epoch`` (from 1): its mean ``loss``, training accuracy ``acc`` (real and synthetic features, %) and
        learning rate ``lr``, reported (``scalars.report_epoch``; the log line when ``log``)."""
        schedule, tally = self.optimization.schedule, EpochTally()
        lr = schedule.lr()
        for x, y in track(epoch_batches(self.train, self.batch_size, self.device, self.drop_last)):
            self.step(x, y, epoch, tally)
        schedule.after_epoch()
        done = {**tally.values(), "lr": lr}
        report_epoch(self.stage, self.trainer, epoch, self.epochs, done, log=log)
        return done

    def run(self, log_every: int = 10, after_epoch: Callable[[int], None] | None = None) -> list[float]:
        """Every epoch with progress (a log line at epoch 1, every ``log_every``-th and the last), then
        :meth:`finish`; ``after_epoch(epoch)`` after each. Returns the per-epoch mean losses."""
        history = []
        progress = Progress(self.stage, self.epochs * self.steps_per_epoch)
        for epoch in progress.epochs(self.epochs):
            done = self.run_epoch(epoch, progress.track, log=epoch == 1 or epoch % log_every == 0 or epoch == self.epochs)
            history.append(done["loss"])
            if after_epoch is not None:
                after_epoch(epoch)
        self.finish()
        return history

    def finish(self) -> bool:
        """After the last epoch: one warning line when the head collapsed (:func:`warn_if_head_collapsed`)."""
        return warn_if_head_collapsed(self.trainer, self.logits, self.precision, self.device, self.train, self.synthetic)


def prompt_training(learner: PromptLearner, prompts: ClassPrompts, train: FeatureSet,
                    synthetic: SyntheticStream | None = None, objective: Objective | None = None,
                    trainer: str = "CoOp", **recipe) -> HeadTraining:
    """The training of a prompt learner (CoOp, CoCoOp, KgCoOp, ProGrad) over ``prompts``' classes: cross-entropy of
    scale · cos(feature, class text feature), or ``objective``; ``recipe``: :class:`HeadTraining`'s epochs, batch
    size, ``drop_last``, ``guide_weight`` and the optimiser's settings (``schedules.build_optimization``)."""
    objective = objective or cross_entropy
    return HeadTraining(learner.parameters(), lambda x, y: objective(learner, prompts, x, y),
                        lambda x: learner.logits(prompts, x), train, synthetic, learner.text_encoder.precision,
                        next(learner.parameters()).device, trainer=trainer, **recipe)


def train_prompt_learner(learner: PromptLearner, prompts: ClassPrompts, train: FeatureSet,
                         synthetic: SyntheticStream | None = None, epochs: int = 200, lr: float = 2e-3,
                         batch_size: int = 256, objective: Objective | None = None, trainer: str = "CoOp",
                         **recipe) -> list[float]:
    """Train a prompt learner for every epoch (:func:`prompt_training`; the SHIP code's CoOp head by default);
    returns the per-epoch mean losses."""
    return prompt_training(learner, prompts, train, synthetic, objective, trainer, epochs=epochs, lr=lr,
                           batch_size=batch_size, **recipe).run()


@torch.no_grad()
def warn_if_head_collapsed(trainer: str, logits: Logits, precision: str, device: torch.device, train: FeatureSet,
                           synthetic: SyntheticStream | None = None) -> bool:
    """One warning line (:func:`scalars.warn_if_collapsed`) when the final head (``logits``) predicts a few classes
    for most of up to :data:`scalars.COLLAPSE_PROBE` of its training features (first pass, evenly spread) and as
    many synthetic ones; the random state is left as it was."""
    n = min(len(train), COLLAPSE_PROBE)
    if n == 0:
        return False
    pick = torch.linspace(0, len(train) - 1, n).round().long()
    x, y = train.features[0, pick].to(device), train.labels[pick].to(device)
    if synthetic is not None:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            x_syn, y_syn = synthetic.sample(n)
        x, y = torch.cat([x, x_syn.to(device)]), torch.cat([y, y_syn.to(device)])
    with autocast(precision):
        out = logits(x)
    tally = EpochTally()
    tally.add(0.0, len(y), out.float(), y)
    what = f"{n} of its training features" + (f" and {n} synthetic ones" if synthetic is not None else "")
    return warn_if_collapsed(trainer, tally, f"{what} after training")
