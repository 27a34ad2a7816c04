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

import logging
from pathlib import Path

import torch
from yacs.config import CfgNode

from datasets.catalog import load_dataset
from datasets.image_folder import read_image_folder
from datasets.splits import DatasetSplits, base_new_split, few_shot_splits

from .classes import Classes, class_ids, log_duplicate_names, merge_label_only, read_names_file
from .clip_loader import LoadedClip, load_clip
from .errors import ShipError
from .features import FeatureCache, FeatureSet
from .generator import ShipGenerator
from .heads import SplitFeatures, build_head
from .methods import Scorer, resolve
from .metrics import classification_report, gzsl_report, harmonic_mean, log_report
from .run_setup import check_setup, training_setup, write_setup
from .runtime import RunLock, StageMeter, atomic_write_json, resolve_device, seed_everything, setup_logger
from .synthesis import synthesize_per_class
from .text_encoder import TextEncoder

logger = logging.getLogger("ship")


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


def cross_dataset_label_only(sources: list[str], root: str, known: list[str]) -> tuple[list[str], dict[str, int]]:
    """The label-only classes of a cross-dataset run and every source class's column (``classes.merge_label_only``).

    A source is a dataset of the catalog (read under ``root``) or a ``.txt`` file of class names, one per line.
    """
    named = []
    for source in sources:
        if source.endswith(".txt"):
            named.append((source, source, read_names_file(source)))
        else:
            target = load_dataset(source, root)
            named.append((source, target.name, target.classnames))
    return merge_label_only(known, named)


