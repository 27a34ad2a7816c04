"""What the core knows of each dataset by name, without its reader (so it works inside any CoOp checkout):
CoOp's config-file names, and the zero-shot CLIP prompts: CoOp's hand-crafted template for each dataset
(``trainers/zsclip.py``), and for the ImageNet family the 7-template ensemble that Tip-Adapter and CoOp's
ZeroshotCLIP2 use."""
from __future__ import annotations

import logging

logger = logging.getLogger("ship")

IMAGENET_TEMPLATES = (
    "itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
    "a {} in a video game.", "art of the {}.", "a photo of the small {}.",
)
ALIASES = {  # CoOp's config-file names (configs/datasets/<alias>.yaml)
    "caltech101": "Caltech101", "oxford_pets": "OxfordPets", "stanford_cars": "StanfordCars",
    "oxford_flowers": "OxfordFlowers", "food101": "Food101", "fgvc_aircraft": "FGVCAircraft", "sun397": "SUN397",
    "dtd": "DescribableTextures", "eurosat": "EuroSAT", "ucf101": "UCF101", "imagenet": "ImageNet",
    "imagenetv2": "ImageNetV2", "imagenet_sketch": "ImageNetSketch", "imagenet_a": "ImageNetA", "imagenet_r": "ImageNetR",
    "cub": "CUB",
}
DEFAULT_TEMPLATE = "a photo of a {}."
DATASET_TEMPLATES: dict[str, tuple[str, ...]] = {
    "ImageNet": IMAGENET_TEMPLATES, "ImageNetV2": IMAGENET_TEMPLATES, "ImageNetSketch": IMAGENET_TEMPLATES,
    "ImageNetA": IMAGENET_TEMPLATES, "ImageNetR": IMAGENET_TEMPLATES,
    "Caltech101": ("a photo of a {}.",), "OxfordPets": ("a photo of a {}, a type of pet.",),
    "StanfordCars": ("a photo of a {}.",), "OxfordFlowers": ("a photo of a {}, a type of flower.",),
    "Food101": ("a photo of {}, a type of food.",), "FGVCAircraft": ("a photo of a {}, a type of aircraft.",),
    "SUN397": ("a photo of a {}.",), "DescribableTextures": ("{} texture.",),
    "EuroSAT": ("a centered satellite photo of {}.",), "UCF101": ("a photo of a person doing {}.",),
    "CUB": ("a photo of a {}, a type of bird.",),
}

# The single hand-crafted prompt of each dataset that KgCoOp (its trainers/kgcoop.py CUSTOM_TEMPLATES: the
# zero-shot text features its regulariser keeps the prompt near), ProGrad (its trainers/prograd.py
# CUSTOM_TEMPLATES: the zero-shot prediction that guides the gradient, and the context's init phrase) and
# CLIP-Adapter (its zero-shot weights) use.
_SAME = {"EuroSAT": "a centered satellite photo of {}.", "StanfordCars": "a photo of a {}.", "SUN397": "a photo of a {}.",
         "Caltech101": "a photo of a {}.", "UCF101": "a photo of a person doing {}.",
         **{name: "a photo of a {}." for name in ("ImageNet", "ImageNetSketch", "ImageNetV2", "ImageNetA", "ImageNetR")}}
METHOD_TEMPLATES: dict[str, dict[str, str]] = {
    "KgCoOp": {**_SAME, "OxfordPets": "a photo of a {}, a type of pet.", "OxfordFlowers": "a photo of a {}, a type of flower.",
               "FGVCAircraft": "a photo of a {}, a type of aircraft.",
               "DescribableTextures": "a photo of a {}, a type of texture.", "Food101": "a photo of {}, a type of food."},
    "ProGrad": {**_SAME, "OxfordPets": "a type of pet, a photo of a {}.", "OxfordFlowers": "a type of flower, a photo of a {}.",
                "FGVCAircraft": "a type of aircraft, a photo of a {}.", "DescribableTextures": "a texture of {}.",
                "Food101": "a type of food, a photo of {}."},
    # CLIP-Adapter's clip_adapter.py CUSTOM_TEMPLATES: CoOp's prompts, and "a photo of a {}." for the ImageNet family
    "CLIPAdapter": {**_SAME, "OxfordPets": "a photo of a {}, a type of pet.", "OxfordFlowers": "a photo of a {}, a type of flower.",
                    "FGVCAircraft": "a photo of a {}, a type of aircraft.", "DescribableTextures": "{} texture.",
                    "Food101": "a photo of {}, a type of food."},
}


def method_templates(method: str, dataset: str, fallback: list[str]) -> list[str]:
    """``method``'s own prompt for ``dataset`` (:data:`METHOD_TEMPLATES`); ``fallback`` (the dataset's templates)
    for a dataset the method's code does not name, with one log line."""
    template = METHOD_TEMPLATES[method].get(ALIASES.get(dataset, dataset))
    if template is None:
        logger.info(f"{method}'s code has no prompt for {dataset}; using the dataset's templates {fallback}")
        return list(fallback)
    return [template]


def templates_for(dataset: str) -> list[str]:
    """The dataset's templates; a dataset without one gets "a photo of a {}." with one log line."""
    if dataset not in DATASET_TEMPLATES:
        logger.info(f"no zero-shot template is known for {dataset}; using {DEFAULT_TEMPLATE!r} (set DATASET.TEMPLATES)")
        return [DEFAULT_TEMPLATE]
    return list(DATASET_TEMPLATES[dataset])
