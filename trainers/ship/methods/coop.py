"""CoOp (Zhou et al., IJCV 2022): a unified context of M learnable vectors, "[ctx] classname .", trained by
cross-entropy of 100 · cos(image feature, class text feature). Under SHIP the classes are base + label-only,
and every batch of real features is joined by as many synthetic ones (the SHIP code's recipe).

Defaults: the SHIP code's CoOp head; CoOp's own recipe, as the CoCoOp paper ran it for its CoOp rows, is the config
``vit_b16_ctxv1`` (ImageNet: ``vit_b16_ep50_ctxv1``), i.e. :func:`dassl_recipe` with 200 (50) epochs, batch 32."""
from __future__ import annotations

import logging

from yacs.config import CfgNode as CN

from trainers.ship.common.errors import ShipError
from trainers.ship.common.ranges import Choice, Flag, Int, Interval, Num, Positive, Spec, Text
from trainers.ship.model.classifiers import PromptLearner
from trainers.ship.training.loops import HeadTraining, prompt_training
from trainers.ship.training.schedules import LR_SCHEDULERS

from .base import FeatureMethod, register

logger = logging.getLogger("ship")
# The SHIP code's head (main_coop_vae.py): SGD without momentum or weight decay, torch's cosine every iteration, no
# warm-up, every image of an epoch (its loader keeps the last partial batch)
SHIP_HEAD = dict(momentum=0.0, weight_decay=0.0, lr_scheduler="cosine_iter", warmup_epochs=0, drop_last=False)


def coop_defaults() -> CN:
    """The SHIP code's CoOp head (its main_coop_vae.py: SGD 2e-3 without momentum or weight decay, batch 256, 200
    epochs, torch's cosine stepped every iteration, crop 0.5–1)."""
    c = CN()
    c.N_CTX = 4
    c.CTX_INIT = "a photo of a"
    c.EPOCHS = 200  # ImageNet: 20
    c.LR = 2e-3  # ImageNet: 1e-3 with AdamW
    c.BATCH_SIZE = 256
    c.OPTIM = "sgd"  # ImageNet: "adamw"
    c.MOMENTUM = 0.0
    c.WEIGHT_DECAY = 0.0
    c.EPS = 1e-8  # AdamW epsilon; ImageNet: 1e-4
    c.LR_SCHEDULER = "cosine_iter"  # "dassl": constant warm-up, then Dassl's cosine stepped once per epoch
    c.WARMUP_EPOCHS = 0  # CoOp's own recipe: 1 epoch at a constant WARMUP_LR
    c.WARMUP_LR = 1e-5
    c.CROP_SCALE = (0.5, 1.0)  # RandomResizedCrop scale of the features the method trains on
    c.DROP_LAST = False  # the SHIP code's loader keeps an epoch's last partial batch; Dassl's drops it
    return c


def dassl_recipe(epochs: int, batch_size: int, n_ctx: int = 4, ctx_init: str = "a photo of a") -> CN:
    """A CoOp-family recipe as Dassl runs it (CoOp's ``*_ctxv1`` configs, CoCoOp, KgCoOp, ProGrad): SGD 2e-3 with
    Dassl's momentum 0.9 and weight decay 5e-4, one constant warm-up epoch at 1e-5, Dassl's cosine stepped once
    per epoch, Dassl's random-resized-crop scale 0.08–1, and Dassl's train loader, which drops an epoch's last
    partial batch."""
    c = coop_defaults()
    c.N_CTX, c.CTX_INIT, c.EPOCHS, c.BATCH_SIZE = n_ctx, ctx_init, epochs, batch_size
    c.MOMENTUM, c.WEIGHT_DECAY = 0.9, 5e-4
    c.LR_SCHEDULER, c.WARMUP_EPOCHS, c.WARMUP_LR = "dassl", 1, 1e-5
    c.CROP_SCALE = (0.08, 1.0)
    c.DROP_LAST = True
    return c


def coop_ranges() -> dict[str, Spec]:
    """The allowed values of :func:`coop_defaults`."""
    return dict(N_CTX=Int(1, 64), CTX_INIT=Text(), EPOCHS=Int(1), LR=Positive(), BATCH_SIZE=Int(1), OPTIM=Choice(("sgd", "adamw")),
                MOMENTUM=Num(0, 1), WEIGHT_DECAY=Num(0), EPS=Positive(), WARMUP_EPOCHS=Int(0), WARMUP_LR=Num(0),
                LR_SCHEDULER=Choice(LR_SCHEDULERS), CROP_SCALE=Interval(0, 1, low_open=True), DROP_LAST=Flag())