def prepare_features(cfg: CfgNode, dataset: DatasetSplits, clip_model: LoadedClip, device: torch.device,
                     with_train: bool = True, with_val: bool = False,
                     label_only: tuple[list[str], dict[str, int]] | None = None) -> SplitFeatures:
    """The class split and cached features of the test images, of the few-shot base images
    (``with_train``; evaluation alone needs none) and of the base validation images (``with_val``).

    Without ``label_only`` the classes split into base and new halves; with it (cross-dataset: the names
    and the class index of :func:`cross_dataset_label_only`) every class is a base class.
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
    if with_val and with_train:
        val_items = [i for i in dataset.val if i.label < num_base]
        if not val_items:
            raise ShipError(f"{dataset.name} has no validation images of its base classes, but "
                            f"{cfg.TRAINER.NAME} searches its settings on them; give the dataset a val split")
        val = extract(val_items, "val", shots=cfg.DATASET.NUM_SHOTS, seed=cfg.SEED)
    test = extract(dataset.test, "test")
    is_base = test.labels < num_base
    base_classes = Classes([dataset.classnames[c] for c in base], class_ids(dataset.name, base))
    names, index = label_only if label_only is not None else (None, {})
    return SplitFeatures(
        base=base_classes,
        new=Classes([dataset.classnames[c] for c in new], class_ids(dataset.name, new)),
        train=train,
        test_base=test.subset(is_base),
        test_new=test.subset(~is_base, label_offset=num_base),
        templates=dataset.templates,
        val=val,
        dataset=dataset.name,
        label_only=names,
        class_index={**{i: c for c, i in enumerate(base_classes.ids)}, **index} if label_only is not None else {},
    )


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
    """Run ``cfg.TRAINER.NAME`` under the protocol ``cfg`` selects; write ``log.txt``, ``setup.json`` (training)
    and ``results.json`` to ``cfg.OUTPUT_DIR``, which is locked against a second run meanwhile.

    ``dataset`` (few-shot subsets already drawn) replaces reading ``cfg.DATASET``; ``model_dir``
    evaluates the run trained there (``load_epoch``, default the last) instead of training.
    """
    trainer = cfg.TRAINER.NAME
    resolve(trainer)  # an unknown trainer is one error line before anything runs
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
    out = Path(cfg.OUTPUT_DIR)
    lock = RunLock(out)
    try:
        return _run_locked(cfg, trainer, protocol, subsets, cross_dataset, device, out, dataset,
                           Path(model_dir) if model_dir else None, load_epoch)
    finally:
        lock.release()


def _run_locked(cfg, trainer, protocol, subsets, cross_dataset, device, out, dataset, model_dir, load_epoch) -> dict:
    meter = StageMeter(device)
    setup_logger(out)
    if dataset is None:
        dataset = load_fewshot_dataset(cfg)
    logger.info(f"** Config **\n{cfg.dump()}")
    seed_everything(cfg.SEED)
    clip_model = load_clip(cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.WEIGHTS or None, device,
                           cfg.MODEL.BACKBONE.DOWNLOAD_ROOT, cfg.PRECISION)
    logger.info(f"Loaded CLIP {clip_model.name} on {device}, precision {clip_model.precision} "
                f"(PRECISION {cfg.PRECISION}); dataset {dataset.name}: {dataset.num_classes} classes")
    log_duplicate_names(dataset.name, dataset.classnames)
    setup = training_setup(cfg, clip_model, dataset.name, "all" if cross_dataset else "base")
    if model_dir is not None:
        trained = check_setup(model_dir, setup, cfg.ALLOW_SETUP_MISMATCH)
    else:
        write_setup(out, setup)
    label_only = None
    if cross_dataset:  # evaluation only needs no label-only classes: the trained run already has them
        label_only = ([], {}) if model_dir else cross_dataset_label_only(list(cfg.DATASET.LABEL_ONLY_FROM),
                                                                         cfg.DATASET.ROOT, dataset.classnames)
    meter.done("load")
    data = prepare_features(cfg, dataset, clip_model, device, with_train=model_dir is None,
                            with_val=resolve(trainer)[0].uses_val, label_only=label_only)
    meter.done("features")
    logger.info(f"base classes: {len(data.base_names)}, new classes: {len(data.new_names)}, "
                f"label-only classes: {len(data.label_only)}, train images: {len(data.train) if data.train else 0}, "
                f"test base: {len(data.test_base)}, test new: {len(data.test_new)}")

    text_encoder = TextEncoder(clip_model.model, clip_model.precision)
    seed_everything(cfg.SEED)  # the training draws do not depend on whether features came from the cache
    head = build_head(cfg, trainer, text_encoder, data, clip_model, out, model_dir, load_epoch)
    meter.done("train")

    reports = {}
    for split, test, classes in (("base", data.test_base, data.base), ("new", data.test_new, data.new)):
        if split in subsets:
            logger.info(f"Evaluate on the {'' if cross_dataset else split + ' '}classes ({len(classes.names)} classes, test set)")
            reports[split] = evaluate(test, head.score(classes), device)
            log_report(logger, reports[split])
    accuracy = {split: report["accuracy"] for split, report in reports.items()}
    if len(accuracy) == 2:
        accuracy["hm"] = harmonic_mean(accuracy["base"], accuracy["new"])
    if "gzsl" in subsets:
        joint = Classes(data.base.names + data.new.names, data.base.ids + data.new.ids)
        accuracy = evaluate_gzsl(data, head.score(joint), device)
    if cross_dataset:
        accuracy = {"accuracy": accuracy["base"]}
        reports = {"all": reports["base"]}
    meter.done("evaluate")
    logger.info("  ".join(f"{k} {v:.2f}" for k, v in accuracy.items()))
    results = {
        "protocol": protocol, "trainer": trainer, "dataset": dataset.name, "backbone": clip_model.name,
        "shots": cfg.DATASET.NUM_SHOTS, "seed": cfg.SEED, "num_base": len(data.base_names), "num_new": len(data.new_names),
        "precision": clip_model.precision, **accuracy, "reports": reports, **meter.summary(),
    }
    if cross_dataset:
        results.update(source=trained.get("dataset", dataset.name) if model_dir else dataset.name,
                       label_only_from=list(cfg.DATASET.LABEL_ONLY_FROM), num_label_only=len(data.label_only))
    atomic_write_json(results, out / "results.json")
    if cfg.TRAINER.SHIP.FEATURE_MAP and head.generator is not None:  # the generator this run trained or loaded
        path = write_feature_map(cfg.TRAINER.SHIP.FEATURE_MAP, head.generator, data, out)
        logger.info(f"Map of real and synthetic features: {path}")
    return results


@torch.no_grad()
def write_feature_map(classes: int, generator: ShipGenerator, data: SplitFeatures, out: Path, per_class: int = 30) -> Path:
    """``feature_map.png``: PCA maps of real and synthetic features of up to ``classes`` base classes (real: few-shot
    training images) and label-only classes (real: test images, shown, never used)."""
    from .plots import feature_map  # matplotlib only when a map is drawn

    def panel(title: str, names: list[str], real: FeatureSet):
        keep = torch.cat([torch.nonzero(real.labels == c).flatten()[:per_class] for c in range(min(classes, len(names)))])
        synthetic, labels = synthesize_per_class(generator, generator.class_prompts(names[:classes]), per_class)
        return title, real.features[0][keep], real.labels[keep], synthetic.cpu(), labels.cpu(), names[:classes]

    panels = [panel("base classes: real few-shot training features", data.base_names, data.train)]
    if len(data.test_new) and data.label_only == data.new_names:
        panels.append(panel("label-only classes: real test features (never trained on)", data.new_names, data.test_new))
    return feature_map(panels, out / "feature_map.png", title=f"{data.dataset}: real (o) vs SHIP synthetic (x) features")
