"""Each trainer's head: its method (``methods``) fitted on the base features as a fingerprinted stage (SHIP: with
synthetic features of the label-only classes), or loaded from a finished run, and returned as what scores
features over any classes.

Text-based heads (zero-shot CLIP, CoOp, CoCoOp) score a class by its name; Tip-Adapter's cache columns follow
class identities (``classes.class_ids``), never names.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from yacs.config import CfgNode

from trainers.ship.common.errors import ShipError
from trainers.ship.common.runtime import atomic_save, atomic_write_json, seed_everything, stage_seed
from trainers.ship.data.classes import Classes
from trainers.ship.data.split_features import SplitFeatures
from trainers.ship.methods import FitInputs, Scorer, resolve
from trainers.ship.model.clip_loader import LoadedClip
from trainers.ship.model.generator import ShipGenerator
from trainers.ship.model.text_encoder import TextEncoder
from trainers.ship.training.stages import (data_digest, fingerprint, fit_generator, load_finished, stream_of,
                                           trained_or_loaded)

logger = logging.getLogger("ship")
TEST_SELECTED = "test (as the official code)"  # the label of a result chosen on test data (TEST.SELECTION paper)
SELECTION_FILE = "selection.json"
# TEST.SELECTION paper: a head's score function -> its test metric (H; the source accuracy for cross-dataset)
TestMetric = Callable[[Callable[[Classes], Scorer]], float]


@dataclass
class TrainedHead:
    """What scores features over any classes and, for a SHIP trainer, the generator it trained on."""

    score: Callable[[Classes], Scorer]
    generator: ShipGenerator | None = None
    selection: str = "honest"  # or TEST_SELECTED: chosen on test data as the official code chooses


def templates_of(cfg: CfgNode, data: SplitFeatures) -> list[str]:
    return list(cfg.DATASET.TEMPLATES) or data.templates


def build_head(cfg: CfgNode, trainer: str, text_encoder: TextEncoder, data: SplitFeatures, clip_model: LoadedClip,
               out: Path, model_dir: Path | None = None, load_epoch: int | None = None,
               test_metric: TestMetric | None = None) -> TrainedHead:
    """Fit ``trainer``'s method on the base classes (SHIP: with synthetic features of the label-only ones) as a
    fingerprinted stage, or load it from ``model_dir`` (evaluation only).

    With ``test_metric`` (``TEST.SELECTION paper``), as the official code: a SHIP head is fitted on the generator
    of every snapshot epoch and the one with the best test metric kept (``selection.json`` lists them), and a
    method that picks its epoch on test (Tip-Adapter-F) does so."""
    method_class, ship = resolve(trainer)
    templates = templates_of(cfg, data)
    if not method_class.checkpoint or model_dir is not None:
        method = method_class(cfg, text_encoder, templates)
        if method.checkpoint:  # evaluation only: the fitted state is all that is needed
            load_finished(method, model_dir / method.checkpoint / f"model.pth.tar-{method.epochs() if load_epoch is None else load_epoch}")
        if test_metric is not None:
            logger.info(f"TEST.SELECTION paper: {trainer} has nothing to choose on test data (honest)")
        selected = model_dir is not None and (model_dir / SELECTION_FILE).is_file() and \
            json.loads((model_dir / SELECTION_FILE).read_text()).get("selection") == TEST_SELECTED
        return TrainedHead(method.scorer, selection=TEST_SELECTED if selected else "honest")
    snapshots = [None]
    if ship and cfg.TRAINER.SHIP.SYNTHESIZE:
        if not data.label_only:  # never a plain method under a SHIP_ name without a word
            raise ShipError(f"{trainer} has no label-only classes to synthesise (every name of DATASET.LABEL_ONLY_FROM "
                            f"is a class of {data.dataset} already); set TRAINER.SHIP.SYNTHESIZE False to train the "
                            f"plain method")
        snapshots = fit_generator(cfg, text_encoder, clip_model, data.generator_features, data.base_names, out,
                                  snapshots=test_metric is not None)
        logger.info(f"SHIP synthesises features of {len(data.label_only)} label-only classes")
    candidates = []
    for snapshot in snapshots:
        synthetic = stream_of(cfg, snapshot, data.label_only, len(data.base_names)) if snapshot else None
        seed_everything(stage_seed(cfg.SEED, trainer))
        method = method_class(cfg, text_encoder, templates)  # built under the stage's seed (a random context init)
        inputs = FitInputs(data.train, data.base_names, data.label_only, synthetic, data.val, data.dataset,
                           cfg.DATASET.NUM_SHOTS, data.class_index, test_metric)
        digests = dict(train=data_digest(data.train, data.base_names + data.label_only),
                       val=data_digest(data.val) if method.uses_val else None, templates=templates,
                       dataset=data.dataset, class_index=data.class_index,
                       generator=synthetic.fingerprint if synthetic is not None else None,
                       **({"selection": "test"} if test_metric is not None and method.selects_on_test() else {}))
        folder = out / method.checkpoint if len(snapshots) == 1 else out / "selection" / f"generator_{snapshot.epoch}" / method.checkpoint
        head_fp = fingerprint(cfg, clip_model, trainer, **digests)
        trained_or_loaded(method, folder / f"model.pth.tar-{method.epochs()}", head_fp, method.epochs(),
                          lambda: method.fit(inputs))
        candidates.append((method, snapshot, head_fp))
    if test_metric is None:
        (out / SELECTION_FILE).unlink(missing_ok=True)  # a paper run's record in this folder no longer holds
        return TrainedHead(method.scorer, snapshots[-1].generator if snapshots[-1] else None)
    return _select(trainer, method.checkpoint, candidates, test_metric, out)


def _select(trainer: str, checkpoint: str, candidates: list, test_metric: TestMetric, out: Path) -> TrainedHead:
    """The candidate head with the best test metric (the first on ties), saved as the run's head; ``selection.json``."""
    scores = [test_metric(method.scorer) for method, _, _ in candidates]
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    method, snapshot, head_fp = candidates[best]
    chosen_on_test = len(candidates) > 1 or method.selects_on_test()
    record = {"selection": TEST_SELECTED if chosen_on_test else "honest", "trainer": trainer,
              "candidates": [{"generator_epoch": s.epoch if s else None, "test_metric": v}
                             for (_, s, _), v in zip(candidates, scores)],
              "chosen_generator_epoch": snapshot.epoch if snapshot else None, **method.selected_on_test()}
    if len(candidates) > 1:  # the chosen head where an evaluation-only run looks for it
        atomic_save({"state_dict": method.state_dict(), "epoch": method.epochs(), "fingerprint": f"selected:{head_fp}"},
                    out / checkpoint / f"model.pth.tar-{method.epochs()}")
    atomic_write_json(record, out / SELECTION_FILE)
    if chosen_on_test:
        epochs = ", ".join(f"{c['generator_epoch']}: {c['test_metric']:.2f}" for c in record["candidates"])
        logger.info(f"selection: {TEST_SELECTED}: {trainer}'s head chosen on the test split"
                    + (f" (generator epoch: test metric  {epochs}; kept epoch {record['chosen_generator_epoch']})"
                       if len(candidates) > 1 else "") + "; not a number to compare honestly")
    else:
        logger.info(f"TEST.SELECTION paper: {trainer} has nothing to choose on test data here (honest)")
    return TrainedHead(method.scorer, snapshot.generator if snapshot else None, record["selection"])
