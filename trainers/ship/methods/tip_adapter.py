"""Tip-Adapter(-F) (Zhang et al., ECCV 2022): a cache of the few-shot features (keys) and their one-hot labels
(values); logits = 100 · f Wᵀ + α · exp(−β (1 − f Kᵀ)) · V, α and β searched on the validation split;
``TRAINER.TIPADAPTER.FINETUNE True`` also fine-tunes the keys (Tip-Adapter-F). Under SHIP the cache gets ``TIP_SYN_PER_CLASS``
synthetic keys per label-only class, so those classes get cache votes too."""
from __future__ import annotations

import logging

import torch
from yacs.config import CfgNode as CN

from trainers.ship.common.errors import ShipError
from trainers.ship.common.ranges import Flag, Int, Interval, Num, Pair, Positive
from trainers.ship.model.classifiers import zero_shot_weights
from trainers.ship.model.synthesis import synthesize_per_class
from trainers.ship.training.tip_cache import (INIT_ALPHA, SEARCH_SCALE, TipCache, finetune_epochs, finetune_keys,
                                              search_alpha_beta)

from .base import FeatureMethod, register

logger = logging.getLogger("ship")


@register
class TipAdapter(FeatureMethod):
    name = "TipAdapter"
    checkpoint = "tip_adapter"
    config = "TIPADAPTER"
    ship_settings = ("SYNTHESIZE", "TIP_SYN_PER_CLASS")
    uses_val = True

    @classmethod
    def defaults(cls):
        c = CN()
        c.FINETUNE = False  # True: Tip-Adapter-F (the keys are fine-tuned)
        c.EPOCHS = 0  # Tip-Adapter-F's epochs; 0: Tip-Adapter's value for the dataset (100 on EuroSAT, 20 others)
        c.LR = 1e-3
        c.BATCH_SIZE = 256
        c.INIT_ALPHA = None  # None (unset): Tip-Adapter's value for the dataset (1.0 for others); 0 is used as 0
        c.INIT_BETA = 1.0
        c.SEARCH_SCALE = ()  # (S_beta, S_alpha); empty: Tip-Adapter's range for the dataset ((7, 3) for others)
        c.CROP_SCALE = (0.5, 1.0)  # its cache's and fine-tuning's RandomResizedCrop, ImageNet included
        return c

    @classmethod
    def ranges(cls):
        return dict(FINETUNE=Flag(), EPOCHS=Int(0), LR=Positive(), BATCH_SIZE=Int(1),
                    INIT_ALPHA=Num(0, unset="Tip-Adapter's value for the dataset"), INIT_BETA=Positive(),
                    SEARCH_SCALE=Pair(Positive()), CROP_SCALE=Interval(0, 1, low_open=True))

    def __init__(self, cfg, text_encoder, templates):
        super().__init__(cfg, text_encoder, templates)
        self.cache = TipCache(torch.empty(0), torch.empty(0))
        self.selected: dict = {}  # what the last fit chose on test data (TEST.SELECTION paper)

    def epochs(self) -> int:
        return finetune_epochs(self.hp.EPOCHS, self.cfg.DATASET.NAME) if self.hp.FINETUNE else 0

    def fit(self, inputs) -> None:
        """The cache over base + label-only classes (columns in that order); the label-only classes have keys
        only under SHIP, and otherwise are scored as zero-shot CLIP scores them. α, β are searched on val."""
        h, syn_per_class = self.hp, self.cfg.TRAINER.SHIP.TIP_SYN_PER_CLASS
        if inputs.val is None or len(inputs.val) == 0:
            raise ShipError(f"Tip-Adapter searches alpha and beta on the validation split, but {inputs.dataset} has no "
                            f"validation images of its base classes")
        n_base, names = len(inputs.base_names), inputs.base_names + inputs.label_only
        zero_shot = zero_shot_weights(self.text_encoder, names, self.templates)
        scale = self.text_encoder.logit_scale
        synthetic = None
        if inputs.synthetic is not None:
            stream = inputs.synthetic
            features, labels = synthesize_per_class(stream.generator, stream.prompts, syn_per_class or inputs.shots)
            synthetic = (features.cpu(), labels.cpu() + n_base)
        cache = TipCache.build(inputs.train, len(names), synthetic, beta=h.INIT_BETA, alpha=self.init_alpha(inputs.dataset))
        cache.class_index = dict(inputs.class_index)
        on_test = inputs.test_metric if h.FINETUNE else None  # TEST.SELECTION paper: the official code's choices
        best = [-1.0, 0, cache.keys]  # test metric, epoch, keys

        def keep_best(epoch: int, keys: torch.Tensor) -> None:  # the official code keeps its best test epoch
            value = self._test_score(cache, keys, cache.alpha, cache.beta, on_test)
            if value > best[0]:
                best[:] = [value, epoch, keys.cpu().clone()]

        if h.FINETUNE:
            classes = slice(None) if synthetic is not None else slice(0, n_base)  # plain: the base label space
            head = TipCache(cache.keys, cache.values[:, classes], cache.alpha, cache.beta)
            finetune_keys(head, inputs.train, zero_shot[classes], scale, self.epochs(), h.LR, h.BATCH_SIZE,
                          synthetic, self.text_encoder.precision, keep_best if on_test else None,
                          trainer=self.trainer_name(synthetic is not None))
            cache.keys = best[2] if on_test else head.keys.cpu()
        search_scale = tuple(h.SEARCH_SCALE) or SEARCH_SCALE.get(inputs.dataset, (7.0, 3.0))
        alpha, beta, _ = search_alpha_beta(inputs.val, zero_shot[:n_base], cache.keys.to(zero_shot.device),
                                           cache.values[:, :n_base].to(zero_shot.device), scale, search_scale)
        self.selected = {}
        if on_test:  # it reports max(best epoch's test accuracy at the initial alpha, beta; the searched ones')
            searched = self._test_score(cache, cache.keys, alpha, beta, on_test)
            self.selected = {"tip_adapter_f_epoch": best[1], "alpha_beta": "searched on val" if searched >= best[0]
                             else "initial (better on test than the searched ones)"}
            if searched < best[0]:
                alpha, beta = cache.alpha, cache.beta
        cache.alpha, cache.beta = alpha, beta
        self.cache = cache

    def init_alpha(self, dataset: str) -> float:
        """TRAINER.TIPADAPTER.INIT_ALPHA, or when unset (None) Tip-Adapter's value for ``dataset`` (1.0 for others).
        0, which earlier versions read as "the dataset's value", is used as 0, with one log line saying so."""
        if self.hp.INIT_ALPHA is None:
            return INIT_ALPHA.get(dataset, 1.0)
        if self.hp.INIT_ALPHA == 0:
            logger.info("TRAINER.TIPADAPTER.INIT_ALPHA 0: the cache starts with alpha 0 (no cache votes); for "
                        "Tip-Adapter's value for the dataset leave it unset (None; earlier versions read 0 as that)")
        return float(self.hp.INIT_ALPHA)

    def _test_score(self, cache: TipCache, keys: torch.Tensor, alpha: float, beta: float, metric) -> float:
        """The test metric of a cache like ``cache`` with ``keys``, ``alpha`` and ``beta`` (``TEST.SELECTION paper``
        only); the method's own cache is left as it is."""
        candidate = TipCache(keys.cpu(), cache.values, alpha, beta, cache.class_index)
        return metric(lambda classes: self.score_with(candidate, classes))

    def selects_on_test(self) -> bool:
        return bool(self.hp.FINETUNE)

    def selected_on_test(self) -> dict:
        return dict(self.selected)

    def scorer(self, classes):
        return self.score_with(self.cache, classes)

    def score_with(self, cache: TipCache, classes):
        """The scorer of ``cache`` over ``classes``."""
        zero_shot = zero_shot_weights(self.text_encoder, classes.names, self.templates)
        columns, scale = cache.columns(classes.ids), self.text_encoder.logit_scale
        return lambda f: cache.logits(f, zero_shot, scale, columns)

    def state_dict(self) -> dict:
        return self.cache.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.cache.load_state_dict(state)
