"""The method does what the paper claims, in a world where it should.

Each class's image features are made by the tiny CLIP's own text encoder from
a hidden context plus a small per-image bias and noise (tests/helpers.py), so
a class name alone determines where its features lie. Trained on base
classes only, SHIP's generator should place synthetic features of new classes
near the real ones, and the synthetic features should lift CoOp's new-class
accuracy. Single seeds can go either way, so the claims are about the mean
over a few worlds.
"""
import logging

import pytest
import torch
import torch.nn.functional as F
from yacs.config import CfgNode

from trainers.ship.config import get_cfg_defaults
from trainers.ship.data.classes import Classes
from trainers.ship.data.split_features import SplitFeatures
from trainers.ship.methods import METHODS, FitInputs
from trainers.ship.methods.coop import dassl_recipe
from trainers.ship.model.classifiers import PromptLearner, cosine_logits, zero_shot_weights
from trainers.ship.model.generator import VARIANTS, ShipGenerator
from trainers.ship.model.synthesis import SyntheticStream, synthesize_per_class
from trainers.ship.reports.metrics import evaluate, evaluate_gzsl, harmonic_mean
from trainers.ship.training.loops import train_generator, train_prompt_learner
from trainers.ship.training.tip_cache import TipCache, search_alpha_beta

from .helpers import ListHandler, make_world

SEEDS = (0, 1, 2, 3)
HEAD = dict(epochs=100, lr=2e-3, batch_size=32)  # the paper's SGD head; a small batch for 96 images


def class_means(features, labels, n):
    return F.normalize(torch.stack([features[labels == c].mean(0) for c in range(n)]), dim=-1)


def run_world(text_encoder, seed):
    world = make_world(text_encoder, seed)
    n_base, n_new = len(world.base_names), len(world.new_names)
    scale = text_encoder.logit_scale

    def scores(score_base, score_new):
        base = evaluate(world.test_base, score_base, torch.device("cpu"))["accuracy"]
        new = evaluate(world.test_new, score_new, torch.device("cpu"))["accuracy"]
        return base, new, harmonic_mean(base, new)

    def accuracies(learner):
        with torch.no_grad():
            w_base, w_new = learner(learner.class_prompts(world.base_names)), learner(learner.class_prompts(world.new_names))
        return scores(lambda f: cosine_logits(f, w_base, scale), lambda f: cosine_logits(f, w_new, scale))

    def gzsl(learner):
        with torch.no_grad():
            joint = learner(learner.class_prompts(world.base_names + world.new_names))
        data = SplitFeatures(Classes(world.base_names, []), Classes(world.new_names, []), None, world.test_base,
                             world.test_new, [])
        return evaluate_gzsl(data, lambda f: cosine_logits(f, joint, scale), torch.device("cpu"))

    def tip_adapter(synthetic):
        zero_shot = zero_shot_weights(text_encoder, world.base_names + world.new_names, ["a photo of a {}."])
        adapter = TipCache.build(world.train, n_base + n_new, synthetic)
        adapter.alpha, adapter.beta, _ = search_alpha_beta(world.val, zero_shot[:n_base], adapter.keys,
                                                           adapter.values[:, :n_base], scale, (7.0, 3.0))
        b, n = slice(0, n_base), slice(n_base, None)
        return scores(lambda f: adapter.logits(f, zero_shot[b], scale, b), lambda f: adapter.logits(f, zero_shot[n], scale, n))

    torch.manual_seed(seed)
    coop = PromptLearner(text_encoder)
    train_prompt_learner(coop, coop.class_prompts(world.base_names), world.train, **HEAD)

    torch.manual_seed(seed)
    generator = ShipGenerator(text_encoder)
    train_generator(generator, generator.class_prompts(world.base_names), world.train, epochs=100)
    new_prompts = generator.class_prompts(world.new_names)
    synthetic, labels = synthesize_per_class(generator, new_prompts, 64)
    real = class_means(world.test_new.features[0], world.test_new.labels, n_new)
    cos_synthetic = (class_means(synthetic, labels, n_new) * real).sum(-1).mean().item()
    template = zero_shot_weights(text_encoder, world.new_names, ["a photo of a {}."])
    cos_template = (template * real).sum(-1).mean().item()

    ship = PromptLearner(text_encoder)
    stream = SyntheticStream(generator, new_prompts, label_offset=n_base)
    train_prompt_learner(ship, ship.class_prompts(world.base_names + world.new_names), world.train, stream, **HEAD)
    tip_synthetic, tip_labels = synthesize_per_class(generator, new_prompts, 16)
    methods = {}
    for name in ("CLIPAdapter", "KgCoOp", "ProGrad"):  # the registered fine-tuners, plain and with SHIP
        for variant, synthetic in (("plain", None), ("ship", stream)):
            torch.manual_seed(seed)
            method = METHODS[name](method_cfg(), text_encoder, ["a photo of a {}."])
            method.fit(FitInputs(world.train, world.base_names, world.new_names, synthetic))
            methods[(name, variant)] = scores(method.scorer(Classes(world.base_names, [])),
                                              method.scorer(Classes(world.new_names, [])))
    return {"coop": accuracies(coop), "ship": accuracies(ship), "cos_synthetic": cos_synthetic, "cos_template": cos_template,
            "tip": tip_adapter(None), "ship_tip": tip_adapter((tip_synthetic, tip_labels + n_base)),
            "coop_gzsl": gzsl(coop), "ship_gzsl": gzsl(ship), "methods": methods}


