"""CoOp (Zhou et al., IJCV 2022): a unified context of M learnable vectors, "[ctx] classname .", trained by
cross-entropy of 100 · cos(image feature, class text feature). Under SHIP the classes are base + label-only,
and every batch of real features is joined by as many synthetic ones (the SHIP code's recipe)."""
from __future__ import annotations

from yacs.config import CfgNode as CN

from ..classifiers import PromptLearner
from ..training import train_prompt_learner
from .base import FeatureMethod, register


def coop_defaults() -> CN:
    """The SHIP code's CoOp recipe (``configs/trainers/SHIP/coop_vit_b16_c16_ep50.yaml``: CoOp's own)."""
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
    c.WARMUP_EPOCHS = 0  # CoOp's own recipe: 1 epoch at a constant WARMUP_LR
    c.WARMUP_LR = 1e-5
    return c


@register
class CoOp(FeatureMethod):
    name = "CoOp"
    checkpoint = "prompt_learner"
    config = "COOP"

    extra_settings: dict = {}  # a CoOp variant's settings beside CoOp's (KgCoOp's LAMBDA, ProGrad's T)

    @classmethod
    def defaults(cls) -> CN:
        c = coop_defaults()
        for key, value in cls.extra_settings.items():
            c[key] = value
        return c

    def __init__(self, cfg, text_encoder, templates):
        super().__init__(cfg, text_encoder, templates)
        self.learner = self.build_learner()

    def build_learner(self) -> PromptLearner:
        return PromptLearner(self.text_encoder, self.hp.N_CTX, self.hp.CTX_INIT)

    def recipe(self) -> dict:
        h = self.hp
        return dict(epochs=h.EPOCHS, lr=h.LR, batch_size=h.BATCH_SIZE, optimizer=h.OPTIM, momentum=h.MOMENTUM,
                    weight_decay=h.WEIGHT_DECAY, eps=h.EPS, warmup_epochs=h.WARMUP_EPOCHS, warmup_lr=h.WARMUP_LR)

    def epochs(self) -> int:
        return self.recipe()["epochs"]

    def fit(self, inputs) -> None:
        names = inputs.base_names + (inputs.label_only if inputs.synthetic is not None else [])
        train_prompt_learner(self.learner, self.learner.class_prompts(names), inputs.train, inputs.synthetic,
                             objective=self.objective(names), **self.recipe())
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
