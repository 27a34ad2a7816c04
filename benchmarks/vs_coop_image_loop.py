"""SHIP_CoOp end to end (features cached) vs a CoOp trainer that encodes images at every step.

    python -m benchmarks.vs_coop_image_loop [--classes 100] [--shots 16] [--epochs 200] [--device auto]

Same random images, same CLIP (random weights of ViT-B/16's size), same epochs, one process. The
image loop is CoOp's Dassl trainer in miniature: batches of 32 augmented images decoded and encoded
by CLIP's image tower at every step, then the prompt learner over the base classes (CoOp's SGD with
momentum 0.9), then the test images encoded once. SHIP_CoOp's time includes extracting its cached
features (10 augmented passes), the 50-epoch generator and the synthetic features. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from datasets.image_folder import read_image_folder
from datasets.splits import base_new_split, few_shot_splits
from trainers.ship.common.runtime import autocast, resolve_device, seed_everything
from trainers.ship.config import build_cfg
from trainers.ship.data.features import ImageFiles, encode_images, test_transform, train_transform
from trainers.ship.model.classifiers import PromptLearner, cosine_logits
from trainers.ship.model.clip_loader import load_clip
from trainers.ship.model.text_encoder import TextEncoder
from trainers.ship.run.pipeline import run
from trainers.ship.training.schedules import build_optimization

from .base2new_pipeline import write_folder
from .common import benchmark_parser, device_name, save_random_clip, synchronize

ROOT = Path(__file__).resolve().parents[1]


def coop_image_loop(weights: Path, data: Path, shots: int, epochs: int, device: torch.device, workers: int) -> float:
    """Seconds for CoOp's loop: per step decode + augment + encode 32 images, text tower forward + backward."""
    start = time.perf_counter()
    seed_everything(1)
    clip_model = load_clip(weights=str(weights), device=device)
    dataset = few_shot_splits(read_image_folder(data), shots, 1)
    base, _ = base_new_split(dataset.num_classes)
    train = [i for i in dataset.train if i.label < len(base)]
    text_encoder = TextEncoder(clip_model.model, clip_model.precision)
    learner = PromptLearner(text_encoder, n_ctx=4, ctx_init="a photo of a")
    prompts = learner.class_prompts(dataset.classnames[: len(base)])
    images = ImageFiles([i.path for i in train], train_transform(clip_model.input_resolution))
    loader = DataLoader(_Labelled(images, [i.label for i in train]), batch_size=32, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    opt = build_optimization(list(learner.parameters()), clip_model.precision, device.type, epochs,
                             math.ceil(len(train) / 32), "sgd", 2e-3, momentum=0.9, weight_decay=5e-4,
                             lr_scheduler="dassl", warmup_epochs=1)
    for _ in range(epochs):
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device)
            with autocast(clip_model.precision):
                with torch.no_grad():
                    f = F.normalize(clip_model.model.encode_image(x).float(), dim=-1)
                loss = F.cross_entropy(cosine_logits(f, learner(prompts), text_encoder.logit_scale), y)
            opt.step(loss)
            opt.schedule.after_step()
        opt.schedule.after_epoch()
    encode_images(clip_model, [i.path for i in dataset.test], test_transform(clip_model.input_resolution), device,
                  num_workers=workers)
    synchronize(device)
    return time.perf_counter() - start


class _Labelled(torch.utils.data.Dataset):
    def __init__(self, images: ImageFiles, labels: list[int]):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        image, reason = self.images[i]  # the benchmark's own generated images: always readable
        assert not reason, reason
        return image, self.labels[i]


def main(argv=None):
    p = benchmark_parser("benchmarks.vs_coop_image_loop", __doc__)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--shots", type=int, default=16)
    p.add_argument("--test-per-class", type=int, default=25)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--device", default="auto")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="extra SHIP config overrides")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = write_folder(work / "data", args.classes, max(2 * args.shots, round(args.test_per_class / 0.3)))
        weights = save_random_clip("ViT-B/16", work / "clip.pt")
        start = time.perf_counter()
        cfg = build_cfg([str(ROOT / "configs/trainers/SHIP/vit_b16.yaml")], {
            "DATASET.ROOT": str(data), "MODEL.BACKBONE.WEIGHTS": str(weights), "DATASET.NUM_SHOTS": args.shots,
            "TRAINER.COOP.EPOCHS": args.epochs, "DEVICE": str(device), "OUTPUT_DIR": str(work / "ship"),
            "CACHE_DIR": str(work / "cache"), "DATALOADER.NUM_WORKERS": args.workers}, args.opts)
        run(cfg)
        synchronize(device)
        ship = time.perf_counter() - start
        coop = coop_image_loop(weights, data, args.shots, args.epochs, device, args.workers)
    print(json.dumps({"benchmark": "vs_coop_image_loop", "device": device_name(device), "classes": args.classes,
                      "shots": args.shots, "epochs": args.epochs, "ship_coop_seconds": ship,
                      "coop_image_loop_seconds": coop, "coop_over_ship": coop / ship}))


if __name__ == "__main__":
    main()
