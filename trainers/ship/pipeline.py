"""The three protocols on cached features, for ZeroshotCLIP, CoOp, CoCoOp, SHIP_CoOp, TipAdapter and SHIP_TipAdapter.

- Base-to-new: few-shot images of the base classes train the method; base test images are scored
  among the base classes, new test images among the new classes, and H = 2·base·new / (base + new).
- Generalized zero-shot (``DATASET.SUBSAMPLE_CLASSES gzsl``): every test image against base + new
  classes in one label space; seen / unseen / H of the mean per-class accuracies.
- Cross-dataset transfer (``DATASET.LABEL_ONLY_FROM``): every class of the source dataset is a base
  class and the label-only classes are the target datasets' class names; the trained run is then
  evaluated (``model_dir``) on each target's test set over all its classes.

The label-only classes are what SHIP synthesises features for. Nothing is selected on test data:
every stage runs its full schedule once.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from yacs.config import CfgNode

from datasets.catalog import load_dataset
from datasets.image_folder import read_image_folder
from datasets.splits import DatasetSplits, base_new_split, few_shot_splits

from .classifiers import ConditionalPromptLearner, PromptLearner, cosine_logits, normalised_name, zero_shot_weights
from .clip_loader import LoadedClip, load_clip
from .errors import ShipError
from .features import FeatureCache, FeatureSet
from .generator import ShipGenerator
from .metrics import classification_report, gzsl_report, harmonic_mean, log_report
from .runtime import StageMeter, atomic_save, atomic_write_json, resolve_device, seed_everything, setup_logger
from .synthesis import SyntheticStream, synthesize_per_class
from .tip_adapter import INIT_ALPHA, SEARCH_SCALE, TipAdapter, finetune_keys, search_alpha_beta
from .text_encoder import TextEncoder
from .training import train_generator, train_prompt_learner

TRAINERS = ("SHIP_CoOp", "CoOp", "CoCoOp", "ZeroshotCLIP", "SHIP_TipAdapter", "TipAdapter")
logger = logging.getLogger("ship")


@dataclass
class SplitFeatures:
    """Cached features of one class split: base classes (trained on and evaluated), new classes
    (evaluated; their labels start at 0) and label-only classes (known by name, synthesised by SHIP)."""

    base_names: list[str]
    new_names: list[str]
    train: FeatureSet | None  # few-shot base images, K augmented passes (None when only evaluating)
    test_base: FeatureSet
    test_new: FeatureSet
    templates: list[str]  # the dataset's zero-shot prompts
    val: FeatureSet | None = None  # few-shot validation images of the base classes (Tip-Adapter's search)
    dataset: str = ""
    label_only: list[str] | None = None  # classes known by name only (SHIP synthesises them); default: new_names

    def __post_init__(self) -> None:
        if self.label_only is None:
            self.label_only = list(self.new_names)


def load_fewshot_dataset(cfg: CfgNode) -> DatasetSplits:
    """``DATASET.NAME`` from the catalog (CoOp's layouts under ``DATASET.ROOT``) or ``ImageFolder``,
    with CoOp's few-shot subsets of train and val."""
    shots, seed = cfg.DATASET.NUM_SHOTS, cfg.SEED
    if cfg.DATASET.NAME == "ImageFolder":
        folder = read_image_folder(cfg.DATASET.ROOT, cfg.DATASET.SPLIT_FILE or None)
        return few_shot_splits(folder, shots, seed)
    if shots < 1:
        raise ShipError(f"shots must be a positive number of images per class; got {shots}")
    return load_dataset(cfg.DATASET.NAME, cfg.DATASET.ROOT, shots, seed)


def cross_dataset_label_only(sources: list[str], root: str, known: list[str]) -> list[str]:
    """The label-only classes of a cross-dataset run: the class names of each source, in order, once each,
    without those in ``known`` (the source dataset's own classes).

    A source is a dataset of the catalog (read under ``root``) or a ``.txt`` file of class names, one per line.
    """
    names, seen = [], {normalised_name(n) for n in known}
    for source in sources:
        if source.endswith(".txt"):
            path = Path(source).expanduser()
            if not path.is_file():
                raise ShipError(f"class-name file not found: {path} (DATASET.LABEL_ONLY_FROM: dataset names or .txt files)")
            classnames = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        else:
            classnames = load_dataset(source, root).classnames
        fresh = [n for n in classnames if normalised_name(n) not in seen]
        seen.update(normalised_name(n) for n in fresh)
        names += fresh
        logger.info(f"label-only classes from {source}: {len(fresh)} of {len(classnames)} (the rest are known already)")
    return names


def prepare_features(cfg: CfgNode, dataset: DatasetSplits, clip_model: LoadedClip, device: torch.device,
                     with_train: bool = True, with_val: bool = False, label_only: list[str] | None = None) -> SplitFeatures:
    """The class split and cached features of the test images, of the few-shot base images
    (``with_train``; evaluation alone needs none) and of the base validation images (``with_val``).

    Without ``label_only`` the classes split into base and new halves; with it (cross-dataset) every
    class is a base class and ``label_only`` names the classes to synthesise.
    """
    if label_only is None:
        base, new = base_new_split(dataset.num_classes, cfg.DATASET.NUM_BASE or dataset.num_base)
    else:
        base, new = list(range(dataset.num_classes)), []
    num_base = len(base)
    cache = FeatureCache(cfg.CACHE_DIR)

    def extract(items, split: str, **kwargs) -> FeatureSet:
        return cache.get_or_extract(clip_model, [i.path for i in items], [i.label for i in items], device,
                                    dataset=dataset.name, split=split, batch_size=cfg.DATALOADER.BATCH_SIZE,
                                    num_workers=cfg.DATALOADER.NUM_WORKERS, **kwargs)

    train = val = None
    if with_train:
        train = extract([i for i in dataset.train if i.label < num_base], "train", shots=cfg.DATASET.NUM_SHOTS,
                        seed=cfg.SEED, passes=cfg.TRAINER.SHIP.AUG_PASSES, augment=True,
                        aug_scale=tuple(cfg.TRAINER.SHIP.AUG_SCALE))
    test = extract(dataset.test, "test")
    if with_val and with_train:
        val = extract([i for i in dataset.val if i.label < num_base], "val", shots=cfg.DATASET.NUM_SHOTS, seed=cfg.SEED)
    is_base = test.labels < num_base
    return SplitFeatures(
        base_names=[dataset.classnames[c] for c in base],
        new_names=[dataset.classnames[c] for c in new],
        train=train,
        test_base=test.subset(is_base),
        test_new=test.subset(~is_base, label_offset=num_base),
        templates=dataset.templates,
        val=val,
        dataset=dataset.name,
        label_only=label_only,
    )


def _fingerprint(cfg: CfgNode, clip_model: LoadedClip, stage: str) -> str:
    """What a stage's checkpoint depends on: data, backbone, seed and hyper-parameters (not which
    classes are evaluated: a base, new, all or gzsl evaluation reuses the same trained stages; nor
    the feature map)."""
    dataset = {k: v for k, v in cfg.DATASET.items() if k != "SUBSAMPLE_CLASSES"}
    ship = {k: v for k, v in cfg.TRAINER.SHIP.items() if k != "FEATURE_MAP"}  # a figure, drawn after training
    relevant = {"stage": stage, "clip": clip_model.identity, "seed": cfg.SEED, "dataset": dataset, "ship": ship}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


def read_checkpoint(checkpoint: Path) -> dict:
    """A checkpoint written by :func:`trained_or_loaded`: ``state_dict``, ``epoch``, ``fingerprint``."""
    if not checkpoint.is_file():
        raise ShipError(f"checkpoint not found: {checkpoint} (train first, or check --model-dir and --load-epoch)")
    try:
        return torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ShipError(f"corrupt checkpoint {checkpoint} ({type(exc).__name__}: {exc}); delete it to retrain") from None


def trained_or_loaded(module: torch.nn.Module, checkpoint: Path, fingerprint: str, epochs: int, train: Callable[[], object]) -> None:
    """Load ``module`` from a finished checkpoint of the same run, else train it and save one atomically.

    Either way the random state is then reseeded from the stage's fingerprint, so the stages after
    it draw the same numbers whether this one was trained or loaded: a resumed run ends as an
    uninterrupted one would.
    """
    loaded = False
    if checkpoint.is_file():
        blob = read_checkpoint(checkpoint)
        if blob.get("fingerprint") == fingerprint:
            module.load_state_dict(blob["state_dict"])
            logger.info(f"Loaded finished stage from {checkpoint}")
            loaded = True
        else:
            logger.info(f"{checkpoint} belongs to another configuration; retraining")
    if not loaded:
        train()
        atomic_save({"state_dict": module.state_dict(), "epoch": epochs, "fingerprint": fingerprint}, checkpoint)
        logger.info(f"Checkpoint saved to {checkpoint}")
    seed_everything(int(fingerprint[:8], 16))


def build_generator(cfg: CfgNode, text_encoder: TextEncoder) -> ShipGenerator:
    s = cfg.TRAINER.SHIP
    return ShipGenerator(text_encoder, n_ctx=s.N_CTX, encoder_hidden=s.ENCODER_HIDDEN, mlp_hidden=s.MLP_HIDDEN,
                         latent_dim=s.LATENT_DIM or None, leaky_relu=s.LEAKY_RELU)


def generator_checkpoint(cfg: CfgNode, out: Path) -> Path:
    return out / "generator" / f"model.pth.tar-{cfg.TRAINER.SHIP.GEN_EPOCHS}"


def synthetic_stream(cfg: CfgNode, text_encoder: TextEncoder, clip_model: LoadedClip, train: FeatureSet,
                     base_names: list[str], label_only_names: list[str], out: Path) -> SyntheticStream:
    """Fit the SHIP generator on the base features (or load the finished stage from ``out``) and
    return the stream of synthetic features of the label-only classes, labelled after the base classes."""
    s = cfg.TRAINER.SHIP
    generator = build_generator(cfg, text_encoder)
    base_prompts = generator.class_prompts(base_names)
    trained_or_loaded(
        generator, generator_checkpoint(cfg, out), _fingerprint(cfg, clip_model, "generator"),
        s.GEN_EPOCHS,
        lambda: train_generator(generator, base_prompts, train, s.GEN_EPOCHS, s.GEN_LR, s.GEN_BATCH_SIZE, s.KL_WEIGHT),
    )
    generator.eval()
    return SyntheticStream(generator, generator.class_prompts(label_only_names), len(base_names), s.SYN_POOL_PER_CLASS)


Scorer = Callable[[torch.Tensor], torch.Tensor]  # features [N, D] -> logits over one set of classes
Head = Callable[[list[str]], Scorer]  # class names -> the scorer over those classes


def load_finished(module, checkpoint: Path) -> None:
    """Evaluation only: load a stage that a training run saved."""
    module.load_state_dict(read_checkpoint(checkpoint)["state_dict"])
    logger.info(f"Loaded {checkpoint.parent.name.replace('_', ' ')} from {checkpoint}")


def build_head(
    cfg: CfgNode, trainer: str, text_encoder: TextEncoder, data: SplitFeatures, clip_model: LoadedClip, out: Path,
    model_dir: Path | None = None, load_epoch: int | None = None,
) -> Head:
    """Train ``trainer`` on the base classes (SHIP: and the label-only ones), or load it from ``model_dir``
    (evaluation only); return what scores features over any list of class names."""
    if trainer in ("TipAdapter", "SHIP_TipAdapter"):
        return _tip_adapter_head(cfg, trainer, text_encoder, data, clip_model, out, model_dir, load_epoch)
    scale = text_encoder.logit_scale
    if trainer == "ZeroshotCLIP":
        templates = _templates(cfg, data)

        def zero_shot(names: list[str]) -> Scorer:
            weights = zero_shot_weights(text_encoder, names, templates)
            return lambda f: cosine_logits(f, weights, scale)

        return zero_shot
    learner = _prompt_learner(cfg, trainer, text_encoder, data, clip_model, out, model_dir, load_epoch)
    learner.eval()

    def prompted(names: list[str]) -> Scorer:
        prompts = learner.class_prompts(names)
        return lambda f: learner.logits(prompts, f)  # CoCoOp: text features of each image's own context

    return prompted


def _templates(cfg: CfgNode, data: SplitFeatures) -> list[str]:
    return list(cfg.DATASET.TEMPLATES) or data.templates


def _prompt_learner(cfg, trainer, text_encoder, data, clip_model, out, model_dir, load_epoch) -> PromptLearner:
    """CoOp, SHIP_CoOp (CoOp over base + label-only classes on real + synthetic features) or CoCoOp,
    trained on the base features or loaded from ``model_dir``."""
    s = cfg.TRAINER.SHIP
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
        return learner

    synthetic = None
    train_names = data.base_names
    if trainer == "SHIP_CoOp" and s.SYNTHESIZE and data.label_only:
        synthetic = synthetic_stream(cfg, text_encoder, clip_model, data.train, data.base_names, data.label_only, out)
        train_names = data.base_names + data.label_only  # SHIP's head covers base and label-only classes
    trained_or_loaded(
        learner, out / checkpoint, _fingerprint(cfg, clip_model, trainer), epochs,
        lambda: train_prompt_learner(learner, learner.class_prompts(train_names), data.train, synthetic, **recipe),
    )
    return learner


def fit_tip_adapter(cfg: CfgNode, synthesize: bool, text_encoder: TextEncoder, clip_model: LoadedClip,
                    train: FeatureSet, val: FeatureSet | None, base_names: list[str], new_names: list[str],
                    templates: list[str], dataset_name: str, out: Path) -> TipAdapter:
    """Tip-Adapter(-F) over base + label-only classes.

    ``dataset_name`` picks Tip-Adapter's per-dataset search range and initial α.

    With ``synthesize`` (SHIP) the label-only classes get synthetic keys; otherwise they have none,
    and the adapter scores them as zero-shot CLIP does. α and β are searched on ``val`` (base classes).
    """
    s = cfg.TRAINER.SHIP
    n_base, names = len(base_names), base_names + new_names
    zero_shot = zero_shot_weights(text_encoder, names, templates)
    scale = text_encoder.logit_scale
    synthetic = None
    if synthesize and new_names:
        stream = synthetic_stream(cfg, text_encoder, clip_model, train, base_names, new_names, out)
        features, labels = synthesize_per_class(stream.generator, stream.prompts, s.TIP_SYN_PER_CLASS or cfg.DATASET.NUM_SHOTS)
        synthetic = (features.cpu(), labels.cpu() + n_base)
    adapter = TipAdapter.build(train, len(names), synthetic, alpha=s.TIP_INIT_ALPHA or INIT_ALPHA.get(dataset_name, 1.0),
                               beta=s.TIP_INIT_BETA)
    adapter.classnames = names
    if s.TIP_FINETUNE:
        classes = slice(None) if synthetic is not None else slice(0, n_base)  # plain: the base label space
        head = TipAdapter(adapter.keys, adapter.values[:, classes], adapter.alpha, adapter.beta)
        finetune_keys(head, train, zero_shot[classes], scale, s.TIP_EPOCHS, s.TIP_LR, s.TIP_BATCH_SIZE, synthetic)
        adapter.keys = head.keys.cpu()
    if val is None or len(val) == 0:
        raise ShipError("Tip-Adapter searches alpha and beta on the validation split, but it has no images")
    search_scale = tuple(s.TIP_SEARCH_SCALE) or SEARCH_SCALE.get(dataset_name, (7.0, 3.0))
    adapter.alpha, adapter.beta, _ = search_alpha_beta(val, zero_shot[:n_base], adapter.keys.to(zero_shot.device),
                                                       adapter.values[:, :n_base].to(zero_shot.device), scale, search_scale)
    return adapter


def _tip_adapter_head(cfg, trainer, text_encoder, data, clip_model, out, model_dir, load_epoch) -> Head:
    """TipAdapter / SHIP_TipAdapter: fit (or load) the adapter; score any classes over their own columns."""
    s = cfg.TRAINER.SHIP
    epochs = s.TIP_EPOCHS if s.TIP_FINETUNE else 0
    adapter = TipAdapter(torch.empty(0), torch.empty(0))
    if model_dir is not None:
        load_finished(adapter, model_dir / "tip_adapter" / f"model.pth.tar-{load_epoch or epochs}")
    else:
        synthesize = trainer == "SHIP_TipAdapter" and s.SYNTHESIZE
        fit = lambda: adapter.load_state_dict(fit_tip_adapter(  # noqa: E731
            cfg, synthesize, text_encoder, clip_model, data.train, data.val, data.base_names, data.label_only,
            _templates(cfg, data), data.dataset, out).state_dict())
        trained_or_loaded(adapter, out / "tip_adapter" / f"model.pth.tar-{epochs}", _fingerprint(cfg, clip_model, trainer),
                          epochs, fit)
    templates = _templates(cfg, data)
    scale = text_encoder.logit_scale

    def scorer(names: list[str]) -> Scorer:
        zero_shot, columns = zero_shot_weights(text_encoder, names, templates), adapter.columns(names)
        return lambda f: adapter.logits(f, zero_shot, scale, columns)

    return scorer


def evaluate_gzsl(data: SplitFeatures, joint: Scorer, device: torch.device) -> dict[str, float]:
    """Generalized zero-shot: every test image against base + new classes; seen / unseen / H (per-class means)."""
    n_base, n_all = len(data.base_names), len(data.base_names) + len(data.new_names)
    features = torch.cat([data.test_base.features[0], data.test_new.features[0]])
    labels = torch.cat([data.test_base.labels, data.test_new.labels + n_base])
    logger.info(f"Evaluate GZSL: {len(labels)} test images, {n_base} seen + {n_all - n_base} unseen classes in one label space")
    with torch.no_grad():
        pred = joint(features.to(device)).argmax(-1)
    log_report(logger, classification_report(pred, labels, n_all))
    report = gzsl_report(pred, labels, n_base, n_all)
    for key in ("seen", "unseen", "hm"):
        logger.info(f"* {key}: {report[key]:.2f}%")
    return {k: report[k] for k in ("seen", "unseen", "hm")}


def evaluate(test: FeatureSet, scorer: Scorer, device: torch.device) -> dict[str, float]:
    with torch.no_grad():
        logits = scorer(test.features[0].to(device))
    return classification_report(logits.argmax(-1), test.labels, logits.shape[1])


PROTOCOLS = {"all": ("base2new", ("base", "new")), "base": ("base2new", ("base",)), "new": ("base2new", ("new",)),
             "gzsl": ("gzsl", ("gzsl",))}


def run(cfg: CfgNode, dataset: DatasetSplits | None = None, model_dir: str | None = None,
        load_epoch: int | None = None) -> dict:
    """Run ``cfg.TRAINER.NAME`` under the protocol ``cfg`` selects; write ``log.txt`` and ``results.json``
    to ``cfg.OUTPUT_DIR``.

    ``dataset`` (few-shot subsets already drawn) replaces reading ``cfg.DATASET``; ``model_dir``
    evaluates the run trained there (``load_epoch``, default the last) instead of training.
    """
    trainer = cfg.TRAINER.NAME
    if trainer not in TRAINERS:
        raise ShipError(f"unknown trainer {trainer!r}; expected one of {', '.join(TRAINERS)}")
    if cfg.SEED < 0:
        raise ShipError(f"seed must be a non-negative integer; got {cfg.SEED}")
    if cfg.DATASET.SUBSAMPLE_CLASSES not in PROTOCOLS:
        raise ShipError(f"unknown DATASET.SUBSAMPLE_CLASSES {cfg.DATASET.SUBSAMPLE_CLASSES!r}; expected all, base, new or gzsl")
    protocol, subsets = PROTOCOLS[cfg.DATASET.SUBSAMPLE_CLASSES]
    cross_dataset = bool(cfg.DATASET.LABEL_ONLY_FROM)
    if cross_dataset:
        if cfg.DATASET.SUBSAMPLE_CLASSES != "all":
            raise ShipError(f"a cross-dataset run (DATASET.LABEL_ONLY_FROM set) evaluates every class; "
                            f"DATASET.SUBSAMPLE_CLASSES must be all, got {cfg.DATASET.SUBSAMPLE_CLASSES!r}")
        protocol, subsets = "xd", ("base",)
    device = resolve_device(cfg.DEVICE)
    meter = StageMeter(device)
    out = Path(cfg.OUTPUT_DIR)
    setup_logger(out)
    if dataset is None:
        dataset = load_fewshot_dataset(cfg)
    logger.info(f"** Config **\n{cfg.dump()}")
    seed_everything(cfg.SEED)
    clip_model = load_clip(cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.WEIGHTS or None, device, cfg.MODEL.BACKBONE.DOWNLOAD_ROOT)
    logger.info(f"Loaded CLIP {clip_model.name} on {device}; dataset {dataset.name}: {dataset.num_classes} classes")
    label_only = None
    if cross_dataset:  # evaluation only needs no label-only classes: the trained run already has them
        label_only = [] if model_dir else cross_dataset_label_only(list(cfg.DATASET.LABEL_ONLY_FROM), cfg.DATASET.ROOT,
                                                                    dataset.classnames)
    meter.done("load")
    data = prepare_features(cfg, dataset, clip_model, device, with_train=model_dir is None,
                            with_val=trainer in ("TipAdapter", "SHIP_TipAdapter"), label_only=label_only)
    meter.done("features")
    logger.info(f"base classes: {len(data.base_names)}, new classes: {len(data.new_names)}, "
                f"label-only classes: {len(data.label_only)}, train images: {len(data.train) if data.train else 0}, "
                f"test base: {len(data.test_base)}, test new: {len(data.test_new)}")

    text_encoder = TextEncoder(clip_model.model)
    seed_everything(cfg.SEED)  # the training draws do not depend on whether features came from the cache
    head = build_head(cfg, trainer, text_encoder, data, clip_model, out, Path(model_dir) if model_dir else None, load_epoch)
    meter.done("train")

    reports = {}
    for split, test, names in (("base", data.test_base, data.base_names), ("new", data.test_new, data.new_names)):
        if split in subsets:
            logger.info(f"Evaluate on the {'' if cross_dataset else split + ' '}classes ({len(names)} classes, test set)")
            reports[split] = evaluate(test, head(names), device)
            log_report(logger, reports[split])
    accuracy = {split: report["accuracy"] for split, report in reports.items()}
    if len(accuracy) == 2:
        accuracy["hm"] = harmonic_mean(accuracy["base"], accuracy["new"])
    if "gzsl" in subsets:
        accuracy = evaluate_gzsl(data, head(data.base_names + data.new_names), device)
    if cross_dataset:
        accuracy = {"accuracy": accuracy["base"]}
        reports = {"all": reports["base"]}
    meter.done("evaluate")
    logger.info("  ".join(f"{k} {v:.2f}" for k, v in accuracy.items()))
    results = {
        "protocol": protocol, "trainer": trainer, "dataset": dataset.name, "backbone": clip_model.name,
        "shots": cfg.DATASET.NUM_SHOTS, "seed": cfg.SEED, "num_base": len(data.base_names), "num_new": len(data.new_names),
        **accuracy, "reports": reports, **meter.summary(),
    }
    if cross_dataset:
        results.update(source=_trained_on(model_dir) or dataset.name, label_only_from=list(cfg.DATASET.LABEL_ONLY_FROM),
                       num_label_only=len(data.label_only))
    atomic_write_json(results, out / "results.json")
    # the generator of this run (not one an earlier run left in the folder), unless a finished stage skipped it
    synthesised = trainer.startswith("SHIP_") and cfg.TRAINER.SHIP.SYNTHESIZE and data.label_only and model_dir is None
    if cfg.TRAINER.SHIP.FEATURE_MAP and synthesised and generator_checkpoint(cfg, out).is_file():
        path = write_feature_map(cfg, text_encoder, data, out)
        logger.info(f"Map of real and synthetic features: {path}")
    return results


@torch.no_grad()
def write_feature_map(cfg: CfgNode, text_encoder: TextEncoder, data: SplitFeatures, out: Path, per_class: int = 30) -> Path:
    """``feature_map.png``: PCA maps of real and synthetic features of up to ``TRAINER.SHIP.FEATURE_MAP`` base
    classes (real: few-shot training images) and label-only classes (real: test images, shown, never used)."""
    from .plots import feature_map  # matplotlib only when a map is drawn

    generator = build_generator(cfg, text_encoder)
    load_finished(generator, generator_checkpoint(cfg, out))
    generator.eval()
    k = cfg.TRAINER.SHIP.FEATURE_MAP

    def panel(title: str, names: list[str], real: FeatureSet):
        keep = torch.cat([torch.nonzero(real.labels == c).flatten()[:per_class] for c in range(min(k, len(names)))])
        synthetic, labels = synthesize_per_class(generator, generator.class_prompts(names[:k]), per_class)
        return title, real.features[0][keep], real.labels[keep], synthetic.cpu(), labels.cpu(), names[:k]

    panels = [panel("base classes: real few-shot training features", data.base_names, data.train)]
    if len(data.test_new) and data.label_only == data.new_names:
        panels.append(panel("label-only classes: real test features (never trained on)", data.new_names, data.test_new))
    return feature_map(panels, out / "feature_map.png", title=f"{data.dataset}: real (o) vs SHIP synthetic (x) features")


def _trained_on(model_dir: str | None) -> str | None:
    """The dataset a finished run in ``model_dir`` was trained on (from its results.json), if known."""
    path = Path(model_dir or "") / "results.json"
    return json.loads(path.read_text()).get("dataset") if model_dir and path.is_file() else None
