"""The data a run needs: the dataset with its few-shot subsets, the class split (base, new, label-only
classes and their identities) and the cached CLIP features of each split."""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from operator import attrgetter

import torch
from yacs.config import CfgNode

from trainers.ship.data.classes import Classes, class_ids, merge_label_only, read_names_file
from trainers.ship.data.features import FeatureCache, FeatureSet, image_set_key
from trainers.ship.data.search_val import search_val
from trainers.ship.data.readers import DatasetSplits, base_new_split, few_shot_splits, load_dataset, read_image_folder
from trainers.ship.data.split_features import SplitFeatures
from trainers.ship.methods import resolve
from trainers.ship.model.clip_loader import LoadedClip

logger = logging.getLogger("ship")


def load_fewshot_dataset(cfg: CfgNode) -> DatasetSplits:
    """``DATASET.NAME`` from the catalog (CoOp's layouts under ``DATASET.ROOT``) or ``ImageFolder``,
    with CoOp's few-shot subsets of train and val."""
    shots, seed = cfg.DATASET.NUM_SHOTS, cfg.SEED
    if cfg.DATASET.NAME == "ImageFolder":
        folder = read_image_folder(cfg.DATASET.ROOT, cfg.DATASET.SPLIT_FILE or None)
        return few_shot_splits(folder, shots, seed)
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


def crop_scales(cfg: CfgNode) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """The random-resized-crop scale of the features ``TRAINER.NAME``'s method trains on (its recipe's CROP_SCALE;
    TRAINER.SHIP.AUG_SCALE for a method without one), and for a SHIP trainer whose generator (at AUG_SCALE) needs
    other features than its method, the generator's scale (else None)."""
    method, ship = resolve(cfg.TRAINER.NAME)
    generator_scale = tuple(cfg.TRAINER.SHIP.AUG_SCALE)
    node = cfg.TRAINER.get(method.config) if method.config else None
    head_scale = tuple(node.CROP_SCALE) if node is not None and "CROP_SCALE" in node else generator_scale
    synthesises = ship and cfg.TRAINER.SHIP.SYNTHESIZE
    return head_scale, generator_scale if synthesises and head_scale != generator_scale else None


def whole_val_split(cfg: CfgNode) -> list:
    """The dataset's whole validation split (every class), as its reader gives it."""
    if cfg.DATASET.NAME == "ImageFolder":
        return read_image_folder(cfg.DATASET.ROOT, cfg.DATASET.SPLIT_FILE or None).val
    return load_dataset(cfg.DATASET.NAME, cfg.DATASET.ROOT).val


@dataclass
class FeatureRequest:
    """One feature set a run reads: its ``role`` (train, generator_train, val, test), its images, and how
    they are encoded (:meth:`FeatureCache.get_or_extract`'s ``split``, ``shots``, ``seed``, ``passes``,
    ``augment``, ``aug_scale``)."""

    role: str
    items: list
    options: dict

    def plan_key(self, cfg: CfgNode, dataset: str) -> str:
        """What decides this set before any CLIP is loaded: the images and their crops, and the CLIP settings
        (weights, precision, device). Two requests with one plan key read one cache file."""
        o = self.options
        key = image_set_key(dataset, o["split"], o.get("shots"), [i.path for i in self.items],
                            [i.label for i in self.items], o.get("augment", False), o.get("seed", 0),
                            o.get("passes", 1), cfg.DATASET.ROOT)
        key.update(aug_scale=list(o.get("aug_scale", ())), clip=[cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.WEIGHTS],
                   precision=cfg.PRECISION, device=cfg.DEVICE)
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def class_split(cfg: CfgNode, dataset: DatasetSplits, all_base: bool) -> tuple[list[int], list[int]]:
    """Labels of the base and new classes: CoCoOp's halves, or with ``all_base`` (cross-dataset) every class."""
    if all_base:
        return list(range(dataset.num_classes)), []
    return base_new_split(dataset.num_classes, cfg.DATASET.NUM_BASE or dataset.num_base)


