"""Each method's published recipe: Dassl's learning-rate schedule, KgCoOp's regulariser, ProGrad's projection and
context initialisation, CoOp's context rule, Tip-Adapter's search on the whole val split and Tip-Adapter-F's epochs,
and each recipe's crop scale. Every official definition is computed here independently of the code under test."""
import json
import math
import random
from operator import attrgetter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from datasets.fewshot_cache import few_shot_subsets
from datasets.splits import Item, val_from_train
from trainers.ship.common.errors import ShipError
from trainers.ship.common.known_datasets import IMAGENET_TEMPLATES
from trainers.ship.common.runtime import OptimizerStep, project_conflicting
from trainers.ship.config import build_cfg, check_settings, get_cfg_defaults
from trainers.ship.data.classes import Classes
from trainers.ship.data.features import FeatureSet
from trainers.ship.methods.clip_adapter import CLIPAdapter
from trainers.ship.methods.kgcoop import KgCoOp, knowledge_distance
from trainers.ship.methods.prograd import ProGrad
from trainers.ship.methods.tip_adapter import TipAdapter
from trainers.ship.model.classifiers import PromptLearner, zero_shot_weights
from trainers.ship.model.text_encoder import tokenize
from trainers.ship.run.protocol_data import crop_scales, load_fewshot_dataset, prepare_features
from trainers.ship.training.loops import epoch_batches, train_prompt_learner
from trainers.ship.training.schedules import build_schedule, epoch_steps
from trainers.ship.training.tip_cache import finetune_epochs, search_alpha_beta, search_grid

from .helpers import make_world, write_image_folder

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "trainers" / "SHIP"
DASSL = json.loads((Path(__file__).parent / "data" / "dassl_lr_schedule.json").read_text())


# ----------------------------------------------------------------------------------------- Dassl's schedule
def dassl_closed_form(epoch: int, lr: float, epochs: int, warmup: int, warmup_lr: float) -> float:
    """Dassl's ConstantWarmupScheduler over CosineAnnealingLR(T_max=MAX_EPOCH) with WARMUP_RECOUNT: the cosine's
    own epoch counter starts at the end of the warm-up."""
    return warmup_lr if epoch < warmup else 0.5 * lr * (1 + math.cos(math.pi * (epoch - warmup) / epochs))


@pytest.mark.parametrize("epochs", [10, 200])
def test_dassl_schedule_lr_per_epoch(epochs):
    recorded = DASSL["lr_per_epoch"][str(epochs)]  # Dassl's own scheduler, run once (tests/data)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2e-3)
    schedule = build_schedule(opt, "dassl", epochs, steps_per_epoch=3, warmup_epochs=1, warmup_lr=1e-5)
    ours = []
    for _ in range(epochs):
        seen = set()
        for _ in range(3):
            seen.add(opt.param_groups[0]["lr"])
            opt.step()
            schedule.after_step()
        assert len(seen) == 1  # constant within an epoch
        ours.append(seen.pop())
        schedule.after_epoch()
    assert ours == pytest.approx(recorded, rel=1e-9, abs=1e-12)
    assert ours == pytest.approx([dassl_closed_form(e, 2e-3, epochs, 1, 1e-5) for e in range(epochs)], rel=1e-9)


def test_per_iteration_cosine_of_the_ship_code():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2e-3)
    schedule = build_schedule(opt, "cosine_iter", epochs=4, steps_per_epoch=5)
    lrs = []
    for _ in range(4):
        for _ in range(5):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            schedule.after_step()
        schedule.after_epoch()
    assert lrs == pytest.approx([0.5 * 2e-3 * (1 + math.cos(math.pi * i / 20)) for i in range(20)], rel=1e-6)
    with pytest.raises(ShipError, match="WARMUP_EPOCHS is 1"):
        build_schedule(opt, "cosine_iter", 4, 5, warmup_epochs=1)
    with pytest.raises(ShipError, match="unknown LR_SCHEDULER 'step'"):
        build_schedule(opt, "step", 4, 5)


@pytest.fixture
def step_lrs(monkeypatch) -> list[float]:
    """The learning rate of every optimiser step taken during the test."""
    seen, real_call = [], OptimizerStep.__call__

    def spy(self, loss, guide=None, guide_weight=1.0):
        seen.append(self.optimizer.param_groups[0]["lr"])
        return real_call(self, loss, guide, guide_weight)

    monkeypatch.setattr(OptimizerStep, "__call__", spy)
    return seen