def node_recipe(h: CN) -> dict:
    """The training recipe of a CoOp node (``TRAINER.COOP`` and the nodes built like it), as
    ``training.loops.HeadTraining``'s keyword arguments."""
    return dict(epochs=h.EPOCHS, lr=h.LR, batch_size=h.BATCH_SIZE, optimizer=h.OPTIM, momentum=h.MOMENTUM,
                weight_decay=h.WEIGHT_DECAY, eps=h.EPS, lr_scheduler=h.LR_SCHEDULER, warmup_epochs=h.WARMUP_EPOCHS,
                warmup_lr=h.WARMUP_LR, drop_last=h.DROP_LAST)


def twin_recipe(trainer: str, recipe: dict, setting: str, auto: str) -> dict:
    """The recipe a SHIP twin trains its head with (``TRAINER.SHIP.HEAD_RECIPE`` ``setting``; ``auto``: the method's
    choice), and one log line naming it.

    ``ship``: an SGD recipe trains as the SHIP code trains its CoOp head (:data:`SHIP_HEAD`), keeping the method's
    epochs, batch size, learning rate, context and loss; an AdamW recipe (the SHIP code's ImageNet head) is kept.
    ``method``: the method's own recipe (e.g. Dassl's momentum 0.9, weight decay, warm-up and per-epoch cosine)."""
    head_recipe = auto if setting == "auto" else setting
    if head_recipe not in ("ship", "method"):
        raise ShipError(f"unknown TRAINER.SHIP.HEAD_RECIPE {setting!r}; expected auto, ship or method")
    changed = {k: v for k, v in SHIP_HEAD.items() if recipe[k] != v} if recipe["optimizer"] == "sgd" else {}
    if head_recipe == "method" or not changed:
        logger.info(f"{trainer}: head recipe {head_recipe} (TRAINER.SHIP.HEAD_RECIPE): the method's own "
                    f"({recipe['optimizer']}, momentum {recipe['momentum']}, {recipe['lr_scheduler']})")
        return recipe
    logger.info(f"{trainer}: head recipe ship (TRAINER.SHIP.HEAD_RECIPE): the SHIP code's head, "
                + ", ".join(f"{k} {v} (the method's {recipe[k]})" for k, v in changed.items())
                + "; the method's own recipe: TRAINER.SHIP.HEAD_RECIPE method")
    return {**recipe, **changed}


@register
class CoOp(FeatureMethod):
    name = "CoOp"
    checkpoint = "prompt_learner"
    config = "COOP"

    ship_settings = FeatureMethod.ship_settings + ("HEAD_RECIPE",)
    # TRAINER.SHIP.HEAD_RECIPE auto: the SHIP code's head (no momentum: a first gradient far larger than the context
    # pushed on by momentum leaves the class names behind, measured in the behaviour world of the tests)
    twin_head_recipe: str = "ship"
    extra_settings: dict = {}  # a CoOp variant's settings beside CoOp's (KgCoOp's LAMBDA, ProGrad's T)
    extra_ranges: dict = {}  # and their allowed values

    @classmethod
    def recipe_defaults(cls) -> CN:
        """The method's published recipe of :func:`coop_defaults`' keys."""
        return coop_defaults()

    @classmethod
    def defaults(cls) -> CN:
        c = cls.recipe_defaults()
        for key, value in cls.extra_settings.items():
            c[key] = value
        return c

    @classmethod
    def ranges(cls) -> dict[str, Spec]:
        return {**coop_ranges(), **cls.extra_ranges}

    def __init__(self, cfg, text_encoder, templates):
        super().__init__(cfg, text_encoder, templates)
        self.learner = self.build_learner()

    def build_learner(self) -> PromptLearner:
        return PromptLearner(self.text_encoder, self.hp.N_CTX, self.hp.CTX_INIT)

    def recipe(self) -> dict:
        return node_recipe(self.hp)

    def epochs(self) -> int:
        return self.recipe()["epochs"]

    def training(self, inputs) -> HeadTraining:
        """The training of the context over the base classes (SHIP: and the label-only ones, with synthetic
        features), one epoch at a time: :meth:`fit` runs it all; Dassl's ``SHIP_CoOp`` drives its epochs."""
        names = inputs.base_names + (inputs.label_only if inputs.synthetic is not None else [])
        recipe, trainer = self.recipe(), self.trainer_name(inputs.synthetic is not None)
        if inputs.synthetic is not None:
            recipe = twin_recipe(trainer, recipe, self.cfg.TRAINER.SHIP.HEAD_RECIPE, self.twin_head_recipe)
        return prompt_training(self.learner, self.learner.class_prompts(names), inputs.train, inputs.synthetic,
                               self.objective(names), trainer, **recipe)

    def fit(self, inputs) -> None:
        self.training(inputs).run()
        self.learner.eval()

    def objective(self, names: list[str]):
        """The training loss over the classes ``names`` (training.Objective); None: cross-entropy."""
        return None

    def scorer(self, classes):
        prompts = self.learner.class_prompts(classes.names)
        return lambda f: self.learner.logits(prompts, f)  # CoCoOp: text features of each image's own context

    def state_dict(self) -> dict:
        return self.learner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.learner.load_state_dict(state)
        self.learner.eval()