def method_cfg():
    """The registered methods' settings for the world: the same schedule as HEAD (the SHIP head's per-iteration cosine
    without warm-up; KgCoOp and ProGrad also without momentum or weight decay, and ProGrad with the world's 4 context
    tokens). Their published recipes (Dassl's warm-up and per-epoch cosine, momentum 0.9) are checked in
    test_recipes.py; in this small world they make the outcome depend on the seed, not on SHIP."""
    cfg = get_cfg_defaults()
    for node in ("KGCOOP", "PROGRAD", "CLIPADAPTER"):
        cfg.TRAINER[node].EPOCHS, cfg.TRAINER[node].LR = HEAD["epochs"], HEAD["lr"]
        cfg.TRAINER[node].BATCH_SIZE = HEAD["batch_size"]
        cfg.TRAINER[node].LR_SCHEDULER, cfg.TRAINER[node].WARMUP_EPOCHS = "cosine_iter", 0
    for node in ("KGCOOP", "PROGRAD"):
        cfg.TRAINER[node].MOMENTUM = cfg.TRAINER[node].WEIGHT_DECAY = 0.0
    cfg.TRAINER.PROGRAD.N_CTX, cfg.TRAINER.PROGRAD.CTX_INIT = 4, "a photo of a"
    return cfg


@pytest.fixture(scope="module")
def outcomes(text_encoder):
    return [run_world(text_encoder, seed) for seed in SEEDS]


def mean(values):
    return sum(values) / len(values)


def test_synthetic_class_means_are_closer_than_the_template(outcomes):
    for o in outcomes:
        print(f"cos(synthetic, real) {o['cos_synthetic']:.3f}  cos(template, real) {o['cos_template']:.3f}")
        assert o["cos_synthetic"] > o["cos_template"]


def test_ship_beats_coop_on_new_classes_and_hm(outcomes):
    coop_new, ship_new = mean([o["coop"][1] for o in outcomes]), mean([o["ship"][1] for o in outcomes])
    coop_hm, ship_hm = mean([o["coop"][2] for o in outcomes]), mean([o["ship"][2] for o in outcomes])
    for seed, o in zip(SEEDS, outcomes):
        print(f"seed {seed}: CoOp base/new/H {o['coop'][0]:.1f}/{o['coop'][1]:.1f}/{o['coop'][2]:.1f}"
              f"  SHIP_CoOp {o['ship'][0]:.1f}/{o['ship'][1]:.1f}/{o['ship'][2]:.1f}")
    print(f"mean new: CoOp {coop_new:.1f}  SHIP_CoOp {ship_new:.1f};  mean H: CoOp {coop_hm:.1f}  SHIP_CoOp {ship_hm:.1f}")
    assert ship_new > coop_new + 5
    assert ship_hm > coop_hm


def test_ship_tip_adapter_beats_tip_adapter_on_new_classes(outcomes):
    """Plain Tip-Adapter has no keys for new classes (it scores them as zero-shot CLIP); SHIP's synthetic keys do."""
    for seed, o in zip(SEEDS, outcomes):
        print(f"seed {seed}: Tip-Adapter base/new/H {o['tip'][0]:.1f}/{o['tip'][1]:.1f}/{o['tip'][2]:.1f}"
              f"  SHIP_TipAdapter {o['ship_tip'][0]:.1f}/{o['ship_tip'][1]:.1f}/{o['ship_tip'][2]:.1f}")
        assert o["ship_tip"][0] == o["tip"][0]  # same alpha, beta and base keys: base accuracy unchanged
    tip_new, ship_new = mean([o["tip"][1] for o in outcomes]), mean([o["ship_tip"][1] for o in outcomes])
    print(f"mean new: Tip-Adapter {tip_new:.1f}  SHIP_TipAdapter {ship_new:.1f}")
    assert ship_new > tip_new + 3


