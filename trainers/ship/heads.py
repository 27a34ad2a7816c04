"""Each trainer's head: its method (``methods``) fitted on the base features as a fingerprinted stage (SHIP: with
synthetic features of the label-only classes), or loaded from a finished run, and returned as what scores
features over any classes.

Text-based heads (zero-shot CLIP, CoOp, CoCoOp) score a class by its name; Tip-Adapter's cache columns follow
class identities (``classes.class_ids``), never names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from yacs.config import CfgNode

from .classes import Classes
from .errors import ShipError
from .clip_loader import LoadedClip
from .features import FeatureSet
from .generator import ShipGenerator
from .methods import FitInputs, Scorer, resolve
from .runtime import seed_everything, stage_seed
from .stages import data_digest, fingerprint, load_finished, synthetic_stream, trained_or_loaded
from .text_encoder import TextEncoder


@dataclass
class SplitFeatures:
    """Cached features of one class split: base classes (trained on and evaluated), new classes (evaluated;
    their labels start at 0) and label-only classes (known by name, synthesised by SHIP)."""

    base: Classes
    new: Classes
    train: FeatureSet | None  # few-shot base images, K augmented passes (None when only evaluating)
    test_base: FeatureSet
    test_new: FeatureSet
    templates: list[str]  # the dataset's zero-shot prompts
    val: FeatureSet | None = None  # few-shot validation images of the base classes (Tip-Adapter's search)
    dataset: str = ""
    label_only: list[str] | None = None  # classes known by name only (SHIP synthesises them); default: the new ones
    class_index: dict[str, int] = field(default_factory=dict)  # identity -> column over base + label-only classes

    def __post_init__(self) -> None:
        if self.label_only is None:
            self.label_only = list(self.new.names)
        if not self.class_index:
            self.class_index = {i: c for c, i in enumerate(self.base.ids + self.new.ids)}

    @property
    def base_names(self) -> list[str]:
        return self.base.names

    @property
    def new_names(self) -> list[str]:
        return self.new.names


@dataclass
class TrainedHead:
    """What scores features over any classes and, for a SHIP trainer, the generator it trained on."""

    score: Callable[[Classes], Scorer]
    generator: ShipGenerator | None = None


def templates_of(cfg: CfgNode, data: SplitFeatures) -> list[str]:
    return list(cfg.DATASET.TEMPLATES) or data.templates


def build_head(cfg: CfgNode, trainer: str, text_encoder: TextEncoder, data: SplitFeatures, clip_model: LoadedClip,
               out: Path, model_dir: Path | None = None, load_epoch: int | None = None) -> TrainedHead:
    """Fit ``trainer``'s method on the base classes (SHIP: with synthetic features of the label-only ones) as a
    fingerprinted stage, or load it from ``model_dir`` (evaluation only)."""
    method_class, ship = resolve(trainer)
    templates = templates_of(cfg, data)
    if not method_class.checkpoint or model_dir is not None:
        method = method_class(cfg, text_encoder, templates)
        if method.checkpoint:  # evaluation only: the fitted state is all that is needed
            load_finished(method, model_dir / method.checkpoint / f"model.pth.tar-{load_epoch or method.epochs()}")
        return TrainedHead(method.scorer)
    synthetic = None
    if ship and cfg.TRAINER.SHIP.SYNTHESIZE:
        if not data.label_only:  # never a plain method under a SHIP_ name without a word
            raise ShipError(f"{trainer} has no label-only classes to synthesise (every name of DATASET.LABEL_ONLY_FROM "
                            f"is a class of {data.dataset} already); set TRAINER.SHIP.SYNTHESIZE False to train the "
                            f"plain method")
        synthetic = synthetic_stream(cfg, text_encoder, clip_model, data.train, data.base_names, data.label_only, out)
    seed_everything(stage_seed(cfg.SEED, trainer))
    method = method_class(cfg, text_encoder, templates)  # built under the stage's seed (a random context init)
    inputs = FitInputs(data.train, data.base_names, data.label_only, synthetic, data.val, data.dataset,
                       cfg.DATASET.NUM_SHOTS, data.class_index)
    digests = dict(train=data_digest(data.train, data.base_names + data.label_only),
                   val=data_digest(data.val) if method.uses_val else None, templates=templates,
                   dataset=data.dataset, class_index=data.class_index,
                   generator=synthetic.fingerprint if synthetic is not None else None)
    trained_or_loaded(method, out / method.checkpoint / f"model.pth.tar-{method.epochs()}",
                      fingerprint(cfg, clip_model, trainer, **digests), method.epochs(), lambda: method.fit(inputs))
    return TrainedHead(method.scorer, synthetic.generator if synthetic is not None else None)
