"""The three protocols on cached features, for every registered trainer (``methods.trainer_names``: each method and
its SHIP twin).

- Base-to-new: few-shot images of the base classes train the method; base test images are scored
  among the base classes, new test images among the new classes, and H = 2·base·new / (base + new).
- Generalized zero-shot (``DATASET.SUBSAMPLE_CLASSES gzsl``): every test image against base + new
  classes in one label space; seen / unseen / H of the mean per-class accuracies.
- Cross-dataset transfer (``DATASET.LABEL_ONLY_FROM``): every class of the source dataset is a base
  class and the label-only classes are the target datasets' class names; the trained run is then
  evaluated (``model_dir``) on each target's test set over all its classes.

The label-only classes are what SHIP synthesises features for. Nothing is selected on test data: every stage
runs its full schedule once, unless ``TEST.SELECTION paper`` asks for the official code's protocol (``heads``):
a SHIP head kept at the generator snapshot of best test H (GZSL: the H of seen / unseen; cross-dataset, which the
official code does not ship: the source's test accuracy), Tip-Adapter-F at its best test epoch. Those results
say ``"selection": "test (as the official code)"``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from yacs.config import CfgNode

from trainers.ship.common.errors import ShipError
from trainers.ship.common.run_log import run_header
from trainers.ship.common.locks import RunLock
from trainers.ship.common.runtime import StageMeter, atomic_write_json, resolve_device, seed_everything, setup_logger
from trainers.ship.common.scalars import report_test, run_scalars
from trainers.ship.config import check_settings
from trainers.ship.data.classes import Classes, log_duplicate_names
from trainers.ship.data.readers import DatasetSplits
from trainers.ship.data.split_features import SplitFeatures
from trainers.ship.methods import Scorer, resolve
from trainers.ship.model.clip_loader import load_clip
from trainers.ship.model.text_encoder import TextEncoder
from trainers.ship.reports.metrics import evaluate, evaluate_gzsl, harmonic_mean, log_report
from trainers.ship.reports.quality import write_synthesis_report
from trainers.ship.run.heads import TestMetric, build_head, templates_of
from trainers.ship.run.protocol_data import cross_dataset_label_only, load_fewshot_dataset, prepare_features
from trainers.ship.run.setup import check_eval_folder, check_run_folder, check_setup, training_setup, write_setup

logger = logging.getLogger("ship")


PROTOCOLS = {"all": ("base2new", ("base", "new")), "base": ("base2new", ("base",)), "new": ("base2new", ("new",)),
             "gzsl": ("gzsl", ("gzsl",))}


def selection_metric(data: SplitFeatures, protocol: str, device) -> TestMetric:
    """``TEST.SELECTION paper``: what the official code maximises on the test split, for a head's score function:
    H of base and new accuracy (GZSL: of seen and unseen), the source's accuracy for cross-dataset training."""
    def metric(score: Callable[[Classes], Scorer]) -> float:
        if protocol == "gzsl":
            return evaluate_gzsl(data, score(Classes(data.base.names + data.new.names, data.base.ids + data.new.ids)),
                                 device)["hm"]
        base = evaluate(data.test_base, score(data.base), device)["accuracy"]
        return base if protocol == "xd" else harmonic_mean(base, evaluate(data.test_new, score(data.new), device)["accuracy"])
    return metric


def require_test_images(data: SplitFeatures, subsets: tuple[str, ...]) -> None:
    """Every split the protocol scores has test images: an accuracy of 0.0 over none is never reported; classes
    of a scored split without test images are named in one log line (the accuracy counts images, not classes)."""
    splits = {"base": ("base",), "new": ("new",), "gzsl": ("base", "new")}
    for split in sorted({split for subset in subsets for split in splits[subset]}):
        test, classes = (data.test_base, data.base) if split == "base" else (data.test_new, data.new)
        if len(test) == 0:
            raise ShipError(f"{data.dataset} has no test images of its {split} classes, so their accuracy cannot be "
                            f"measured; give those classes test images, or score only the other split "
                            f"(DATASET.SUBSAMPLE_CLASSES base / new)")
        missing = sorted(set(range(len(classes.names))) - set(test.labels.tolist()))
        if missing:
            logger.info(f"{len(missing)} of the {len(classes.names)} {split} classes have no test images and are not "
                        f"scored: {', '.join(classes.names[c] for c in missing[:10])}{' ...' if len(missing) > 10 else ''}")