def feature_requests(cfg: CfgNode, dataset: DatasetSplits, with_train: bool = True, with_val: bool = False,
                     all_base: bool = False) -> list[FeatureRequest]:
    """The feature sets a run reads, in the order it reads them: the few-shot base images at the method's crop
    scale (``with_train``), at the generator's where it differs, the search images (``with_val``), the test images."""
    num_base = len(class_split(cfg, dataset, all_base)[0])
    requests = []
    if with_train:
        head_scale, generator_scale = crop_scales(cfg)
        train_items = [i for i in dataset.train if i.label < num_base]
        augmented = dict(split="train", shots=cfg.DATASET.NUM_SHOTS, seed=cfg.SEED, passes=cfg.TRAINER.SHIP.AUG_PASSES,
                         augment=True)
        requests.append(FeatureRequest("train", train_items, {**augmented, "aug_scale": head_scale}))
        if generator_scale is not None:
            requests.append(FeatureRequest("generator_train", train_items, {**augmented, "aug_scale": generator_scale}))
    if with_val and with_train:  # the search images (data.search_val); the reader drew dataset.val as the draw needs
        chosen = search_val(dataset.name, cfg.TRAINER.NAME, num_base, whole_val_split(cfg), dataset.test,
                            lambda: dataset.val, attrgetter("path"), attrgetter("label"))
        requests.append(FeatureRequest("val", chosen.items, dict(split="val", **(
            dict(shots=cfg.DATASET.NUM_SHOTS, seed=cfg.SEED) if chosen.drawn else {}))))
    requests.append(FeatureRequest("test", dataset.test, dict(split="test")))
    return requests


def extract_requested(cfg: CfgNode, dataset: DatasetSplits, clip_model: LoadedClip, device: torch.device,
                      requests: list[FeatureRequest]) -> dict[str, FeatureSet]:
    """Each request's features, from the cache or extracted into it, by role."""
    cache = FeatureCache(cfg.CACHE_DIR)
    scales = {request.role: request.options.get("aug_scale") for request in requests}
    found = {}
    for request in requests:
        if request.role == "generator_train" and "train" in scales:  # (a feature task may extract it alone)
            logger.info(f"{cfg.TRAINER.NAME}: the generator trains on features cropped at scale {scales['generator_train']} "
                        f"(TRAINER.SHIP.AUG_SCALE), the method on features cropped at {scales['train']} (its CROP_SCALE)")
        found[request.role] = cache.get_or_extract(
            clip_model, [i.path for i in request.items], [i.label for i in request.items], device, dataset=dataset.name,
            batch_size=cfg.DATALOADER.BATCH_SIZE, num_workers=cfg.DATALOADER.NUM_WORKERS, root=cfg.DATASET.ROOT,
            **request.options)
    return found


def prepare_features(cfg: CfgNode, dataset: DatasetSplits, clip_model: LoadedClip, device: torch.device,
                     with_train: bool = True, with_val: bool = False,
                     label_only: tuple[list[str], dict[str, int]] | None = None) -> SplitFeatures:
    """The class split and cached features of the test images, of the few-shot base images
    (``with_train``; evaluation alone needs none) and of the base validation images (``with_val``).

    Without ``label_only`` the classes split into base and new halves; with it (cross-dataset: the names
    and the class index of :func:`cross_dataset_label_only`) every class is a base class.
    """
    base, new = class_split(cfg, dataset, label_only is not None)
    num_base = len(base)
    sets = extract_requested(cfg, dataset, clip_model, device,
                             feature_requests(cfg, dataset, with_train, with_val, label_only is not None))
    train, val, generator_train = sets.get("train"), sets.get("val"), sets.get("generator_train")
    test = sets["test"]
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
        generator_train=generator_train,
        class_index={**{i: c for c, i in enumerate(base_classes.ids)}, **index} if label_only is not None else {},
    )
