"""The interface of a fine-tuner on cached CLIP features, and the registry of methods.

A method is fitted on the real features of the base classes and, under SHIP, on a stream of synthetic
features of the label-only classes; it then scores features over any classes. One file per method
registers one class with :func:`register`; ``SHIP_<name>`` exists for every method that trains on features,
with no SHIP code of its own: the generator stage is the same for all (``stages.synthetic_stream``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

import torch
from yacs.config import CfgNode

from trainers.ship.common.errors import ShipError
from trainers.ship.common.known_datasets import method_templates
from trainers.ship.common.ranges import Spec
from trainers.ship.data.classes import Classes
from trainers.ship.data.features import FeatureSet
from trainers.ship.model.synthesis import SyntheticStream
from trainers.ship.model.text_encoder import TextEncoder
from trainers.ship.training.stages import STAGE_KEYS

Scorer = Callable[[torch.Tensor], torch.Tensor]  # features [N, D] -> logits over one set of classes


@dataclass
class FitInputs:
    """What a method is fitted on."""

    train: FeatureSet  # few-shot base images, K augmented passes; labels index base_names
    base_names: list[str]
    label_only: list[str]  # the classes SHIP synthesises (after the base classes in the joint label space)
    synthetic: SyntheticStream | None  # SHIP: synthetic features of the label-only classes; None: the plain method
    val: FeatureSet | None = None  # few-shot validation images of the base classes
    dataset: str = ""
    shots: int = 16
    class_index: dict[str, int] = field(default_factory=dict)  # class identity -> column over base + label-only
    # TEST.SELECTION paper: a head's score function -> its test metric, for a method whose official code picks on test
    test_metric: Callable[[Callable[[Classes], Scorer]], float] | None = None


class FeatureMethod:
    """A fine-tuner on CLIP features. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str] = ""
    checkpoint: ClassVar[str] = ""  # the stage's folder in a run; "" for a method with nothing to fit
    config: ClassVar[str] = ""  # its settings' node, TRAINER.<config> (defaults: :meth:`defaults`)
    ship_settings: ClassVar[tuple[str, ...]] = ("SYNTHESIZE", "SYN_POOL_PER_CLASS")  # TRAINER.SHIP keys under SHIP
    uses_val: ClassVar[bool] = False  # fit needs the base classes' validation images

    def __init__(self, cfg: CfgNode, text_encoder: TextEncoder, templates: list[str]):
        self.cfg, self.text_encoder, self.templates = cfg, text_encoder, templates
        self.hp = cfg.TRAINER[self.config] if self.config else CfgNode()  # its hyper-parameters

    @classmethod
    def defaults(cls) -> CfgNode:
        """The node ``TRAINER.<config>`` with the method's published settings."""
        return CfgNode()

    @classmethod
    def ranges(cls) -> dict[str, Spec]:
        """The allowed values of each key of :meth:`defaults` (``common.ranges``; every key declares one)."""
        return {}

    def trainer_name(self, ship: bool) -> str:
        """The trainer this method runs as: ``SHIP_<name>`` when synthetic features join its training."""
        return f"SHIP_{self.name}" if ship else self.name

    def own_templates(self) -> list[str]:
        """The method's own hand-crafted prompt of the dataset (``known_datasets.METHOD_TEMPLATES``: KgCoOp,
        ProGrad, CLIP-Adapter), unless ``DATASET.TEMPLATES`` is set."""
        if self.cfg.DATASET.get("TEMPLATES"):
            return self.templates
        return method_templates(self.name, self.cfg.DATASET.NAME, self.templates)

    def epochs(self) -> int:
        """The number in the checkpoint's name (``model.pth.tar-<epochs>``)."""
        return 0

    def fit(self, inputs: FitInputs) -> None:
        raise NotImplementedError

    def selects_on_test(self) -> bool:
        """Whether the official code picks this method's state on test data (``TEST.SELECTION paper`` does too)."""
        return False

    def selected_on_test(self) -> dict:
        """What the last :meth:`fit` picked on test data (``selection.json``); {} when nothing."""
        return {}

    def scorer(self, classes: Classes) -> Scorer:
        raise NotImplementedError

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError


METHODS: dict[str, type[FeatureMethod]] = {}


def register(method: type[FeatureMethod]) -> type[FeatureMethod]:
    """Register a method by its ``name`` (and ``SHIP_<name>`` when it trains on features)."""
    if method.name in METHODS:
        raise ShipError(f"a method named {method.name!r} is registered already")
    METHODS[method.name] = method
    settings = tuple(f"TRAINER.{method.config}.{k}" for k in method.defaults()) if method.config else ()
    STAGE_KEYS[method.name] = settings
    if method.checkpoint:
        STAGE_KEYS[f"SHIP_{method.name}"] = settings + tuple(f"TRAINER.SHIP.{k}" for k in method.ship_settings)
    return method


def method_nodes() -> dict[str, CfgNode]:
    """Every registered method's config node and its defaults."""
    return {m.config: m.defaults() for m in METHODS.values() if m.config}


def trainer_names() -> list[str]:
    """Every ``--trainer`` choice: SHIP_<method> for each method that trains on features, then the methods."""
    return [f"SHIP_{n}" for n, m in METHODS.items() if m.checkpoint] + list(METHODS)


def resolve(trainer: str) -> tuple[type[FeatureMethod], bool]:
    """The method class of a trainer name and whether SHIP's synthetic features join its training."""
    ship = trainer.startswith("SHIP_") and trainer[5:] in METHODS and bool(METHODS[trainer[5:]].checkpoint)
    method = METHODS.get(trainer[5:] if ship else trainer)
    if method is None:
        raise ShipError(f"unknown trainer {trainer!r}; expected one of {', '.join(trainer_names())}")
    return method, ship
