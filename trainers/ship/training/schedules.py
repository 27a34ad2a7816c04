"""The one factory of optimisers and learning-rate schedules every training loop uses (:func:`build_optimization`):
steps per epoch, SGD / AdamW, Dassl's per-epoch cosine with warm-up, the SHIP and Tip-Adapter code's per-iteration
cosine, and a constant rate (the generator)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from trainers.ship.common.errors import ShipError
from trainers.ship.common.runtime import OptimizerStep


def epoch_steps(n: int, batch_size: int, drop_last: bool = False) -> int:
    """The batches of one epoch over ``n`` images: with ``drop_last`` (Dassl's train loader:
    ``drop_last=is_train and len(data_source) >= batch_size``) the last partial batch is dropped when there is a
    full one; without (the SHIP and Tip-Adapter code's loaders) it is a step of its own."""
    return n // batch_size if drop_last and n >= batch_size else math.ceil(n / batch_size)


def make_optimizer(params, name: str, lr: float, momentum: float = 0.0, weight_decay: float = 0.0, eps: float = 1e-8):
    """SGD (momentum and weight decay as given: the SHIP code's CoOp head has neither, Dassl's recipes 0.9 and 5e-4)
    or AdamW (the SHIP code's ImageNet head, the generator, Tip-Adapter-F)."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, eps=eps, weight_decay=weight_decay)
    raise ShipError(f"unknown optimizer {name!r}; expected 'sgd' or 'adamw'")


LR_SCHEDULERS = ("dassl", "cosine_iter")  # a recipe's choices; "constant" (the generator) is not a setting


def dassl_lr(epoch: int, lr: float, epochs: int, warmup_epochs: int = 0, warmup_lr: float = 1e-5) -> float:
    """The learning rate of epoch ``epoch`` (from 0) under Dassl's ``cosine`` scheduler with a constant warm-up
    (``WARMUP_RECOUNT True``, Dassl's default): ``warmup_lr`` for the first ``warmup_epochs`` epochs, then
    lr · (1 + cos(π (epoch − warmup_epochs) / epochs)) / 2: the cosine counts from the end of the warm-up but
    keeps ``epochs`` (MAX_EPOCH) as its period, so it ends above zero."""
    if epoch < warmup_epochs:
        return warmup_lr
    return lr * 0.5 * (1 + math.cos(math.pi * (epoch - warmup_epochs) / epochs))


@dataclass
class Schedule:
    """A recipe's learning-rate schedule: ``dassl`` steps once per epoch (Dassl's trainers call ``update_lr``
    after an epoch's last batch), ``cosine_iter`` once per iteration (the SHIP and Tip-Adapter code)."""

    scheduler: torch.optim.lr_scheduler.LRScheduler
    per_epoch: bool

    def after_step(self) -> None:
        if not self.per_epoch:
            self.scheduler.step()

    def after_epoch(self) -> None:
        if self.per_epoch:
            self.scheduler.step()

    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]


def build_schedule(opt: torch.optim.Optimizer, lr_scheduler: str, epochs: int, steps_per_epoch: int,
                   warmup_epochs: int = 0, warmup_lr: float = 1e-5) -> Schedule:
    """``dassl``: :func:`dassl_lr` per epoch; ``cosine_iter``: torch's cosine over every iteration from the first,
    with no warm-up; ``constant``: the optimiser's rate throughout."""
    if lr_scheduler == "constant":
        return Schedule(torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0), per_epoch=True)
    if lr_scheduler == "dassl":
        lr = opt.param_groups[0]["lr"]
        factor = lambda e: dassl_lr(e, lr, epochs, warmup_epochs, warmup_lr) / lr  # noqa: E731
        return Schedule(torch.optim.lr_scheduler.LambdaLR(opt, factor), per_epoch=True)
    if lr_scheduler == "cosine_iter":
        if warmup_epochs:
            raise ShipError(f"LR_SCHEDULER cosine_iter (the SHIP code's per-iteration cosine) has no warm-up, but "
                            f"WARMUP_EPOCHS is {warmup_epochs}; set WARMUP_EPOCHS 0 or LR_SCHEDULER dassl")
        return Schedule(torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch), per_epoch=False)
    raise ShipError(f"unknown LR_SCHEDULER {lr_scheduler!r}; expected one of {', '.join(LR_SCHEDULERS)}")


@dataclass
class Optimization:
    """An optimiser, its :class:`OptimizerStep` (loss scaling under fp16) and its :class:`Schedule`."""

    optimizer: torch.optim.Optimizer
    step: OptimizerStep
    schedule: Schedule


def build_optimization(params, precision: str, device_type: str, epochs: int, steps_per_epoch: int,
                       optimizer: str = "sgd", lr: float = 2e-3, momentum: float = 0.0, weight_decay: float = 0.0,
                       eps: float = 1e-8, lr_scheduler: str = "cosine_iter", warmup_epochs: int = 0,
                       warmup_lr: float = 1e-5) -> Optimization:
    """The optimiser of ``params`` (:func:`make_optimizer`), its step under ``precision`` and its schedule
    (:func:`build_schedule`) over ``epochs`` of ``steps_per_epoch``: what every training loop steps with."""
    opt = make_optimizer(params, optimizer, lr, momentum, weight_decay, eps)
    return Optimization(opt, OptimizerStep(opt, precision, device_type),
                        build_schedule(opt, lr_scheduler, epochs, steps_per_epoch, warmup_epochs, warmup_lr))
