"""What a run was trained with (``setup.json`` beside its checkpoints), and the check that an evaluation-only
run scores a checkpoint under the same setup: the same CLIP weights, trainer, shots, seed and settings, and
the same dataset unless the run trained on every class of its dataset (cross-dataset transfer)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from yacs.config import CfgNode

from .clip_loader import LoadedClip
from .errors import ShipError
from .runtime import atomic_write_json
from .stages import stage_settings

logger = logging.getLogger("ship")
from .options import option
SETUP_FILE = "setup.json"


def training_setup(cfg: CfgNode, clip_model: LoadedClip, dataset: str, classes: str) -> dict:
    """The setup of a run of ``cfg.TRAINER.NAME`` on ``dataset``; ``classes``: "base" (trained on the base
    classes) or "all" (every class of the dataset, as cross-dataset transfer trains)."""
    trainer = cfg.TRAINER.NAME
    stages = [trainer] + (["generator"] if trainer.startswith("SHIP_") else [])
    return {"trainer": trainer, "dataset": dataset, "shots": cfg.DATASET.NUM_SHOTS, "seed": cfg.SEED,
            "clip": clip_model.identity, "classes": classes,
            "clip_weights": str(Path(cfg.MODEL.BACKBONE.WEIGHTS).expanduser().resolve()) if cfg.MODEL.BACKBONE.WEIGHTS else "", "label_only_from": list(cfg.DATASET.LABEL_ONLY_FROM),
            "settings": {stage: stage_settings(cfg, stage) for stage in stages}}


def write_setup(out: Path, setup: dict) -> None:
    atomic_write_json(setup, out / SETUP_FILE)


def check_setup(model_dir: Path, current: dict, allow_mismatch: bool = False) -> dict:
    """Compare the setup of an evaluation (``current``, see :func:`training_setup`) with the one ``model_dir``
    was trained with; a difference stops with one line naming both sides, unless ``allow_mismatch`` (then
    it is one log line). Returns the trained setup ({} when unknown and allowed)."""
    current = json.loads(json.dumps(current))  # tuples as lists, as setup.json holds them
    if not model_dir.is_dir():
        raise ShipError(f"run folder not found: {model_dir} (--model-dir: the output folder of a finished training run)")
    path = model_dir / SETUP_FILE
    if not path.is_file():
        message = f"{model_dir} has no {SETUP_FILE}, so what it was trained with is unknown"
        if not allow_mismatch:
            raise ShipError(f"{message} (trained by an older version?); pass {option('allow_mismatch')} to evaluate it anyway")
        logger.info(f"{message}; evaluating it anyway (ALLOW_SETUP_MISMATCH)")
        return {}
    trained = json.loads(path.read_text())
    differences = []
    for key in ("clip", "trainer", "shots", "seed"):
        if key == "shots" and current[key] <= 0:  # Dassl's default -1: the evaluation does not say
            continue
        if trained.get(key) != current[key]:
            differences.append(f"{key} {trained.get(key)} (this evaluation: {current[key]})")
    if trained.get("trainer") == current["trainer"]:
        for stage, settings in current["settings"].items():
            before = trained.get("settings", {}).get(stage, {})
            differences += [f"{k} {before.get(k)!r} (this evaluation: {v!r})"
                            for k, v in settings.items() if before.get(k) != v]
    if trained.get("dataset") != current["dataset"]:
        if trained.get("classes") == "all" and current["classes"] == "all":
            logger.info(f"Cross-dataset evaluation: {model_dir} was trained on {trained['dataset']}; evaluating it on "
                        f"every class of {current['dataset']}")
        else:
            differences.append(f"dataset {trained.get('dataset')} (this evaluation: {current['dataset']}; only a run "
                               f"trained on every class of its dataset is evaluated on another)")
    if differences:
        message = f"{model_dir} was trained with " + "; ".join(differences)
        if not allow_mismatch:
            raise ShipError(f"{message}; pass {option('allow_mismatch')} to evaluate it anyway")
        logger.info(f"{message}; evaluating it anyway (ALLOW_SETUP_MISMATCH)")
    return trained
