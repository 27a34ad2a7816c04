"""The trained stages of a run: the SHIP generator and the heads trained on its output.

Every stage is saved as ``<stage>/model.pth.tar-<epochs>`` with a fingerprint of exactly what it depends on
(:data:`STAGE_KEYS`, the seed, the CLIP weights and precision, and digests of its input data). A rerun loads
a finished stage whose fingerprint matches and retrains one whose inputs changed; a setting a stage does not
read never retrains it. Each stage starts from a seed of its own (``runtime.stage_seed``), so what it draws
does not depend on whether earlier stages were trained or loaded.

Nothing here imports the dataset readers: the Dassl trainers use these stages inside any CoOp checkout.
"""
from __future__ import annotations

import hashlib
import json
import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
from yacs.config import CfgNode

from trainers.ship.common.errors import ShipError
from trainers.ship.common.runtime import atomic_save, seed_everything, stage_seed
from trainers.ship.data.features import FeatureSet
from trainers.ship.model.clip_loader import LoadedClip
from trainers.ship.model.generator import ShipGenerator
from trainers.ship.model.synthesis import SyntheticStream
from trainers.ship.model.text_encoder import TextEncoder
from trainers.ship.training.loops import train_generator

BEST = "model-best.pth.tar"  # Dassl's checkpoint under TEST.FINAL_MODEL best_val

logger = logging.getLogger("ship")

# The config keys each stage reads: the generator's here, each method's added by methods.register.
# Feature extraction (TRAINER.SHIP.AUG_*) enters through the data digests.
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "generator": tuple(f"TRAINER.SHIP.{k}" for k in ("GENERATOR", "N_CTX", "ENCODER_HIDDEN", "MLP_HIDDEN", "LATENT_DIM", "LEAKY_RELU",
                                                     "KL_WEIGHT", "GEN_EPOCHS", "GEN_LR", "GEN_BATCH_SIZE")),
}


def config_value(cfg: CfgNode, key: str):
    """``cfg.A.B.C`` for ``key`` "A.B.C"."""
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def stage_settings(cfg: CfgNode, stage: str) -> dict:
    """The config settings ``stage`` reads."""
    return {key: config_value(cfg, key) for key in STAGE_KEYS[stage]}


def data_digest(features: FeatureSet | None, classnames: Iterable[str] = ()) -> str:
    """SHA-256 of a feature set's values and labels and of the class names they are trained over."""
    h = hashlib.sha256(features.digest().encode() if features is not None else b"")
    h.update("\n".join(classnames).encode())
    return h.hexdigest()


def fingerprint(cfg: CfgNode, clip_model: LoadedClip, stage: str, **inputs) -> str:
    """What ``stage``'s checkpoint depends on: its settings, the seed, the CLIP weights and precision, and
    ``inputs`` (digests of its data, the fingerprint of the stage it consumes, ...)."""
    relevant = {"stage": stage, "settings": stage_settings(cfg, stage), "seed": cfg.SEED, "clip": clip_model.identity,
                "precision": clip_model.precision, "inputs": inputs}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


def checkpoint_file(folder: str | Path, epoch: int | None, prefer_best: bool = True) -> Path:
    """The checkpoint a Dassl trainer deploys from ``folder``: ``model.pth.tar-<epoch>``; with no epoch, Dassl's
    ``model-best.pth.tar`` (written under ``TEST.FINAL_MODEL best_val``) when present and ``prefer_best``, else
    the last epoch's (what ``--resume`` continues from)."""
    folder = Path(folder)
    if epoch is not None:
        path = folder / f"model.pth.tar-{epoch}"
    elif prefer_best and (folder / BEST).is_file():
        path = folder / BEST
    else:
        found = sorted(folder.glob("model.pth.tar-*"), key=lambda p: int(re.sub(r"\D", "", p.name.split("-")[-1]) or 0))
        if not found:
            raise ShipError(f"no checkpoint in {folder} (expected model.pth.tar-<epoch> or {BEST})")
        path = found[-1]
    if not path.is_file():
        saved = sorted(int(p.name.rsplit("-", 1)[-1]) for p in folder.glob("model.pth.tar-*") if p.name.rsplit("-", 1)[-1].isdigit())
        hint = (f" (--load-epoch {epoch}, LOADEP in CoOp's scripts; this run saved epoch "
                f"{', '.join(map(str, saved)) or 'none'}: set LOADEP to it)") if epoch is not None else ""
        raise ShipError(f"checkpoint not found: {path}{hint}")
    return path