def test_training_follows_dassl_schedule(text_encoder, step_lrs):
    world = make_world(text_encoder, 0, shots=2)  # 12 images: 3 steps per epoch at batch 4
    seen = step_lrs
    learner = PromptLearner(text_encoder)
    train_prompt_learner(learner, learner.class_prompts(world.base_names), world.train, epochs=4, lr=2e-3, batch_size=4,
                         lr_scheduler="dassl", warmup_epochs=1, warmup_lr=1e-5)
    expected = [dassl_closed_form(e, 2e-3, 4, 1, 1e-5) for e in range(4) for _ in range(3)]
    assert seen == pytest.approx(expected, rel=1e-9)


def test_every_dassl_style_recipe_uses_dassl_schedule_and_crop():
    cfg = get_cfg_defaults()
    for node in ("COCOOP", "KGCOOP", "PROGRAD", "CLIPADAPTER"):
        hp = cfg.TRAINER[node]
        assert (hp.LR_SCHEDULER, hp.WARMUP_EPOCHS, hp.WARMUP_LR, tuple(hp.CROP_SCALE)) == ("dassl", 1, 1e-5, (0.08, 1.0)), node
    ship = build_cfg([str(CONFIGS / "vit_b16.yaml")])
    assert (ship.TRAINER.COOP.LR_SCHEDULER, tuple(ship.TRAINER.COOP.CROP_SCALE)) == ("cosine_iter", (0.5, 1.0))
    imagenet = build_cfg([str(CONFIGS / "vit_b16_imagenet.yaml")])
    assert (imagenet.TRAINER.COOP.OPTIM, imagenet.TRAINER.COOP.WEIGHT_DECAY) == ("adamw", 0.01)
    for name, epochs in (("vit_b16_ctxv1.yaml", 200), ("vit_b16_ep50_ctxv1.yaml", 50)):
        c = build_cfg([str(CONFIGS / name)]).TRAINER.COOP
        assert (c.N_CTX, c.CTX_INIT, c.OPTIM, c.LR, c.MOMENTUM, c.WEIGHT_DECAY, c.BATCH_SIZE, c.EPOCHS) == \
            (4, "a photo of a", "sgd", 0.002, 0.9, 0.0005, 32, epochs)
        assert (c.LR_SCHEDULER, c.WARMUP_EPOCHS, c.WARMUP_LR, tuple(c.CROP_SCALE)) == ("dassl", 1, 1e-5, (0.08, 1.0))


# ----------------------------------------------------------------------------------------- the last batch
def dassl_train_batches(n: int, batch_size: int) -> int:
    """Dassl's build_data_loader for training: a DataLoader with drop_last=(len(data_source) >= batch_size)."""
    return len(torch.utils.data.DataLoader(range(n), batch_size=batch_size, drop_last=n >= batch_size))


def kept_batches(n: int, batch_size: int) -> int:
    """The SHIP and Tip-Adapter code's loaders: drop_last=False."""
    return len(torch.utils.data.DataLoader(range(n), batch_size=batch_size, drop_last=False))


