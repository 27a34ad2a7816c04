"""Tip-Adapter and Tip-Adapter-F on cached features, with SHIP's synthetic keys for label-only classes.

    logits(f) = scale · f Wᵀ + α · exp(−β (1 − f Kᵀ)) V

W: zero-shot class weights (the dataset's templates); K: cache keys, the few-shot training features (the mean
of their augmented passes' raw features, normalised); V: one-hot values. SHIP adds keys synthesised for the
label-only classes, so those classes get cache entries too. α and β are searched on the validation
split only (Tip-Adapter's grid); Tip-Adapter-F also fine-tunes the keys.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from trainers.ship.common.errors import ShipError
from trainers.ship.common.known_datasets import ALIASES
from trainers.ship.data.features import FeatureSet
from trainers.ship.model.classifiers import cosine_logits
from trainers.ship.training.loops import HeadTraining, StepLoss

logger = logging.getLogger("ship")

# Tip-Adapter's per-dataset search ranges [S_beta, S_alpha] and initial alpha (init_beta is 1 everywhere).
SEARCH_SCALE = {
    "Caltech101": (12, 5), "DescribableTextures": (13, 13), "EuroSAT": (12, 10), "FGVCAircraft": (30, 30),
    "Food101": (10, 10), "ImageNet": (7, 3), "OxfordFlowers": (50, 50), "OxfordPets": (7, 3),
    "StanfordCars": (20, 10), "SUN397": (12, 10), "UCF101": (7, 3),
}
INIT_ALPHA = {
    "Caltech101": 3.0, "DescribableTextures": 2.0, "EuroSAT": 2.0, "FGVCAircraft": 5.0, "Food101": 1.17,
    "ImageNet": 1.17, "OxfordFlowers": 10.0, "OxfordPets": 1.17, "StanfordCars": 3.0, "SUN397": 1.17, "UCF101": 3.0,
}

FINETUNE_EPOCHS = {"EuroSAT": 100}  # Tip-Adapter-F's train_epoch (configs/<dataset>.yaml); 20 for the others


def finetune_epochs(epochs: int, dataset: str) -> int:
    """``epochs``, or for 0 Tip-Adapter-F's epochs for ``dataset`` (:data:`FINETUNE_EPOCHS`, else 20), with one
    log line."""
    if epochs:
        return epochs
    name = ALIASES.get(dataset, dataset)
    chosen = FINETUNE_EPOCHS.get(name, 20)
    if (name, chosen) not in _EPOCHS_LOGGED:
        _EPOCHS_LOGGED.add((name, chosen))
        logger.info(f"Tip-Adapter-F: {chosen} epochs (Tip-Adapter's value for {name}; set TRAINER.TIPADAPTER.EPOCHS)")
    return chosen


_EPOCHS_LOGGED: set[tuple[str, int]] = set()


@dataclass
class TipCache:
    """Tip-Adapter's cache: keys ``[N, D]`` (normalised), one-hot values ``[N, C]``, and the mixing α and sharpness β."""

    keys: torch.Tensor
    values: torch.Tensor
    alpha: float = 1.0
    beta: float = 1.0
    class_index: dict[str, int] = field(default_factory=dict)  # class identity (classes.class_ids) -> value column

    @classmethod
    def build(cls, train: FeatureSet, num_classes: int, synthetic: tuple[torch.Tensor, torch.Tensor] | None = None,
              alpha: float = 1.0, beta: float = 1.0) -> "TipCache":
        """Keys from the few-shot features: CLIP's raw features averaged over the augmented passes, then normalised
        (Tip-Adapter's ``build_cache_model``), plus ``synthetic`` (features, labels in the same label space) for SHIP."""
        keys, labels = F.normalize(train.raw().mean(0), dim=-1), train.labels
        if synthetic is not None:
            keys = torch.cat([keys, synthetic[0].to(keys.device, keys.dtype)])
            labels = torch.cat([labels, synthetic[1].to(labels.device)])
        return cls(keys, F.one_hot(labels, num_classes).float(), alpha, beta)

    def logits(self, features: torch.Tensor, zero_shot: torch.Tensor, logit_scale: float,
               classes: slice | list[int] = slice(None)) -> torch.Tensor:
        """Tip-Adapter logits over ``classes`` (zero-shot weights already restricted to them); a column
        index of -1 (see :meth:`columns`) gets no cache votes."""
        values = self.values if isinstance(classes, slice) else F.pad(self.values, (0, 1))  # -1: a zero column
        values = values[:, classes].to(features.device)
        return tip_logits(features, zero_shot, self.keys.to(features.device), values, self.alpha, self.beta, logit_scale)

    def state_dict(self) -> dict:
        return {"keys": self.keys.cpu(), "values": self.values.cpu(), "alpha": self.alpha, "beta": self.beta,
                "class_index": dict(self.class_index)}

    def load_state_dict(self, state: dict) -> None:
        if "class_index" not in state:
            raise ShipError("this Tip-Adapter checkpoint predates class identities (it matched cache columns by "
                            "class name); retrain it")
        self.keys, self.values, self.alpha, self.beta = state["keys"], state["values"], state["alpha"], state["beta"]
        self.class_index = dict(state["class_index"])

    def columns(self, ids: list[str]) -> list[int]:
        """The value columns of the classes ``ids`` (``classes.class_ids``); a class the cache has no entry
        for gets -1, so it is scored as zero-shot CLIP scores it (one log line says how many)."""
        columns = [self.class_index.get(i, -1) for i in ids]
        if -1 in columns:
            logger.info(f"Tip-Adapter: {columns.count(-1)} of {len(ids)} classes have no cache entries "
                        f"(scored as zero-shot CLIP)")
        return columns



