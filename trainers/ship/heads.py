"""Each method's head: trained on the base features (SHIP: and synthetic features of the label-only classes),
or loaded from a finished run, and returned as what scores features over any classes.

Text-based heads (zero-shot CLIP, CoOp, CoCoOp) score a class by its name; Tip-Adapter's cache columns follow
class identities (``classes.class_ids``), never names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from yacs.config import CfgNode

from .classes import Classes
from .classifiers import ConditionalPromptLearner, PromptLearner, cosine_logits, zero_shot_weights
from .clip_loader import LoadedClip
from .features import FeatureSet
from .generator import ShipGenerator
from .runtime import seed_everything, stage_seed
from .stages import data_digest, fingerprint, fit_tip_adapter, load_finished, synthetic_stream, trained_or_loaded
from .text_encoder import TextEncoder
from .tip_adapter import TipAdapter
from .training import train_prompt_learner

TRAINERS = ("SHIP_CoOp", "CoOp", "CoCoOp", "ZeroshotCLIP", "SHIP_TipAdapter", "TipAdapter")


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


Scorer = Callable[[torch.Tensor], torch.Tensor]  # features [N, D] -> logits over one set of classes
Head = Callable[[Classes], Scorer]


@dataclass
class TrainedHead:
    """A head and, for SHIP trainers that synthesised in this run, the generator they trained on."""

    score: Head
    generator: ShipGenerator | None = None


def templates_of(cfg: CfgNode, data: SplitFeatures) -> list[str]:
    return list(cfg.DATASET.TEMPLATES) or data.templates


def build_head(cfg: CfgNode, trainer: str, text_encoder: TextEncoder, data: SplitFeatures, clip_model: LoadedClip,
               out: Path, model_dir: Path | None = None, load_epoch: int | None = None) -> TrainedHead:
    """Train ``trainer`` on the base classes (SHIP: and the label-only ones), or load it from ``model_dir``
    (evaluation only)."""
    if trainer in ("TipAdapter", "SHIP_TipAdapter"):
        return _tip_adapter_head(cfg, trainer, text_encoder, data, clip_model, out, model_dir, load_epoch)
    if trainer == "ZeroshotCLIP":
        templates, scale = templates_of(cfg, data), text_encoder.logit_scale

        def zero_shot(classes: Classes) -> Scorer:
            weights = zero_shot_weights(text_encoder, classes.names, templates)
            return lambda f: cosine_logits(f, weights, scale)

        return TrainedHead(zero_shot)
    learner, generator = _prompt_learner(cfg, trainer, text_encoder, data, clip_model, out, model_dir, load_epoch)
    learner.eval()

    def prompted(classes: Classes) -> Scorer:
        prompts = learner.class_prompts(classes.names)
        return lambda f: learner.logits(prompts, f)  # CoCoOp: text features of each image's own context

    return TrainedHead(prompted, generator)


def _prompt_learner(cfg, trainer, text_encoder, data, clip_model, out, model_dir, load_epoch):
    """CoOp, SHIP_CoOp (CoOp over base + label-only classes on real + synthetic features) or CoCoOp,
    trained on the base features or loaded from ``model_dir``; and the generator SHIP_CoOp trained on."""
    s = cfg.TRAINER.SHIP
    synthetic = None
    train_names = data.base_names
    if model_dir is None and trainer == "SHIP_CoOp" and s.SYNTHESIZE and data.label_only:
        synthetic = synthetic_stream(cfg, text_encoder, clip_model, data.train, data.base_names, data.label_only, out)
        train_names = data.base_names + data.label_only  # SHIP's head covers base and label-only classes
    seed_everything(stage_seed(cfg.SEED, trainer))
    if trainer == "CoCoOp":
        learner = ConditionalPromptLearner(text_encoder, s.COCOOP_N_CTX, s.COCOOP_CTX_INIT)
        epochs = s.COCOOP_EPOCHS
        recipe = dict(epochs=epochs, lr=s.COCOOP_LR, batch_size=s.COCOOP_BATCH_SIZE, optimizer="sgd",
                      momentum=s.COCOOP_MOMENTUM, weight_decay=s.COCOOP_WEIGHT_DECAY,
                      warmup_epochs=s.COCOOP_WARMUP_EPOCHS, warmup_lr=s.COCOOP_WARMUP_LR)
    else:
        learner = PromptLearner(text_encoder, s.COOP_N_CTX, s.COOP_CTX_INIT)
        epochs = s.COOP_EPOCHS
        recipe = dict(epochs=epochs, lr=s.COOP_LR, batch_size=s.COOP_BATCH_SIZE, optimizer=s.COOP_OPTIM,
                      momentum=s.COOP_MOMENTUM, weight_decay=s.COOP_WEIGHT_DECAY, eps=s.COOP_EPS,
                      warmup_epochs=s.COOP_WARMUP_EPOCHS, warmup_lr=s.COOP_WARMUP_LR)
    checkpoint = Path("prompt_learner") / f"model.pth.tar-{epochs}"
    if model_dir is not None:  # evaluation only: the trained context (and meta-net) is all that is needed
        load_finished(learner, model_dir / checkpoint.parent / f"model.pth.tar-{load_epoch or epochs}")
        return learner, None
    inputs = dict(train=data_digest(data.train, train_names),
                  generator=synthetic.fingerprint if synthetic is not None else None)
    trained_or_loaded(
        learner, out / checkpoint, fingerprint(cfg, clip_model, trainer, **inputs), epochs,
        lambda: train_prompt_learner(learner, learner.class_prompts(train_names), data.train, synthetic, **recipe),
    )
    return learner, synthetic.generator if synthetic is not None else None


def _tip_adapter_head(cfg, trainer, text_encoder, data, clip_model, out, model_dir, load_epoch) -> TrainedHead:
    """TipAdapter / SHIP_TipAdapter: fit (or load) the adapter; score any classes over their own columns."""
    s = cfg.TRAINER.SHIP
    epochs = s.TIP_EPOCHS if s.TIP_FINETUNE else 0
    templates = templates_of(cfg, data)
    adapter, generator = TipAdapter(torch.empty(0), torch.empty(0)), None
    if model_dir is not None:
        load_finished(adapter, model_dir / "tip_adapter" / f"model.pth.tar-{load_epoch or epochs}")
    else:
        synthesize = trainer == "SHIP_TipAdapter" and s.SYNTHESIZE

        def fit() -> None:
            nonlocal generator
            seed_everything(stage_seed(cfg.SEED, trainer))
            fitted, stream = fit_tip_adapter(cfg, synthesize, text_encoder, clip_model, data.train, data.val,
                                             data.base_names, data.label_only, templates, data.dataset, out)
            fitted.class_index = dict(data.class_index)
            adapter.load_state_dict(fitted.state_dict())
            generator = stream.generator if stream is not None else None

        inputs = dict(train=data_digest(data.train, data.base_names + data.label_only), val=data_digest(data.val),
                      templates=templates, dataset=data.dataset, class_index=data.class_index)
        trained_or_loaded(adapter, out / "tip_adapter" / f"model.pth.tar-{epochs}",
                          fingerprint(cfg, clip_model, trainer, **inputs), epochs, fit)
    scale = text_encoder.logit_scale

    def scorer(classes: Classes) -> Scorer:
        zero_shot, columns = zero_shot_weights(text_encoder, classes.names, templates), adapter.columns(classes.ids)
        return lambda f: adapter.logits(f, zero_shot, scale, columns)

    return TrainedHead(scorer, generator)
