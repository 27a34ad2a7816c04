"""Synthetic features of label-only classes, drawn from the SHIP generator."""
from __future__ import annotations

import torch

from trainers.ship.common.runtime import autocast
from trainers.ship.model.generator import ShipGenerator
from trainers.ship.model.text_encoder import ClassPrompts


def synthesize_per_class(
    generator: ShipGenerator, prompts: ClassPrompts, n_per_class: int, batch_size: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_per_class`` normalised features for every class of ``prompts``.

    Returns ``(features [C·N, D], labels [C·N])``; labels index ``prompts``.
    """
    device = generator.global_prompts.device
    labels = torch.arange(len(prompts), device=device).repeat_interleave(n_per_class)
    with autocast(generator.text_encoder.precision):
        chunks = [generator.synthesize(prompts, part) for part in labels.split(batch_size)]
    return torch.cat(chunks), labels


class SyntheticStream:
    """Batches of synthetic features for classes drawn uniformly at random.

    ``pool_per_class == 0`` synthesises afresh at every call, like the
    reference code; ``> 0`` synthesises that many features per class once and
    samples from that pool (cheaper on a CPU, nearly the same distribution).
    ``label_offset`` turns prompt indices into labels of the joint label space
    (label-only classes follow the base classes).
    """

    def __init__(self, generator: ShipGenerator, prompts: ClassPrompts, label_offset: int, pool_per_class: int = 0):
        self.generator, self.prompts, self.label_offset = generator, prompts, label_offset
        self.device = generator.global_prompts.device
        self.pool = synthesize_per_class(generator, prompts, pool_per_class) if pool_per_class > 0 else None

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` features and their joint-space labels."""
        if self.pool is not None:
            features, labels = self.pool
            pick = torch.randint(len(labels), (n,), device=self.device)
            return features[pick], labels[pick] + self.label_offset
        labels = torch.randint(len(self.prompts), (n,), device=self.device)
        with autocast(self.generator.text_encoder.precision):
            features = self.generator.synthesize(self.prompts, labels)
        return features, labels + self.label_offset