def test_ship_coop_beats_coop_in_generalized_zero_shot(outcomes):
    """One joint label space of seen and unseen classes (the paper's GZSL: CoOp H 55.6 -> CoOp+SHIP 57.1 on CUB)."""
    for seed, o in zip(SEEDS, outcomes):
        print(f"seed {seed}: GZSL CoOp S/U/H {o['coop_gzsl']['seen']:.1f}/{o['coop_gzsl']['unseen']:.1f}/{o['coop_gzsl']['hm']:.1f}"
              f"  SHIP_CoOp {o['ship_gzsl']['seen']:.1f}/{o['ship_gzsl']['unseen']:.1f}/{o['ship_gzsl']['hm']:.1f}")
    coop_h, ship_h = mean([o["coop_gzsl"]["hm"] for o in outcomes]), mean([o["ship_gzsl"]["hm"] for o in outcomes])
    print(f"mean GZSL H: CoOp {coop_h:.1f}  SHIP_CoOp {ship_h:.1f}")
    assert ship_h > coop_h + 5


@pytest.mark.parametrize("name", ["CLIPAdapter", "KgCoOp", "ProGrad"])
def test_ship_lifts_every_registered_fine_tuner_on_new_classes(outcomes, name):
    """SHIP is plug-and-play: the same synthetic features lift each method's new-class accuracy."""
    for seed, o in zip(SEEDS, outcomes):
        plain, ship = o["methods"][(name, "plain")], o["methods"][(name, "ship")]
        print(f"seed {seed}: {name} base/new/H {plain[0]:.1f}/{plain[1]:.1f}/{plain[2]:.1f}"
              f"  SHIP_{name} {ship[0]:.1f}/{ship[1]:.1f}/{ship[2]:.1f}")
    plain_new = mean([o["methods"][(name, "plain")][1] for o in outcomes])
    ship_new = mean([o["methods"][(name, "ship")][1] for o in outcomes])
    print(f"mean new: {name} {plain_new:.1f}  SHIP_{name} {ship_new:.1f}")
    assert ship_new > plain_new + 5


def test_generator_variants_in_the_world(text_encoder):
    """The paper's generator ablation in the synthetic world: SHIP_CoOp's new-class accuracy with each generator
    variant, per world seed. What the ablation is for: training the prompt generator is what helps, so SHIP's
    generator beats its own untrained control (by a margin in the mean over seeds, and on every seed) and the
    feature generator (the paper's "w/o prompts" row; by a margin in the mean: one seed of four goes the other
    way). Measured (mean of 4 seeds, this CPU): prompt 64.1, untrained 42.8, feature 46.1; global_only 62.7,
    local_only 64.6, cvae 63.4 (this world does not separate the prompt family's variants, so nothing is asserted
    about them: the table is printed)."""
    table = {}
    for variant in VARIANTS:
        news = []
        for seed in SEEDS:
            world = make_world(text_encoder, seed)
            torch.manual_seed(seed)
            generator = ShipGenerator(text_encoder, variant=variant)
            if variant != "untrained":  # the control keeps its initial weights
                train_generator(generator, generator.class_prompts(world.base_names), world.train, epochs=50)
            learner = PromptLearner(text_encoder)
            stream = SyntheticStream(generator, generator.class_prompts(world.new_names), label_offset=len(world.base_names))
            train_prompt_learner(learner, learner.class_prompts(world.base_names + world.new_names), world.train, stream,
                                 **{**HEAD, "epochs": 50})
            with torch.no_grad():
                weights = learner(learner.class_prompts(world.new_names))
            news.append(evaluate(world.test_new, lambda f: cosine_logits(f, weights, text_encoder.logit_scale),
                                 torch.device("cpu"))["accuracy"])
        table[variant] = news
    print("SHIP_CoOp new-class accuracy by generator (mean; per seed): " + "  ".join(
        f"{v} {mean(a):.1f} {[round(x, 1) for x in a]}" for v, a in table.items()))
    untrained = [p - c for p, c in zip(table["prompt"], table["untrained"])]  # measured 11.3, 18.8, 7.1, 47.9
    feature = [p - c for p, c in zip(table["prompt"], table["feature"])]  # measured 25.4, 8.3, -5.0, 42.9
    assert mean(untrained) > 10 and min(untrained) > 0, untrained
    assert mean(feature) > 10, feature


