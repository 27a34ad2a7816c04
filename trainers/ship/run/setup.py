"""What a run was trained with (``setup.json`` beside its checkpoints), and the check that an evaluation-only
run scores a checkpoint under the same setup: the same CLIP weights, trainer, shots, seed and settings, and
the same dataset (the same classes) unless the run trained on every class of its dataset (cross-dataset transfer).

A run folder holds one run: training refuses a folder whose ``setup.json`` names another setup, and an
evaluation refuses the training run's folder or any folder holding a training run. ``setup.json`` is written
when the run finishes, just before ``results.json`` (the last file: what marks a finished run, ``reports.finished``).
It names the route that trained the run (``backend``: ``core`` or ``dassl``), so a run folder or an evaluation never
mixes the two without saying so."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from yacs.config import CfgNode

from trainers.ship.common.errors import ShipError
from trainers.ship.common.options import option
from trainers.ship.common.runtime import atomic_write_json
from trainers.ship.model.clip_loader import LoadedClip
from trainers.ship.reports.finished import finished
from trainers.ship.training.stages import stage_settings

logger = logging.getLogger("ship")
SETUP_FILE = "setup.json"


def training_setup(cfg: CfgNode, clip_model: LoadedClip, dataset: str, classes: str,
                   class_names: list[str] | None = None, backend: str = "core") -> dict:
    """The setup of a run of ``cfg.TRAINER.NAME`` on ``dataset`` by ``backend`` (``core`` or ``dassl``);
    ``classes``: "base" (trained on the base classes) or "all" (every class of the dataset, as cross-dataset transfer
    trains); ``class_names``: every class of the dataset in label order (base and new), what tells two datasets of
    one folder name apart."""
    trainer = cfg.TRAINER.NAME
    stages = [trainer] + (["generator"] if trainer.startswith("SHIP_") else [])
    return {"trainer": trainer, "backend": backend, "dataset": dataset, "shots": cfg.DATASET.NUM_SHOTS, "seed": cfg.SEED,
            "clip": clip_model.identity, "classes": classes,
            **({"class_names": list(class_names)} if class_names is not None else {}),
            "clip_weights": str(Path(cfg.MODEL.BACKBONE.WEIGHTS).expanduser().resolve()) if cfg.MODEL.BACKBONE.WEIGHTS else "", "label_only_from": list(cfg.DATASET.LABEL_ONLY_FROM),
            "settings": {stage: stage_settings(cfg, stage) for stage in stages}}


def write_setup(out: Path, setup: dict) -> None:
    atomic_write_json(setup, out / SETUP_FILE)


def _read_setup(path: Path) -> dict:
    try:
        setup = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ShipError(f"{path} is not valid JSON ({exc}); delete it if the folder holds no finished run") from None
    if not isinstance(setup, dict):
        raise ShipError(f"{path} is not a run's setup (a JSON object); delete it if the folder holds no finished run")
    return setup


def _flat(setup: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in setup.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _class_difference(before: list, now: list) -> str:
    if len(before) != len(now):
        return f"class_names: {len(before)} classes (this run: {len(now)})"
    i = next(i for i, (a, b) in enumerate(zip(before, now)) if a != b)
    return f"class_names: class {i} {before[i]!r} (this run: {now[i]!r})"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _difference(key: str, before, now) -> str:
    if key == "class_names" and isinstance(before, list) and isinstance(now, list):
        return _class_difference(before, now)
    return f"{key} {_short(before)} (this run: {_short(now)})"


def _log_unchecked(path: Path, keys: set[str]) -> None:
    """One log line naming what a ``setup.json`` of an older version lacks, so it cannot be compared."""
    if keys:
        names = sorted(keys)
        logger.info(f"{path} was written by an older version without {', '.join(names[:5])}"
                    f"{' ...' if len(names) > 5 else ''}; these are not compared")


def check_run_folder(out: Path, current: dict) -> None:
    """Training into ``out``: a folder whose ``setup.json`` names another setup (seed, trainer, dataset, classes,
    settings, ...) holds another finished run and is refused with one line naming the difference, so it is never
    overwritten; the same setup resumes (and rewrites) the run."""
    path = out / SETUP_FILE
    if not path.is_file():
        return
    held = _flat(_read_setup(path))
    now = _flat(json.loads(json.dumps(current)))  # tuples as lists, as setup.json holds them
    # keys on both sides (a setup.json of an older version lacks newer keys), the run's identity first
    keys = sorted(set(held) & set(now), key=lambda k: (k.startswith("settings."), k))
    _log_unchecked(path, set(now) - set(held))
    if held.get("trainer") != now.get("trainer"):  # other trainers read other settings: the trainer says it
        keys = [k for k in keys if not k.startswith("settings.")]
    differences = [_difference(k, held.get(k), now.get(k)) for k in keys
                   if k != "clip_weights" and held.get(k) != now.get(k)]  # the weights by content (clip), not path
    if differences:
        raise ShipError(f"{out} holds a finished run of another setup ({'; '.join(differences[:3])}"
                        f"{'; ...' if len(differences) > 3 else ''}); choose another output folder (--output-dir, "
                        f"OUTPUT_DIR), or delete {path} to replace that run")


def check_eval_folder(out: Path, model_dir: Path) -> None:
    """Evaluation only: its output folder must be neither the training run's folder nor any folder holding a
    training run, whose ``results.json`` the evaluation would overwrite."""
    if out.resolve() == model_dir.resolve():
        raise ShipError(f"the evaluation's output folder is the training run's folder {model_dir}; give the evaluation "
                        f"its own output folder (--output-dir, OUTPUT_DIR) so the training results.json is kept")
    if (out / SETUP_FILE).is_file():
        raise ShipError(f"{out} holds a training run ({SETUP_FILE}); give the evaluation its own output folder "
                        f"(--output-dir, OUTPUT_DIR) so that run's results.json is kept")


def unfinished_run(folder: Path) -> bool:
    """True when ``folder`` holds a training run's log but not a finished run (``reports.finished``)."""
    return any(folder.glob("log.txt*")) and not finished(folder)[0]


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
        if not allow_mismatch and unfinished_run(model_dir):
            raise ShipError(f"{model_dir} holds an unfinished training run (no {SETUP_FILE}, which training writes when "
                            f"it finishes: the run was killed or failed); finish it first: run its training command "
                            f"(train.py, python -m trainers.ship) again to resume it, or delete the folder and rerun "
                            f"the train script (CoOp's and SHIP's scripts skip an existing folder)")
        if not allow_mismatch:
            raise ShipError(f"{message} (trained by an older version?); pass {option('allow_mismatch')} to evaluate it anyway")
        logger.info(f"{message}; evaluating it anyway (ALLOW_SETUP_MISMATCH)")
        return {}
    trained = _read_setup(path)
    differences = []
    for key in ("clip", "trainer", "backend", "shots", "seed"):
        if key == "shots" and current[key] <= 0:  # Dassl's default -1: the evaluation does not say
            continue
        if key == "backend" and key not in trained:  # a setup.json of an older version
            _log_unchecked(path, {key})
            continue
        if trained.get(key) != current[key]:
            differences.append(f"{key} {trained.get(key)} (this evaluation: {current[key]})")
    if trained.get("trainer") == current["trainer"]:
        for stage, settings in current["settings"].items():
            before = trained.get("settings", {}).get(stage, {})
            differences += [f"{k} {before.get(k)!r} (this evaluation: {v!r})"
                            for k, v in settings.items() if before.get(k) != v]
    if "class_names" in current and "class_names" not in trained:
        _log_unchecked(path, {"class_names"})
    if trained.get("dataset") == current["dataset"] and isinstance(trained.get("class_names"), list) \
            and "class_names" in current and trained["class_names"] != current["class_names"]:
        differences.append(_class_difference(trained["class_names"], current["class_names"]).replace("this run", "this evaluation")
                           + f" (another class set under the dataset name {current['dataset']})")
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
