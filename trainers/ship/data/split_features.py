"""The cached features of one class split, as the run layer hands them to a head, the metrics and the reports."""
from __future__ import annotations

from dataclasses import dataclass, field

from trainers.ship.data.classes import Classes
from trainers.ship.data.features import FeatureSet


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
    generator_train: FeatureSet | None = None  # SHIP's generator's features at TRAINER.SHIP.AUG_SCALE, when the
    # method's CROP_SCALE differs (None: ``train``)

    @property
    def generator_features(self) -> FeatureSet | None:
        """The few-shot base features the SHIP generator trains on."""
        return self.train if self.generator_train is None else self.generator_train

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