def cache_votes(affinity: torch.Tensor, values: torch.Tensor, beta: float) -> torch.Tensor:
    """The cache's votes exp(−β (1 − f Kᵀ)) V, from the affinities f Kᵀ."""
    return torch.exp(-beta * (1 - affinity)) @ values.float()


def tip_logits(features: torch.Tensor, zero_shot: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
               alpha: float, beta: float, logit_scale: float) -> torch.Tensor:
    """Zero-shot logits plus α times the cache's affinity-weighted votes."""
    affinity = features.float() @ keys.float().t()
    return cosine_logits(features, zero_shot, logit_scale) + alpha * cache_votes(affinity, values, beta)


def search_grid(scale: tuple[float, float], steps: tuple[int, int] = (200, 20)) -> tuple[list[float], list[float]]:
    """Tip-Adapter's grid: β = 0.1 + i (S_β − 0.1) / n_β, α = 0.1 + j (S_α − 0.1) / n_α."""
    (s_beta, s_alpha), (n_beta, n_alpha) = scale, steps
    return ([0.1 + i * (s_beta - 0.1) / n_beta for i in range(n_beta)],
            [0.1 + j * (s_alpha - 0.1) / n_alpha for j in range(n_alpha)])


@torch.no_grad()
def search_alpha_beta(val: FeatureSet, zero_shot: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                      logit_scale: float, scale: tuple[float, float]) -> tuple[float, float, float]:
    """The (α, β) of the grid with the best validation accuracy (first in grid order on ties), and that accuracy."""
    features, labels = val.features[0].to(keys.device), val.labels.to(keys.device)
    clip_logits = cosine_logits(features, zero_shot, logit_scale)
    affinity = features.float() @ keys.float().t()
    betas, alphas = search_grid(scale)
    best = (-1.0, 0.0, 0.0)
    for beta in betas:
        votes = cache_votes(affinity, values, beta)
        for alpha in alphas:
            acc = 100.0 * ((clip_logits + alpha * votes).argmax(-1) == labels).float().mean().item()
            if acc > best[0]:
                best = (acc, alpha, beta)
    acc, alpha, beta = best
    logger.info(f"Tip-Adapter search on val: alpha {alpha:.4f} beta {beta:.4f} val accuracy {acc:.2f}%")
    return alpha, beta, acc


def finetune_keys(cache: TipCache, train: FeatureSet, zero_shot: torch.Tensor, logit_scale: float,
                  epochs: int = 20, lr: float = 1e-3, batch_size: int = 256,
                  synthetic: tuple[torch.Tensor, torch.Tensor] | None = None, precision: str = "fp32",
                  after_epoch: Callable[[int, torch.Tensor], None] | None = None, trainer: str = "TipAdapter") -> None:
    """Tip-Adapter-F: fine-tune ``cache``'s keys in place by AdamW (eps 1e-4, torch's weight decay 0.01) with torch's
    cosine over every iteration, on cross-entropy of the Tip-Adapter logits (at the cache's α and β), as its code;
    ``after_epoch(epoch, keys)`` after each epoch (``TEST.SELECTION paper``: the official code's test score of
    every epoch).

    The training set is the few-shot features (one augmented pass per image and epoch) plus, for
    SHIP, the synthetic features of the label-only classes, shuffled together. The loop is every head's
    (``loops.HeadTraining``: the scalars ``<trainer>/loss``, ``/acc``, ``/lr``; a collapsed head is one warning line).
    """
    device = zero_shot.device
    if synthetic is not None:  # synthetic features stand for themselves in every pass
        passes = train.features.shape[0]
        train = FeatureSet(torch.cat([train.features, synthetic[0].cpu().unsqueeze(0).expand(passes, -1, -1)], 1),
                           torch.cat([train.labels, synthetic[1].cpu()]))
    keys = nn.Parameter(cache.keys.clone().float().to(device))
    values = cache.values.to(device)

    def logits(x: torch.Tensor) -> torch.Tensor:
        return tip_logits(x, zero_shot, keys, values, cache.alpha, cache.beta, logit_scale)

    def loss(x: torch.Tensor, y: torch.Tensor) -> StepLoss:
        out = logits(x)
        return StepLoss(F.cross_entropy(out, y), out)

    training = HeadTraining([keys], loss, logits, train, None, precision, device, trainer=trainer, epochs=epochs,
                            batch_size=batch_size, stage="Tip-Adapter-F", optimizer="adamw", lr=lr, eps=1e-4,
                            weight_decay=0.01, lr_scheduler="cosine_iter")
    training.run(log_every=5, after_epoch=None if after_epoch is None else lambda epoch: after_epoch(epoch, keys.detach()))
    cache.keys = keys.detach()
