"""CoOp (Zhou et al., IJCV 2022): a unified context of M learnable vectors, "[ctx] classname .", trained by
cross-entropy of 100 · cos(image feature, class text feature). Under SHIP the classes are base + label-only,
and every batch of real features is joined by as many synthetic ones (the SHIP code's recipe)."""
from __future__ import annotations

from ..classifiers import PromptLearner
from ..training import train_prompt_learner
from .base import FeatureMethod, register

COOP_SETTINGS = ("COOP_N_CTX", "COOP_CTX_INIT", "COOP_EPOCHS", "COOP_LR", "COOP_BATCH_SIZE", "COOP_OPTIM",
                 "COOP_MOMENTUM", "COOP_WEIGHT_DECAY", "COOP_EPS", "COOP_WARMUP_EPOCHS", "COOP_WARMUP_LR")


@register
class CoOp(FeatureMethod):
    name = "CoOp"
    checkpoint = "prompt_learner"
    settings = COOP_SETTINGS

    def __init__(self, cfg, text_encoder, templates):
        super().__init__(cfg, text_encoder, templates)
        self.learner = self.build_learner()

    def build_learner(self) -> PromptLearner:
        s = self.cfg.TRAINER.SHIP
        return PromptLearner(self.text_encoder, s.COOP_N_CTX, s.COOP_CTX_INIT)

    def recipe(self) -> dict:
        s = self.cfg.TRAINER.SHIP
        return dict(epochs=s.COOP_EPOCHS, lr=s.COOP_LR, batch_size=s.COOP_BATCH_SIZE, optimizer=s.COOP_OPTIM,
                    momentum=s.COOP_MOMENTUM, weight_decay=s.COOP_WEIGHT_DECAY, eps=s.COOP_EPS,
                    warmup_epochs=s.COOP_WARMUP_EPOCHS, warmup_lr=s.COOP_WARMUP_LR)

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