@pytest.mark.parametrize("n,batch_size", [(12, 4), (13, 4), (3, 4), (100, 32), (1600, 256)])
def test_epoch_batches_drop_the_last_partial_batch_as_dassl(n, batch_size):
    train = FeatureSet(torch.randn(2, n, 3), torch.zeros(n, dtype=torch.long))
    for drop_last, reference in ((True, dassl_train_batches), (False, kept_batches)):
        sizes = [len(y) for _, y in epoch_batches(train, batch_size, torch.device("cpu"), drop_last)]
        assert len(sizes) == epoch_steps(n, batch_size, drop_last) == reference(n, batch_size)
        assert sizes == [batch_size] * (n // batch_size) if drop_last and n >= batch_size else sum(sizes) == n


@pytest.mark.parametrize("drop_last", [True, False])
def test_prompt_learner_steps_and_schedule_length_follow_drop_last(text_encoder, step_lrs, drop_last):
    world = make_world(text_encoder, 0, shots=2)  # 12 images at batch 5: Dassl 2 steps an epoch, the SHIP code 3
    n, seen = len(world.train), step_lrs
    learner = PromptLearner(text_encoder)
    train_prompt_learner(learner, learner.class_prompts(world.base_names), world.train, epochs=3, lr=2e-3, batch_size=5,
                         lr_scheduler="cosine_iter", drop_last=drop_last)
    steps = (dassl_train_batches if drop_last else kept_batches)(n, 5)
    assert len(seen) == 3 * steps  # and the per-iteration cosine spans exactly those steps
    assert seen == pytest.approx([0.5 * 2e-3 * (1 + math.cos(math.pi * i / (3 * steps))) for i in range(3 * steps)])


def test_dassl_based_recipes_drop_the_last_batch_and_the_ship_code_keeps_it():
    cfg = get_cfg_defaults()
    assert [cfg.TRAINER[n].DROP_LAST for n in ("COCOOP", "KGCOOP", "PROGRAD", "CLIPADAPTER")] == [True] * 4
    assert cfg.TRAINER.COOP.DROP_LAST is False  # the SHIP code's CoOp head
    for name, drop_last in (("vit_b16.yaml", False), ("vit_b16_imagenet.yaml", False), ("vit_b16_ctxv1.yaml", True),
                            ("vit_b16_ep50_ctxv1.yaml", True), ("coop_vit_b16_c16_ep50.yaml", True)):
        assert build_cfg([str(CONFIGS / name)]).TRAINER.COOP.DROP_LAST is drop_last, name
    cfg.TRAINER.PROGRAD.DROP_LAST = "yes"  # a declared range: a flag
    with pytest.raises(ShipError, match="TRAINER.PROGRAD.DROP_LAST"):
        check_settings(cfg)


# ----------------------------------------------------------------------------------------------- KgCoOp
def test_kgcoop_regulariser_is_one_minus_mean_cosine():
    g = torch.Generator().manual_seed(0)
    learned, hand = torch.randn(5, 8, generator=g) * 3, torch.randn(5, 8, generator=g)
    cos = [(learned[i] @ hand[i]) / (learned[i].norm() * hand[i].norm()) for i in range(5)]
    reference = 1 - sum(cos) / 5
    assert knowledge_distance(learned, hand).item() == pytest.approx(reference.item(), rel=1e-5)


def test_kgcoop_objective_and_recipe(text_encoder):
    cfg = get_cfg_defaults()
    cfg.DATASET.NAME = "DescribableTextures"
    hp = cfg.TRAINER.KGCOOP
    assert (hp.EPOCHS, hp.BATCH_SIZE, hp.MOMENTUM, hp.WEIGHT_DECAY, hp.N_CTX, hp.CTX_INIT, hp.LAMBDA) == \
        (100, 128, 0.9, 5e-4, 4, "a photo of a", 8.0)
    method = KgCoOp(cfg, text_encoder, ["{} texture."])  # CoOp's DTD template: KgCoOp uses its own
    assert method.own_templates() == ["a photo of a {}, a type of texture."]
    names = ["cat", "dog", "car"]
    prompts = method.learner.class_prompts(names)
    x = F.normalize(torch.randn(4, text_encoder.embed_dim, generator=torch.Generator().manual_seed(1)), dim=-1)
    y = torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        loss = method.objective(names)(method.learner, prompts, x, y).loss
        text = method.learner(prompts)
        hand = text_encoder.encode_text([f"a photo of a {n}, a type of texture." for n in names])
        cos = F.cosine_similarity(text, hand, dim=-1)
        expected = F.cross_entropy(text_encoder.logit_scale * x @ text.t(), y) + 8 * (1 - cos.mean())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


# ----------------------------------------------------------------------------------------------- ProGrad
@pytest.mark.parametrize("lam", [1.0, 0.8])
def test_prograd_projection_with_lambda(lam):
    g_ce = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    g_kl = torch.tensor([[-1.0, 1.0], [0.0, -1.0]])  # conflicting: g_ce . g_kl = -1 - 2 - 3 < 0
    param = torch.nn.Parameter(torch.zeros(2, 2))
    param.grad = g_ce.clone()
    project_conflicting([param], [g_kl], lam)
    b = g_kl.flatten() / g_kl.norm()  # ProGrad: a - lambda (a . b_hat) b_hat where cos(a, b) < 0
    expected = g_ce.flatten() - lam * (g_ce.flatten() @ b) * b
    assert torch.allclose(param.grad.flatten(), expected, atol=1e-6)
    param.grad = g_ce.clone()
    project_conflicting([param], [-g_kl], lam)  # aligned: kept
    assert torch.equal(param.grad, g_ce)


def test_prograd_recipe_templates_and_lambda(text_encoder):
    cfg = get_cfg_defaults()
    cfg.DATASET.NAME = "OxfordPets"
    cfg.TRAINER.PROGRAD.LAMBDA = 0.8
    hp = cfg.TRAINER.PROGRAD
    assert (hp.N_CTX, hp.BATCH_SIZE, hp.EPOCHS, hp.WARMUP_EPOCHS, hp.CTX_INIT) == (16, 32, 100, 1, "auto")
    method = ProGrad(cfg, text_encoder, ["a photo of a {}, a type of pet."])
    assert method.own_templates() == ["a type of pet, a photo of a {}."]
    assert method.init_phrase() == "a type of pet, a photo of a"
    assert method.recipe()["guide_weight"] == 0.8
    assert method.learner.n_ctx == 16
    expected = {"OxfordFlowers": "a type of flower, a photo of a {}.", "FGVCAircraft": "a type of aircraft, a photo of a {}.",
                "DescribableTextures": "a texture of {}.", "Food101": "a type of food, a photo of {}.",
                "ImageNet": "a photo of a {}.", "EuroSAT": "a centered satellite photo of {}."}
    for dataset, template in expected.items():
        cfg.DATASET.NAME = dataset
        assert ProGrad(cfg, text_encoder, ["{}"]).own_templates() == [template], dataset


# --------------------------------------------------------------------------------------- context initialisation
def test_prograd_context_from_a_shorter_phrase(text_encoder, ship_log):
    phrase = "a type of pet, a photo of a"  # 8 words, 9 tokens ("pet" ",")
    learner = PromptLearner(text_encoder, 16, phrase, rule="prograd")
    ids = tokenize([phrase])[0]
    tokens = ids[1 : int(ids.argmax())]
    assert len(tokens) == 9 and learner.ctx.shape[0] == 16
    assert torch.equal(learner.ctx[:8], torch.zeros_like(learner.ctx[:8]))  # the slots before the phrase: zero
    assert torch.allclose(learner.ctx[8:], text_encoder.embed_tokens(tokens[:8]))
    # ProGrad's prompt: "X x8 <phrase> cat." whose tokens after the 16 context slots stay fixed ("a cat." here)
    official = tokenize(["X " * 8 + phrase + " cat."])[0]
    eot = int(official.argmax())
    prompts = learner.class_prompts(["cat"])
    assert torch.allclose(prompts.suffix[0, : eot - 16], text_encoder.embed_tokens(official[17 : eot + 1]))
    assert int(prompts.eot[0]) == eot
    assert any("the last 8 initialised from" in m for m in ship_log)
    with pytest.raises(ShipError, match="N_CTX 4 is smaller than the 8 words"):
        PromptLearner(text_encoder, 4, phrase, rule="prograd")


@pytest.mark.parametrize("phrase,n_ctx", [("a photo of a", 16), ("a good photo of a", 4)])
def test_coop_context_takes_the_phrase_word_count(text_encoder, ship_log, phrase, n_ctx):
    learner = PromptLearner(text_encoder, n_ctx, phrase)
    ids = tokenize([phrase])[0]
    words = len(phrase.split())
    assert learner.n_ctx == words and learner.ctx.shape[0] == words
    assert torch.allclose(learner.ctx, text_encoder.embed_tokens(ids[1 : 1 + words]))
    official = tokenize([f"{phrase} cat."])[0]  # CoOp's prompt: the phrase itself, then the class name
    prompts = learner.class_prompts(["cat"])
    eot = int(official.argmax())
    assert torch.allclose(prompts.suffix[0, : eot - words], text_encoder.embed_tokens(official[1 + words : eot + 1]))
    assert sum(f"has {words} words, so the context has {words} vectors" in m for m in ship_log) == 1


# -------------------------------------------------------------------------------------------- Tip-Adapter
def reference_search(val_x, val_y, zero_shot, keys, values, scale):
    """Tip-Adapter's search_hp: every (beta, alpha) of its grid, the first best val accuracy kept."""
    s_beta, s_alpha = scale
    best = (0.0, None, None)
    for i in range(200):
        beta = i * (s_beta - 0.1) / 200 + 0.1
        for j in range(20):
            alpha = j * (s_alpha - 0.1) / 20 + 0.1
            cache = torch.exp(-(beta - beta * (val_x @ keys.t()))) @ values
            logits = 100.0 * val_x @ zero_shot.t() + alpha * cache
            acc = 100.0 * (logits.argmax(1) == val_y).float().mean().item()
            if acc > best[0]:
                best = (acc, alpha, beta)
    return best


def test_tip_adapter_search_uses_every_val_image():
    g = torch.Generator().manual_seed(13)  # a draw where 4 images per class choose other alpha, beta than 12
    unit = lambda *s: F.normalize(torch.randn(*s, generator=g), dim=-1)  # noqa: E731
    zero_shot, keys = unit(3, 16), unit(6, 16)
    values = F.one_hot(torch.tensor([0, 0, 1, 1, 2, 2]), 3).float()
    val_y = torch.arange(3).repeat_interleave(12)
    val_x = F.normalize(zero_shot[val_y] * 0.1 + keys[val_y * 2] * 0.3 + unit(36, 16), dim=-1)
    whole = FeatureSet(val_x.unsqueeze(0), val_y)
    first4 = whole.subset(torch.cat([torch.arange(c * 12, c * 12 + 4) for c in range(3)]))
    chosen = search_alpha_beta(whole, zero_shot, keys, values, 100.0, (7.0, 3.0))
    acc, alpha, beta = reference_search(val_x, val_y, zero_shot, keys, values, (7.0, 3.0))
    assert chosen == pytest.approx((alpha, beta, acc))
    assert search_alpha_beta(first4, zero_shot, keys, values, 100.0, (7.0, 3.0))[:2] != pytest.approx(chosen[:2])
    assert len(search_grid((7.0, 3.0))[0]) == 200


def test_tip_adapter_run_searches_the_whole_val_split(tmp_path, tiny_clip):
    folder = write_image_folder(tmp_path / "toy", ["cat", "dog", "car", "tree"], per_class=30)  # 6 val per class
    cfg = get_cfg_defaults()
    cfg.DATASET.NAME, cfg.DATASET.ROOT, cfg.DATASET.NUM_SHOTS = "ImageFolder", str(folder), 2
    cfg.TRAINER.NAME, cfg.CACHE_DIR, cfg.TRAINER.SHIP.AUG_PASSES = "TipAdapter", str(tmp_path / "cache"), 1
    dataset = load_fewshot_dataset(cfg)
    assert len(dataset.val) == 4 * 2  # CoOp's few-shot val: min(shots, 4) per class
    data = prepare_features(cfg, dataset, tiny_clip, torch.device("cpu"), with_val=True)
    assert len(data.val) == 2 * 6  # the base classes' whole val split
    assert data.val.labels.tolist() == [0] * 6 + [1] * 6


def dassl_few_shot_draw(items, shots, seed, label=lambda i: i.label):
    """Dassl's generate_fewshot_dataset after set_random_seed(seed): labels in order of first appearance, random.sample
    of ``shots`` items of each (all of a smaller class)."""
    rng, groups = random.Random(seed), {}
    for item in items:
        groups.setdefault(label(item), []).append(item)
    return [x for group in groups.values() for x in (rng.sample(group, shots) if len(group) >= shots else group)]


def test_a_val_split_that_is_the_test_set_is_drawn_from_training_images(tmp_path):
    """ImageNet (CoOp's reader: val = test): the search's val is min(shots, 4) images per class drawn from the
    training images the few-shot set left out, in the core and in the Dassl route (Datum: impath), never a test image."""
    train = [Item(str(tmp_path / f"train/{c}/{n}.jpg"), c, f"c{c}") for c in range(3) for n in range(12)]
    test = [Item(str(tmp_path / f"val/{c}/{n}.jpg"), c, f"c{c}") for c in range(3) for n in range(5)]
    for shots, seed in ((2, 1), (8, 3)):
        few = dassl_few_shot_draw(train, shots, seed)
        expected = dassl_few_shot_draw([i for i in train if i not in few], min(shots, 4), seed)
        drawn = val_from_train(train, few, shots, seed)
        assert drawn == expected and len(drawn) == 3 * min(shots, 4)
        assert not set(drawn) & (set(few) | set(test))
        datums = [SimpleNamespace(impath=i.path, label=i.label) for i in train]
        few_datums = [d for d in datums if d.impath in {i.path for i in few}]
        assert [d.impath for d in val_from_train(datums, few_datums, shots, seed, attrgetter("impath"))] == \
            [i.path for i in expected]
    # the core's reader: the few-shot train as Dassl draws it, the val from the rest, not from val (= test)
    train_few, val_few = few_shot_subsets(tmp_path, train, test, 2, 1, val_from_train=True)
    assert train_few == dassl_few_shot_draw(train, 2, 1)
    assert val_few == dassl_few_shot_draw([i for i in train if i not in train_few], 2, 1) and len(val_few) == 6


def test_tip_adapter_f_epochs_per_dataset(text_encoder, ship_log):
    assert (finetune_epochs(0, "EuroSAT"), finetune_epochs(0, "eurosat"), finetune_epochs(0, "Caltech101")) == (100, 100, 20)
    assert finetune_epochs(7, "EuroSAT") == 7
    assert any("100 epochs (Tip-Adapter's value for EuroSAT" in m for m in ship_log)
    cfg = get_cfg_defaults()
    cfg.DATASET.NAME, cfg.TRAINER.TIPADAPTER.FINETUNE = "EuroSAT", True
    assert TipAdapter(cfg, text_encoder, ["{}"]).epochs() == 100
    cfg.DATASET.NAME = "DescribableTextures"
    assert TipAdapter(cfg, text_encoder, ["{}"]).epochs() == 20


# -------------------------------------------------------------------------------------------- crop scales
def test_each_recipe_trains_on_features_at_its_crop_scale():
    cfg = get_cfg_defaults()
    for trainer, expected in (("SHIP_CoOp", ((0.5, 1.0), None)), ("CoCoOp", ((0.08, 1.0), None)),
                              ("SHIP_KgCoOp", ((0.08, 1.0), (0.5, 1.0))), ("TipAdapter", ((0.5, 1.0), None))):
        cfg.TRAINER.NAME = trainer
        assert crop_scales(cfg) == expected, trainer
    cfg.TRAINER.NAME, cfg.TRAINER.SHIP.SYNTHESIZE = "SHIP_KgCoOp", False
    assert crop_scales(cfg) == ((0.08, 1.0), None)


def test_tip_adapter_crops_at_half_to_one_on_imagenet_too():
    """Tip-Adapter's datasets/imagenet.py: RandomResizedCrop(scale=(0.5, 1)) for the cache and fine-tuning, while
    SHIP's ImageNet generator keeps its 0.08-1 (AUG_SCALE)."""
    official = (0.5, 1.0)
    for config in ("tip_adapter_vit_b16.yaml", "tip_adapter_f_vit_b16.yaml"):
        cfg = build_cfg([str(CONFIGS / config), str(CONFIGS / "vit_b16_imagenet.yaml")], {"TRAINER.NAME": "TipAdapter"})
        assert crop_scales(cfg) == (official, None)
        cfg = build_cfg([str(CONFIGS / config), str(CONFIGS / "vit_b16_imagenet.yaml")], {"TRAINER.NAME": "SHIP_TipAdapter"})
        assert crop_scales(cfg) == (official, (0.08, 1.0))
    # the scripts give the Tip-Adapter trainers vit_b16_imagenet on ImageNet: its Tip-Adapter keys are tip_adapter_vit_b16's
    assert build_cfg([str(CONFIGS / "tip_adapter_vit_b16.yaml")]).TRAINER.TIPADAPTER == \
        build_cfg([str(CONFIGS / "vit_b16_imagenet.yaml")]).TRAINER.TIPADAPTER


# ----------------------------------------------------------------------------------------------- ImageNet
def test_imagenet_epochs_of_prograd_and_clip_adapter():
    """ProGrad's README: rn50_ep50 for ImageNet (rn50_ep100 elsewhere); CLIP-Adapter follows CoOp's COOP.md, whose
    ImageNet configs are *_ep50 (200 epochs elsewhere). vit_b16_imagenet is the recipe the scripts, paper.sh and the
    Dassl route read on ImageNet."""
    imagenet, others = build_cfg([str(CONFIGS / "vit_b16_imagenet.yaml")]), build_cfg([str(CONFIGS / "vit_b16.yaml")])
    assert (imagenet.TRAINER.PROGRAD.EPOCHS, imagenet.TRAINER.CLIPADAPTER.EPOCHS) == (50, 50)
    assert (others.TRAINER.PROGRAD.EPOCHS, others.TRAINER.CLIPADAPTER.EPOCHS) == (100, 200)
    # the rest of each recipe is untouched on ImageNet
    for node in ("PROGRAD", "CLIPADAPTER"):
        assert {k: v for k, v in imagenet.TRAINER[node].items() if k != "EPOCHS"} == \
            {k: v for k, v in others.TRAINER[node].items() if k != "EPOCHS"}


def test_clip_adapter_uses_its_single_prompt_on_imagenet(text_encoder):
    """CLIP-Adapter's CUSTOM_TEMPLATES: ImageNet "a photo of a {}." (not the 7-template ensemble), Pets "a photo of
    a {}, a type of pet."; DATASET.TEMPLATES still overrides."""
    names = ["dog", "sea lion"]
    for dataset, official in (("ImageNet", "a photo of a {}."), ("OxfordPets", "a photo of a {}, a type of pet."),
                              ("DescribableTextures", "{} texture.")):
        cfg = get_cfg_defaults()
        cfg.DATASET.NAME = dataset
        method = CLIPAdapter(cfg, text_encoder, list(IMAGENET_TEMPLATES))
        assert method.templates == [official]
        x = F.normalize(torch.randn(3, text_encoder.embed_dim), dim=-1)
        expected = method.adapter.logits(zero_shot_weights(text_encoder, names, [official]), x)
        assert torch.allclose(method.scorer(Classes(names, names))(x), expected)
    cfg.DATASET.TEMPLATES = ["itap of a {}."]
    assert CLIPAdapter(cfg, text_encoder, ["itap of a {}."]).templates == ["itap of a {}."]


def test_feature_cache_keys_on_the_crop_scale(tmp_path, tiny_clip):
    from trainers.ship.data.features import FeatureCache

    folder = write_image_folder(tmp_path / "imgs", ["cat", "dog"], per_class=2)
    paths = sorted(str(p) for p in folder.rglob("*.jpg"))
    cache = FeatureCache(tmp_path / "cache")
    common = dict(dataset="toy", split="train", passes=1, augment=True, batch_size=4, num_workers=0)
    cache.get_or_extract(tiny_clip, paths, [0] * len(paths), torch.device("cpu"), aug_scale=(0.5, 1.0), **common)
    cache.get_or_extract(tiny_clip, paths, [0] * len(paths), torch.device("cpu"), aug_scale=(0.08, 1.0), **common)
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2


def test_tip_adapter_init_alpha_zero_is_zero_and_unset_is_the_dataset_value(text_encoder, ship_log):
    """TRAINER.TIPADAPTER.INIT_ALPHA 0 is inside its range and is used as 0; None (the default) means Tip-Adapter's
    value for the dataset; a negative value is one error line naming it."""
    cfg = get_cfg_defaults()
    cfg.DATASET.NAME = "Caltech101"
    assert cfg.TRAINER.TIPADAPTER.INIT_ALPHA is None
    assert TipAdapter(cfg, text_encoder, ["{}"]).init_alpha("Caltech101") == 3.0
    zero = build_cfg(opts=["TRAINER.TIPADAPTER.INIT_ALPHA", "0"])
    assert TipAdapter(zero, text_encoder, ["{}"]).init_alpha("Caltech101") == 0.0
    (line,) = [m for m in ship_log if "INIT_ALPHA" in m]  # 0 meant "the dataset's value" before: one line says so
    assert "alpha 0" in line and "leave it unset (None" in line
    assert build_cfg(opts=["TRAINER.TIPADAPTER.INIT_ALPHA", "2.5"]).TRAINER.TIPADAPTER.INIT_ALPHA == 2.5
    with pytest.raises(ShipError, match=r"TRAINER.TIPADAPTER.INIT_ALPHA -1.0 is not allowed; expected a finite number "
                                        r">= 0, or None \(Tip-Adapter's value for the dataset\)"):
        check_settings(build_cfg(opts=["TRAINER.TIPADAPTER.INIT_ALPHA", "-1.0"]))