# ------------------------------------------------------------------ SHIP twins under their methods' own recipes
TWIN_SEEDS = (0, 1, 2)
# each method's default recipe with fewer epochs; lr 2e-4 on both sides: at 2e-3 this world's tiny text encoder throws
# the plain heads too off their class names (measured: most plain heads collapse), which would test nothing
# CoCoOp's meta-net with a zero last layer on both sides: this world's 2-unit meta-net (D/16 of D 32) at PyTorch's init
# shifts the context by a random vector of norm 3.1-3.5, 20 times the context's (0.15): the initial loss is ~17, the
# heads start on one class (seed 1: 79 of 96 real features, first-epoch loss 17) and seed 1's twin stays collapsed at
# every epochs (2-10) and lr (2e-4 to 2e-3) tried, the plain head at most; with it the first-epoch loss is 0.9-2.8 and
# no CoCoOp head collapses. ProGrad at 60 epochs: at 20, SHIP_ProGrad collapses
TWINS = {"KgCoOp": {"EPOCHS": 30}, "ProGrad": {"EPOCHS": 60}, "CoCoOp": {"EPOCHS": 2, "META_NET_INIT": "zero"},
         "CoOp": dassl_recipe(epochs=30, batch_size=32)}  # CoOp under its ctxv1 recipe (Dassl's momentum 0.9)
TWIN_LR = 2e-4


def twin_outcomes(text_encoder, head_recipe: str = "auto") -> dict:
    """Per method and seed: (base, new, H) of the plain method and of its SHIP twin, each with the method's default
    recipe (fewer epochs, lr :data:`TWIN_LR`), and the collapse warnings of the plain heads and of the twins."""
    handler = ListHandler()
    logging.getLogger("ship").addHandler(handler)
    results = {}
    try:
        for seed in TWIN_SEEDS:
            world = make_world(text_encoder, seed)
            torch.manual_seed(seed)
            generator = ShipGenerator(text_encoder)
            train_generator(generator, generator.class_prompts(world.base_names), world.train, epochs=30)
            stream = SyntheticStream(generator, generator.class_prompts(world.new_names), len(world.base_names))
            for name, settings in TWINS.items():
                cfg = get_cfg_defaults()
                cfg.TRAINER[METHODS[name].config].merge_from_other_cfg(CfgNode({**dict(settings), "LR": TWIN_LR}))
                cfg.TRAINER.SHIP.HEAD_RECIPE = head_recipe
                for variant, synthetic in (("plain", None), ("ship", stream)):
                    torch.manual_seed(seed)
                    method = METHODS[name](cfg, text_encoder, ["a photo of a {}."])
                    method.fit(FitInputs(world.train, world.base_names, world.new_names, synthetic))
                    base = evaluate(world.test_base, method.scorer(Classes(world.base_names, [])), torch.device("cpu"))
                    new = evaluate(world.test_new, method.scorer(Classes(world.new_names, [])), torch.device("cpu"))
                    results[(name, variant, seed)] = (base["accuracy"], new["accuracy"],
                                                      harmonic_mean(base["accuracy"], new["accuracy"]))
    finally:
        logging.getLogger("ship").removeHandler(handler)
    collapsed = [m for m in handler.messages if " collapsed: " in m]
    return {"scores": results, "twins_collapsed": [m for m in collapsed if m.startswith("warning: SHIP_")],
            "plain_collapsed": [m for m in collapsed if not m.startswith("warning: SHIP_")]}


def test_every_ship_twin_beats_its_method_under_the_default_head_recipe(text_encoder):
    """Each twin (TRAINER.SHIP.HEAD_RECIPE auto) is at least its plain method (the method's own recipe) on mean
    new-class accuracy and mean H over the worlds, and no twin's head collapses.
    (Measured with HEAD_RECIPE method, Dassl's momentum 0.9 for every twin: SHIP_CoOp mean H 27.6 < CoOp 40.7, and
    8 collapsed twins.)"""
    out = twin_outcomes(text_encoder)
    for name in TWINS:
        rows = [(out["scores"][(name, "plain", s)], out["scores"][(name, "ship", s)]) for s in TWIN_SEEDS]
        for seed, (plain, ship) in zip(TWIN_SEEDS, rows):
            print(f"seed {seed}: {name} base/new/H {plain[0]:.1f}/{plain[1]:.1f}/{plain[2]:.1f}"
                  f"  SHIP_{name} {ship[0]:.1f}/{ship[1]:.1f}/{ship[2]:.1f}")
        for index, what in ((1, "new"), (2, "H")):
            plain, ship = mean([p[index] for p, _ in rows]), mean([s[index] for _, s in rows])
            assert ship >= plain, f"SHIP_{name} mean {what} {ship:.1f} < {name} {plain:.1f}"
    print("collapsed:", *out["twins_collapsed"], *out["plain_collapsed"], sep="\n")
    assert not out["twins_collapsed"], out