def run(cfg: CfgNode, dataset: DatasetSplits | None = None, model_dir: str | None = None,
        load_epoch: int | None = None) -> dict:
    """Run ``cfg.TRAINER.NAME`` under the protocol ``cfg`` selects; write ``log.txt``, ``setup.json`` (training)
    and ``results.json`` to ``cfg.OUTPUT_DIR``, which is locked against a second run meanwhile.

    ``dataset`` (few-shot subsets already drawn) replaces reading ``cfg.DATASET``; ``model_dir``
    evaluates the run trained there (``load_epoch``, default the last) instead of training.
    """
    trainer = cfg.TRAINER.NAME
    method_class, _ = resolve(trainer)  # an unknown trainer is one error line before anything runs
    check_settings(cfg)  # the one settings check (seed, shots, class subset, every setting): a no-op after build_cfg
    protocol, subsets = PROTOCOLS[cfg.DATASET.SUBSAMPLE_CLASSES]
    cross_dataset = bool(cfg.DATASET.LABEL_ONLY_FROM)
    if cross_dataset:
        if cfg.DATASET.SUBSAMPLE_CLASSES != "all":
            raise ShipError(f"a cross-dataset run (DATASET.LABEL_ONLY_FROM set) evaluates every class; "
                            f"DATASET.SUBSAMPLE_CLASSES must be all, got {cfg.DATASET.SUBSAMPLE_CLASSES!r}")
        protocol, subsets = "xd", ("base",)
    device = resolve_device(cfg.DEVICE)
    out = Path(cfg.OUTPUT_DIR)
    if model_dir:
        check_eval_folder(out, Path(model_dir))
    lock = RunLock(out)
    try:
        with run_scalars(out):  # OUTPUT_DIR/tensorboard, as Dassl's trainers write it
            return _run_locked(cfg, trainer, method_class.uses_val, protocol, subsets, cross_dataset, device, out,
                               dataset, Path(model_dir) if model_dir else None, load_epoch)
    finally:
        lock.release()


def _run_locked(cfg, trainer, uses_val, protocol, subsets, cross_dataset, device, out, dataset, model_dir, load_epoch) -> dict:
    meter = StageMeter(device)
    setup_logger(out)
    logger.info(run_header(device))  # a rerun appends to log.txt: the header's separator starts each run
    if dataset is None:
        dataset = load_fewshot_dataset(cfg)
    logger.info(f"** Config **\n{cfg.dump()}")
    seed_everything(cfg.SEED)
    clip_model = load_clip(cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.WEIGHTS or None, device,
                           cfg.MODEL.BACKBONE.DOWNLOAD_ROOT, cfg.PRECISION)
    logger.info(f"Loaded CLIP {clip_model.name} on {device}, precision {clip_model.precision} "
                f"(PRECISION {cfg.PRECISION}); dataset {dataset.name}: {dataset.num_classes} classes")
    log_duplicate_names(dataset.name, dataset.classnames)
    setup = training_setup(cfg, clip_model, dataset.name, "all" if cross_dataset else "base", dataset.classnames)
    if model_dir is not None:
        trained = check_setup(model_dir, setup, cfg.ALLOW_SETUP_MISMATCH)
    else:
        check_run_folder(out, setup)  # setup.json is written when the run finishes, just before results.json
    label_only = None
    if cross_dataset:  # evaluation only needs no label-only classes: the trained run already has them
        label_only = ([], {}) if model_dir else cross_dataset_label_only(list(cfg.DATASET.LABEL_ONLY_FROM),
                                                                         cfg.DATASET.ROOT, dataset.classnames)
    meter.done("load")
    data = prepare_features(cfg, dataset, clip_model, device, with_train=model_dir is None,
                            with_val=uses_val, label_only=label_only)
    meter.done("features")
    require_test_images(data, subsets)
    logger.info(f"base classes: {len(data.base_names)}, new classes: {len(data.new_names)}, "
                f"label-only classes: {len(data.label_only)}, train images: {len(data.train) if data.train else 0}, "
                f"test base: {len(data.test_base)}, test new: {len(data.test_new)}")

    text_encoder = TextEncoder(clip_model.model, clip_model.precision)
    seed_everything(cfg.SEED)  # the training draws do not depend on whether features came from the cache
    selecting = cfg.TEST.SELECTION == "paper" and model_dir is None
    head = build_head(cfg, trainer, text_encoder, data, clip_model, out, model_dir, load_epoch,
                      selection_metric(data, protocol, device) if selecting else None)
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
    report_test(accuracy)
    results = {
        "protocol": protocol, "trainer": trainer, "dataset": dataset.name, "backbone": clip_model.name,
        "shots": cfg.DATASET.NUM_SHOTS, "seed": cfg.SEED, "num_base": len(data.base_names), "num_new": len(data.new_names),
        "precision": clip_model.precision, **accuracy, "selection": head.selection, "backend": "core", "reports": reports,
        **meter.summary(),
    }
    logger.info(f"selection: {head.selection}")
    if cross_dataset:
        results.update(source=trained.get("dataset", dataset.name) if model_dir else dataset.name,
                       label_only_from=list(cfg.DATASET.LABEL_ONLY_FROM), num_label_only=len(data.label_only))
    if head.generator is not None:  # the generator this run trained or loaded; the real features only reported
        real = data.test_new if data.label_only == data.new_names and len(data.test_new) else None
        write_synthesis_report(out, head.generator, data.label_only, text_encoder, templates_of(cfg, data), real)
    if cfg.TRAINER.SHIP.FEATURE_MAP and head.generator is not None:
        from trainers.ship.reports.feature_map import draw_feature_map  # matplotlib only when a map is drawn

        shown = (data.new_names, data.test_new) if len(data.test_new) and data.label_only == data.new_names else None
        path = draw_feature_map(cfg.TRAINER.SHIP.FEATURE_MAP, head.generator, out, data.dataset, data.base_names,
                                data.train, shown)
        logger.info(f"Map of real and synthetic features: {path}")
    if model_dir is None:
        write_setup(out, setup)
    atomic_write_json(results, out / "results.json")  # the last file: a run is finished when it has results.json
    return results
