"""Things the tests build themselves: a tiny random CLIP, image folders, a synthetic world."""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from trainers.ship.data.features import FeatureSet
from trainers.ship.model.clip_loader import CLIP
from trainers.ship.model.text_encoder import ClassPrompts, TextEncoder

CALTECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "caltech-101"


def save_tiny_clip(path: Path, seed: int = 0, resnet: bool = False) -> Path:
    """A random CLIP (ViT: 2 layers, width 64, 32-pixel images, 32-d features) saved as a state dict.

    The logit scale is set to CLIP's trained value, 100.
    """
    torch.manual_seed(seed)
    vision = dict(vision_layers=(1, 1, 1, 1), vision_width=16, vision_patch_size=None) if resnet else \
        dict(vision_layers=2, vision_width=64, vision_patch_size=8)
    model = CLIP(embed_dim=48 if resnet else 32, image_resolution=32, context_length=77, vocab_size=49408,
                 transformer_width=64, transformer_heads=1, transformer_layers=2, **vision)
    state = model.state_dict()
    state["logit_scale"] = torch.tensor(math.log(100.0))
    torch.save(state, path)
    return path


def write_image_folder(root: Path, classnames: list[str], per_class: int, seed: int = 0) -> Path:
    """``root/<class>/<i>.jpg`` with random images of varied size, some grayscale."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classnames):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = rng.integers(24, 64, size=2)
            pixels = (rng.random((h, w, 3)) * 80 + c * 20).astype(np.uint8)
            Image.fromarray(pixels[..., 0] if i % 3 == 0 else pixels).save(root / name / f"img_{i:03d}.jpg")
    return root


def image(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    return str(path)


def split_json_dataset(root: Path, folder: str, image_dir: str, split_name: str, classes: list[str], per_split=(6, 2, 3)):
    """A CoOp split_zhou_*.json tree: ``root/folder/image_dir/<class>/<i>.jpg`` and the split file."""
    base = root / folder
    split = {}
    for key, n in zip(("train", "val", "test"), per_split):
        split[key] = []
        for label, name in enumerate(classes):
            for i in range(n):
                rel = f"{name}/{key}_{i}.jpg"
                image(base / image_dir / rel)
                split[key].append([rel, label, name.replace("_", " ")])
    (base / split_name).write_text(json.dumps(split))



class ListHandler(logging.Handler):
    """Collects the messages of the ``ship`` logger (which does not propagate to the root)."""

    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# --------------------------------------------------------------------------- synthetic world
WORLD_NAMES = ["cat", "dog", "car", "tree", "boat", "house", "bird", "apple", "chair", "clock", "horse", "train"]


@dataclass
class World:
    """Features of a world where class c's images are TextEncoder([SOS, h + b, name_c, ., EOT]) + noise.

    h is a hidden context away from "a photo of a", b a small per-image bias:
    class names carry the signal, as SHIP assumes.
    """

    base_names: list[str]
    new_names: list[str]
    train: FeatureSet  # few-shot base images, 2 "augmentation" passes
    val: FeatureSet  # 4 images per base class
    test_base: FeatureSet
    test_new: FeatureSet  # labels 0..N-1


def make_world(text_encoder: TextEncoder, seed: int, num_base: int = 6, shots: int = 16, n_test: int = 40,
               bias_scale: float = 0.9, noise: float = 0.02) -> World:
    g = torch.Generator().manual_seed(seed)
    emb_std = text_encoder.clip.token_embedding.weight.std().item()
    width = text_encoder.width
    hidden = torch.randn(4, width, generator=g) * emb_std * 3
    prompts = ClassPrompts(text_encoder, WORLD_NAMES, 4)

    def images(labels: torch.Tensor) -> torch.Tensor:
        bias = torch.randn(len(labels), 1, width, generator=g) * emb_std * bias_scale
        embeddings, eot = prompts.assemble(hidden.unsqueeze(0) + bias, labels)
        with torch.no_grad():
            f = F.normalize(text_encoder(embeddings, eot), dim=-1)
        return F.normalize(f + noise * torch.randn(f.shape, generator=g), dim=-1)

    n = len(WORLD_NAMES)
    y_train = torch.arange(num_base).repeat_interleave(shots)
    y_test = torch.arange(n).repeat_interleave(n_test)
    y_val = torch.arange(num_base).repeat_interleave(4)
    x_test = images(y_test)
    is_base = y_test < num_base
    return World(
        base_names=WORLD_NAMES[:num_base],
        new_names=WORLD_NAMES[num_base:],
        train=FeatureSet(torch.stack([images(y_train), images(y_train)]), y_train, torch.ones(2, len(y_train))),
        val=FeatureSet(images(y_val).unsqueeze(0), y_val),
        test_base=FeatureSet(x_test[is_base].unsqueeze(0), y_test[is_base]),
        test_new=FeatureSet(x_test[~is_base].unsqueeze(0), y_test[~is_base] - num_base),
    )


def assert_png(path: Path, min_bytes: int = 5000) -> None:
    """``path`` is a PNG that Pillow reads, of a real figure: not tiny, many colours."""
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert path.stat().st_size >= min_bytes, f"{path} is only {path.stat().st_size} bytes"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert min(image.size) >= 200 and len(image.convert("RGB").getcolors(1 << 24)) > 20


def read_scalars(log_dir: Path) -> dict[str, list[int]]:
    """Every scalar tag in the TensorBoard event files under ``log_dir`` and its steps (tensorboard's reader)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps: dict[str, list[int]] = {}
    for events in sorted(Path(log_dir).glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            steps.setdefault(tag, []).extend(e.step for e in accumulator.Scalars(tag))
    return steps


COOP_TRAIN_PY = '''\
import argparse
import torch

from dassl.config import get_cfg_default

# custom
import datasets.oxford_pets
import datasets.caltech101

import trainers.coop
import trainers.zsclip


def reset_cfg(cfg, args):
    if args.root:
        cfg.DATASET.ROOT = args.root


def extend_cfg(cfg):
    """
    Add new config variables.
    """
    from yacs.config import CfgNode as CN

    cfg.TRAINER.COOP = CN()
    cfg.TRAINER.COOP.N_CTX = 16  # number of context vectors

    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all, base or new


def main(args):
    pass
'''


def coop_shaped_checkout(root: Path) -> Path:
    """A CoOp checkout's shape at ``root``: train.py with extend_cfg, a trainers/ package, and CoOp's own datasets/
    package, which has no catalog (an import of this project's datasets.catalog there fails)."""
    (root / "trainers").mkdir(parents=True)
    (root / "trainers" / "__init__.py").write_text("")
    (root / "trainers" / "coop.py").write_text("# CoOp's trainer\n")
    (root / "datasets").mkdir()
    (root / "datasets" / "__init__.py").write_text("")
    (root / "configs" / "datasets").mkdir(parents=True)
    (root / "configs" / "datasets" / "caltech101.yaml").write_text("DATASET:\n  NAME: \"Caltech101\"\n")
    (root / "train.py").write_text(COOP_TRAIN_PY)
    return root