def read_checkpoint(checkpoint: Path) -> dict:
    """Every checkpoint either route reads: the core's stages (``state_dict``, ``epoch``, ``fingerprint``) and the
    Dassl trainers' (``state_dict``, ``epoch``, ``optimizer``, ``scheduler``, ``val_result``: tensors, numbers,
    strings and containers, since SHIP's Dassl trainers register torch's own schedulers, whose state holds no
    callable). Read with ``weights_only=True``: a file that holds anything else (a pickled callable runs code when
    unpickled) is refused with one :class:`ShipError` line, and nothing in it runs."""
    if not checkpoint.is_file():
        raise ShipError(f"checkpoint not found: {checkpoint} (train first, or check --model-dir and --load-epoch)")
    try:
        return torch.load(checkpoint, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise ShipError(f"refused checkpoint {checkpoint}: it holds objects other than weights{what}, which could run "
                        f"code when loaded; nothing of it was run. Load only checkpoints this project or its Dassl "
                        f"trainers wrote") from None
    except Exception as exc:
        raise ShipError(f"corrupt checkpoint {checkpoint} ({type(exc).__name__}: {exc}); delete it to retrain") from None


def load_finished(module, checkpoint: Path, owner: str = "") -> dict:
    """Evaluation only: load a stage that a training run saved into ``module`` (a method, or a module with
    ``load_state_dict``) and return the checkpoint; a checkpoint of another method or another number of classes is
    one :class:`ShipError` line naming ``owner`` (default: the module's class)."""
    blob = read_checkpoint(checkpoint)
    try:
        module.load_state_dict(blob["state_dict"])
    except Exception as exc:  # no state_dict, missing or unexpected keys, size mismatch
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise ShipError(f"{checkpoint} does not fit {owner or type(module).__name__} ({reason[:300]}); it was saved by "
                        f"another method or for another number of classes") from None
    logger.info(f"Loaded {checkpoint.parent.name.replace('_', ' ')} from {checkpoint}")
    return blob


def trained_or_loaded(module, checkpoint: Path, fingerprint: str, epochs: int, train: Callable[[], object]) -> None:
    """Load ``module`` from a finished checkpoint with the same fingerprint, else train it and save one atomically.

    Either way the random state is then reseeded from the fingerprint, so what follows draws the same
    numbers whether this stage was trained or loaded: a resumed run ends as an uninterrupted one would.
    """
    loaded = False
    if checkpoint.is_file():
        blob = read_checkpoint(checkpoint)
        if blob.get("fingerprint") == fingerprint:
            module.load_state_dict(blob["state_dict"])
            logger.info(f"Loaded finished stage from {checkpoint}")
            loaded = True
        else:
            logger.info(f"{checkpoint} was trained on other inputs or settings; retraining it")
    if not loaded:
        train()
        atomic_save({"state_dict": module.state_dict(), "epoch": epochs, "fingerprint": fingerprint}, checkpoint)
        logger.info(f"Checkpoint saved to {checkpoint}")
    seed_everything(int(fingerprint[:8], 16))


def build_generator(cfg: CfgNode, text_encoder: TextEncoder) -> ShipGenerator:
    s = cfg.TRAINER.SHIP
    return ShipGenerator(text_encoder, n_ctx=s.N_CTX, encoder_hidden=s.ENCODER_HIDDEN, mlp_hidden=s.MLP_HIDDEN,
                         latent_dim=s.LATENT_DIM or None, leaky_relu=s.LEAKY_RELU, variant=s.GENERATOR)


def snapshot_epochs(epochs: int, every: int) -> list[int]:
    """The generator epochs ``TEST.SELECTION paper`` retrains the head after: every ``every``-th, and the last."""
    if every < 1:
        raise ShipError(f"TEST.SNAPSHOT_EVERY must be a positive number of generator epochs; got {every}")
    return sorted(set(range(every, epochs + 1, every)) | {epochs})


def _matches(checkpoint: Path, fingerprint: str) -> bool:
    return checkpoint.is_file() and read_checkpoint(checkpoint).get("fingerprint") == fingerprint


@dataclass
class GeneratorSnapshot:
    """A generator after ``epoch`` epochs of training (0: the untrained control) and its fingerprint."""

    epoch: int
    generator: ShipGenerator
    fingerprint: str


def fit_generator(cfg: CfgNode, text_encoder: TextEncoder, clip_model: LoadedClip, train: FeatureSet,
                  base_names: list[str], out: Path, snapshots: bool = False) -> list[GeneratorSnapshot]:
    """Fit the SHIP generator on the base features (or load the finished stage from ``out``): the last epoch's,
    or with ``snapshots`` also every ``TEST.SNAPSHOT_EVERY``-th epoch's (``TEST.SELECTION paper``), each saved as
    ``generator/model.pth.tar-<epoch>`` with its own fingerprint. ``GENERATOR untrained`` saves the initial
    weights as ``model.pth.tar-0``, fingerprinted like a trained generator."""
    s = cfg.TRAINER.SHIP
    seed_everything(stage_seed(cfg.SEED, "generator"))
    generator = build_generator(cfg, text_encoder)
    base_prompts = generator.class_prompts(base_names)
    final_fp = fingerprint(cfg, clip_model, "generator", train=data_digest(train, base_names))
    untrained = s.GENERATOR == "untrained"
    last = 0 if untrained else s.GEN_EPOCHS
    epochs = snapshot_epochs(last, cfg.TEST.SNAPSHOT_EVERY) if snapshots and not untrained else [last]
    fps = {e: final_fp if e == last else fingerprint(cfg, clip_model, "generator", train=data_digest(train, base_names),
                                                    snapshot=e) for e in epochs}
    paths = {e: out / "generator" / f"model.pth.tar-{e}" for e in epochs}
    kept: dict[int, dict] = {}

    def train_it() -> None:
        if untrained:
            logger.info("TRAINER.SHIP.GENERATOR untrained: the generator keeps its initial weights (a control)")
            return
        train_generator(generator, base_prompts, train, s.GEN_EPOCHS, s.GEN_LR, s.GEN_BATCH_SIZE, s.KL_WEIGHT, keep)

    def keep(epoch: int) -> None:  # a snapshot of the weights after this epoch
        if epoch in fps and epoch != last:
            kept[epoch] = {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}

    if all(_matches(paths[e], fps[e]) for e in epochs if e != last):
        trained_or_loaded(generator, paths[last], final_fp, last, train_it)
        kept = {e: read_checkpoint(paths[e])["state_dict"] for e in epochs if e != last}
    else:  # a missing snapshot: the generator is trained again from its start
        train_it()
        for e in epochs:
            atomic_save({"state_dict": kept[e] if e != last else generator.state_dict(), "epoch": e,
                         "fingerprint": fps[e]}, paths[e])
        logger.info(f"Generator snapshots of epochs {', '.join(map(str, epochs))} saved to {out / 'generator'}")
        seed_everything(int(final_fp[:8], 16))
    result = []
    for e in epochs:
        if e == last:
            module = generator
        else:
            module = build_generator(cfg, text_encoder)
            module.load_state_dict(kept[e])
        module.eval()
        result.append(GeneratorSnapshot(e, module, fps[e]))
    return result


def stream_of(cfg: CfgNode, snapshot: GeneratorSnapshot, label_only_names: list[str], num_base: int) -> SyntheticStream:
    """The stream of synthetic features of the label-only classes from ``snapshot``, labelled after the base
    classes; drawn from a seed of the generator's fingerprint. Its ``fingerprint`` identifies the generator for
    the stages that train on its output."""
    seed_everything(int(snapshot.fingerprint[:8], 16))
    stream = SyntheticStream(snapshot.generator, snapshot.generator.class_prompts(label_only_names), num_base,
                             cfg.TRAINER.SHIP.SYN_POOL_PER_CLASS)
    stream.fingerprint = snapshot.fingerprint
    return stream


def synthetic_stream(cfg: CfgNode, text_encoder: TextEncoder, clip_model: LoadedClip, train: FeatureSet,
                     base_names: list[str], label_only_names: list[str], out: Path) -> SyntheticStream:
    """Fit the SHIP generator on the base features (or load the finished stage from ``out``) and return the
    stream of synthetic features of the label-only classes, labelled after the base classes."""
    snapshot = fit_generator(cfg, text_encoder, clip_model, train, base_names, out)[-1]
    logger.info(f"SHIP synthesises features of {len(label_only_names)} label-only classes")
    return stream_of(cfg, snapshot, label_only_names, len(base_names))
