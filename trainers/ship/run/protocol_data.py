"""The data a run needs: the dataset with its few-shot subsets, the class split (base, new, label-only
classes and their identities) and the cached CLIP features of each split."""
from __future__ import annotations

import logging
from operator import attrgetter

import torch
from yacs.config import CfgNode

from trainers.ship.data.classes import Classes, class_ids, merge_label_only, read_names_file
from trainers.ship.data.features import FeatureCache, FeatureSet
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


def prepare_features(cfg: CfgNode, dataset: DatasetSplits, clip_model: LoadedClip, device: torch.device,
                     with_train: bool = True, with_val: bool = False,
                     label_only: tuple[list[str], dict[str, int]] | None = None) -> SplitFeatures:
    """The class split and cached features of the test images, of the few-shot base images
    (``with_train``; evaluation alone needs none) and of the base validation images (``with_val``).

    Without ``label_only`` the classes split into base and new halves; with it (cross-dataset: the names
    and the class index of :func:`cross_dataset_label_only`) every class is a base class.
    """
    if label_only is None:
        base, new = base_new_split(dataset.num_classes, cfg.DATASET.NUM_BASE or dataset.num_base)
    else:
        base, new = list(range(dataset.num_classes)), []
    num_base = len(base)
    cache = FeatureCache(cfg.CACHE_DIR)

    def extract(items, split: str, **kwargs) -> FeatureSet:
        return cache.get_or_extract(clip_model, [i.path for i in items], [i.label for i in items], device,
                                    dataset=dataset.name, split=split, batch_size=cfg.DATALOADER.BATCH_SIZE,
                                    num_workers=cfg.DATALOADER.NUM_WORKERS, root=cfg.DATASET.ROOT, **kwargs)

    train = val = generator_train = None
    if with_train:
        head_scale, generator_scale = crop_scales(cfg)
        train_items = [i for i in dataset.train if i.label < num_base]

        def augmented(scale: tuple[float, float]) -> FeatureSet:
            return extract(train_items, "train", shots=cfg.DATASET.NUM_SHOTS, seed=cfg.SEED,
                           passes=cfg.TRAINER.SHIP.AUG_PASSES, augment=True, aug_scale=scale)

        train = augmented(head_scale)
        if generator_scale is not None:
            logger.info(f"{cfg.TRAINER.NAME}: the generator trains on features cropped at scale {generator_scale} "
                        f"(TRAINER.SHIP.AUG_SCALE), the method on features cropped at {head_scale} (its CROP_SCALE)")
            generator_train = augmented(generator_scale)
    if with_val and with_train:  # the search images (data.search_val); the reader drew dataset.val as the draw needs
        chosen = search_val(dataset.name, cfg.TRAINER.NAME, num_base, whole_val_split(cfg), dataset.test,
                            lambda: dataset.val, attrgetter("path"), attrgetter("label"))
        val = extract(chosen.items, "val", **(dict(shots=cfg.DATASET.NUM_SHOTS, seed=cfg.SEED) if chosen.drawn else {}))
    test = extract(dataset.test, "test")
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
