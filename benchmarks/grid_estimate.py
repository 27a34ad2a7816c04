"""An estimate of ``paper.sh``'s full grid on one GPU, from costs measured in ``benchmarks/RESULTS.md``.

    python -m benchmarks.grid_estimate [--ms-per-image 1.6]

A model, not a measurement. Images: CoOp's split sizes (the CoOp paper's dataset table; CUB: the GZSL split's
seen classes and test images). Each dataset's test split once; each seed's few-shot crops (16 shots x the base
classes x 10 passes) at the two crop scales the grid's recipes use (0.08-1 and 0.5-1); ImageNet's 1,000 classes
for the cross-dataset source; Tip-Adapter's search images (the base classes' half of the val split, ImageNet: 4 per
class drawn from train). "Every task alone": each run encodes every set it reads, as when all tasks start together
without the per-key lock. Heads: the H100 seconds of section 3 for a 100-class dataset (50 base classes), scaled
by (base classes / 50)^2 (steps and the classes encoded per step both grow with the classes) and, on ImageNet, by
the recipes' epochs (50 / 200 for the CoOp family); CoCoOp (batch 1, an image-conditioned context) has no GPU
figure and is counted as CoOp, so its rows are an underestimate.
"""
from __future__ import annotations

import math

from .common import benchmark_parser

# dataset: (classes, test images, val images) of CoOp's splits; CUB: (classes, GZSL test images, 0)
DATASETS = {
    "imagenet": (1000, 50000, 0), "caltech101": (100, 2465, 1649), "oxford_pets": (37, 3669, 736),
    "stanford_cars": (196, 8041, 1635), "oxford_flowers": (102, 2463, 1633), "food101": (101, 30300, 20200),
    "fgvc_aircraft": (100, 3333, 3333), "sun397": (397, 19850, 3970), "dtd": (47, 1692, 1128),
    "eurosat": (10, 8100, 5400), "ucf101": (101, 3783, 1898),
}
CUB = (150, 4731)  # seen classes, GZSL test images (seen + unseen)
SHOTS, PASSES, SEEDS = 16, 10, 3
# H100 seconds at 100 classes (50 base), section 3: CoOp's head 18.4 s; Tip-Adapter's 0.3 s; SHIP_CoOp 35.9 s, so
# the generator 17.5 s. CLIP-Adapter and Tip-Adapter-F (small modules on cached features) are counted as Tip-Adapter.
PROMPT_HEAD, FEATURE_HEAD, GENERATOR = 18.4, 0.3, 35.9 - 18.4
# method: (its kind of head, reads Tip-Adapter's search images); each has its SHIP twin
METHODS = {"CoOp": ("prompt", False), "CoCoOp": ("prompt", False), "KgCoOp": ("prompt", False),
           "ProGrad": ("prompt", False), "CLIPAdapter": ("feature", False), "TipAdapter": ("feature", True),
           "TipAdapter-F": ("feature", True)}
COOP_FAMILY = ("CoOp", "CoCoOp", "KgCoOp", "ProGrad")


def train_sets(method: str, ship: bool, imagenet: bool) -> int:
    """Crop scales a run reads: its head's (0.08-1, Tip-Adapter's 0.5-1), and the generator's 0.5-1 where it differs
    (on ImageNet the generator's recipe crops at 0.08-1 too)."""
    return 2 if ship and not imagenet and not method.startswith("TipAdapter") else 1


def crops(base: int) -> int:
    return SHOTS * base * PASSES


def search_images(name: str, classes: int, val: int) -> int:
    return 4 * math.ceil(classes / 2) if name == "imagenet" else val // 2


def head_seconds(method: str, ship: bool, base: int, imagenet: bool) -> float:
    """Prompt heads: x (base / 50)^2 (steps and the classes each step encodes grow with the classes), the CoOp family
    x 50 / 200 on ImageNet (its epochs); feature heads and the generator: x base / 50 (their steps)."""
    scale = base / 50
    if METHODS[method][0] == "prompt":
        head = PROMPT_HEAD * scale**2 * (50 / 200 if imagenet else 1)
    else:
        head = FEATURE_HEAD * scale
    return head + (GENERATOR * scale if ship else 0.0)


RUNS = [(m, ship) for m in METHODS for ship in (False, True)]  # and ZeroshotCLIP, which reads the test split only


def estimate() -> dict:
    once = alone = heads = 0.0
    for name, (classes, test, val) in DATASETS.items():  # base-to-new
        base, imagenet = math.ceil(classes / 2), name == "imagenet"
        search = search_images(name, classes, val)
        once += test + SEEDS * (2 * crops(base) + search)
        alone += SEEDS * test  # ZeroshotCLIP
        for method, ship in RUNS:
            alone += SEEDS * (test + train_sets(method, ship, imagenet) * crops(base) + (search if METHODS[method][1] else 0))
            heads += SEEDS * head_seconds(method, ship, base, imagenet)
    classes, test, _ = DATASETS["imagenet"]  # cross-dataset: ImageNet's every class, then the 10 targets' test splits
    targets = sum(t for name, (_, t, _) in DATASETS.items() if name != "imagenet")
    once += SEEDS * 2 * crops(classes)
    alone += SEEDS * (test + targets)  # ZeroshotCLIP
    for method, ship in RUNS:
        alone += SEEDS * (test + train_sets(method, ship, True) * crops(classes) + targets)
        heads += SEEDS * head_seconds(method, ship, classes, True)
    seen, cub_test = CUB  # GZSL on CUB
    once += cub_test + SEEDS * 2 * crops(seen)
    alone += SEEDS * cub_test
    for method, ship in RUNS:
        alone += SEEDS * (cub_test + train_sets(method, ship, False) * crops(seen))
        heads += SEEDS * head_seconds(method, ship, seen, False)
    return {"images_once_per_key": int(once), "images_every_task_alone": int(alone), "head_seconds": heads}


def main(argv: list[str] | None = None) -> None:
    p = benchmark_parser("benchmarks.grid_estimate", __doc__)
    p.add_argument("--ms-per-image", type=float, default=1.6, help="encoding cost per image (H100, section 3: 1.6)")
    args = p.parse_args(argv)
    e = estimate()
    hours = lambda images: images * args.ms_per_image / 1000 / 3600  # noqa: E731
    print(f"images encoded, once per key:       {e['images_once_per_key']:>12,}  ({hours(e['images_once_per_key']):.1f} GPU-h)")
    print(f"images encoded, every task alone:   {e['images_every_task_alone']:>12,}  ({hours(e['images_every_task_alone']):.1f} GPU-h)")
    print(f"heads (model, see --help):          {e['head_seconds'] / 3600:>12.1f} GPU-h")
    print(f"grid, once per key:                 {hours(e['images_once_per_key']) + e['head_seconds'] / 3600:>12.1f} GPU-h")


if __name__ == "__main__":
    main()
