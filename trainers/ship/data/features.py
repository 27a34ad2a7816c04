"""CLIP image features, extracted once and cached on disk.

Training images are encoded under the paper's augmentation for K passes
(features ``[K, N, D]``); an epoch then draws one pass per image, the cheap
equivalent of re-encoding augmented images at every step. Val/test images are
encoded once with CLIP's own preprocessing (``[1, N, D]``). Features are
L2-normalised; their norms before that are kept beside them (Tip-Adapter averages the raw passes).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from trainers.ship.common.errors import ShipError
from trainers.ship.common.locks import once_per_key
from trainers.ship.common.progress import Progress
from trainers.ship.common.runtime import atomic_save, autocast
from trainers.ship.model.clip_loader import LoadedClip

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
LOCKS = ".locks"  # the per-key locks of the extractions (common.locks.once_per_key), under the cache folder
CACHE_FORMAT = 4  # 3: crops seeded by the path relative to the dataset root; stored digest; 4: raw norms kept

logger = logging.getLogger("ship")


def train_transform(resolution: int, scale: tuple[float, float] = (0.5, 1.0)) -> T.Compose:
    """The paper's training augmentation: random resized crop (bicubic), horizontal flip, CLIP normalisation."""
    return T.Compose([
        T.RandomResizedCrop(resolution, scale=scale, interpolation=T.InterpolationMode.BICUBIC),
        T.RandomHorizontalFlip(0.5),
        T.ToTensor(),
        T.Normalize(CLIP_MEAN, CLIP_STD),
    ])


def test_transform(resolution: int) -> T.Compose:
    """CLIP's preprocessing: bicubic resize, centre crop, normalisation."""
    return T.Compose([
        T.Resize(resolution, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(resolution),
        T.ToTensor(),
        T.Normalize(CLIP_MEAN, CLIP_STD),
    ])


def augmentation_seed(seed: int, augmentation_pass: int, name: str) -> int:
    """The seed of one image's random crop and flip in one pass: a function of (seed, pass, image) only;
    ``name``: the image's path relative to the dataset root (any bytes a file name may hold)."""
    return int(hashlib.sha256(f"{seed}:{augmentation_pass}:".encode() + os.fsencode(name)).hexdigest()[:15], 16)


def crop_name(path: str, root: str | os.PathLike | None) -> str:
    """What an image's crops are seeded from: its path relative to ``root`` (the dataset root), so a copy of the
    dataset in another folder gives the same crops; the path as given without a root."""
    if root is None:
        return path
    return os.path.relpath(os.path.abspath(os.path.expanduser(path)), os.path.abspath(os.path.expanduser(root)))


class ImageFiles(Dataset):
    """Images read from disk (grayscale and RGBA converted to RGB), transformed.

    With ``seed`` (augmented passes) each image's transform draws from its own generator seeded by
    :func:`augmentation_seed` of its path relative to ``root``, so the crops depend neither on the loader's
    workers or batch order nor on where the dataset lies.

    An item is ``(image, "")``, or ``(None, reason)`` for an image that cannot be read: a loader worker hands
    the reason to the main process, which stops with it as one line (an exception raised in a worker would
    reach the user as a traceback).
    """

    def __init__(self, paths: Sequence[str], transform: T.Compose, seed: int | None = None, augmentation_pass: int = 0,
                 root: str | os.PathLike | None = None):
        self.paths, self.transform = list(paths), transform
        self.seed, self.augmentation_pass, self.root = seed, augmentation_pass, root

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | None, str]:
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
        except Exception as exc:  # not an image, truncated, a folder, a symlink loop, a decompression bomb, ...
            reason = " ".join(str(exc).split()) or type(exc).__name__
            return None, f"cannot read image {path}: {reason}"
        if self.seed is None:
            return self.transform(image), ""
        with torch.random.fork_rng(devices=[]):  # torchvision's random transforms draw from torch's global RNG
            torch.manual_seed(augmentation_seed(self.seed, self.augmentation_pass, crop_name(path, self.root)))
            return self.transform(image), ""


def collate_images(items: list[tuple[torch.Tensor | None, str]]) -> tuple[torch.Tensor | None, str]:
    """A batch of :class:`ImageFiles` items: the stacked images, or None and the first image's reason to stop."""
    for _, reason in items:
        if reason:
            return None, reason
    return torch.stack([image for image, _ in items]), ""


def _batch_images(batch: tuple[torch.Tensor | None, str]) -> int:
    """The number of images in a :func:`collate_images` batch (its progress units)."""
    return 0 if batch[0] is None else len(batch[0])


@dataclass
class FeatureSet:
    """Normalised features ``[K, N, D]`` (K augmentation passes; K = 1 without augmentation), labels ``[N]`` and,
    for encoded images, the features' L2 norms before normalisation ``[K, N]`` (None for synthetic features)."""

    features: torch.Tensor
    labels: torch.Tensor
    norms: torch.Tensor | None = None
    _digest: str | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return self.labels.shape[0]

    def digest(self) -> str:
        """SHA-256 of the values, labels and norms, computed once (the stages that train on a set fingerprint it)."""
        if self._digest is None:
            h = hashlib.sha256(self.features.float().contiguous().numpy())
            h.update(self.labels.contiguous().numpy())
            if self.norms is not None:
                h.update(self.norms.float().contiguous().numpy())
            self._digest = h.hexdigest()
        return self._digest

    def subset(self, mask: torch.Tensor, label_offset: int = 0) -> "FeatureSet":
        """Images where ``mask`` holds, with ``label_offset`` subtracted from their labels."""
        return FeatureSet(self.features[:, mask], self.labels[mask] - label_offset,
                          None if self.norms is None else self.norms[:, mask])

    def raw(self) -> torch.Tensor:
        """The features before normalisation ``[K, N, D]``; a set without norms raises (it has no raw features)."""
        if self.norms is None:
            raise ShipError("these features carry no norms (synthetic, or built by hand): their raw values are unknown")
        return self.features * self.norms.unsqueeze(-1)


@torch.inference_mode()
def encode_images(
    clip_model: LoadedClip,
    paths: Sequence[str],
    transform: T.Compose,
    device: torch.device,
    batch_size: int = 128,
    num_workers: int = 0,
    desc: str = "encode",
    seed: int | None = None,
    augmentation_pass: int = 0,
    root: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Image features ``[N, D]`` as CLIP gives them, not normalised (float32, on the CPU); ``seed``, ``root``: see
    :class:`ImageFiles`;
    ``progress``: the bar to count the images on (default: its own, named ``desc``).
    An image that cannot be read stops the run with one :class:`ShipError` line, whatever the loader's workers."""
    loader = DataLoader(
        ImageFiles(paths, transform, seed, augmentation_pass, root), batch_size=batch_size, num_workers=num_workers,
        pin_memory=device.type == "cuda", persistent_workers=False, collate_fn=collate_images,
    )
    chunks = [torch.empty(0, clip_model.model.visual.output_dim)]
    batches = (progress.track(loader, _batch_images) if progress is not None
               else Progress(desc, len(paths), "image").track(loader, _batch_images, close=True))
    for images, reason in batches:
        if reason:
            raise ShipError(reason)
        with autocast(clip_model.precision):
            chunks.append(clip_model.model.encode_image(images.to(device)).float().cpu())
    return torch.cat(chunks)


def extract_features(
    clip_model: LoadedClip,
    paths: Sequence[str],
    labels: Sequence[int],
    device: torch.device,
    passes: int = 1,
    augment: bool = False,
    aug_scale: tuple[float, float] = (0.5, 1.0),
    seed: int = 0,
    batch_size: int = 128,
    num_workers: int = 0,
    desc: str = "encode",
    root: str | os.PathLike | None = None,
) -> FeatureSet:
    """Encode images ``passes`` times (augmented) or once (CLIP preprocessing).

    Each augmented view is drawn from (``seed``, pass, image path relative to ``root``) alone, and the global random state is
    left untouched, so the features and every later draw of the run are the same whether or not they
    come from the cache, and whatever the number of loader workers.
    """
    transform = feature_transform(clip_model, augment, aug_scale)
    n = passes if augment else 1
    progress = Progress(desc, n * len(paths), "image")
    with torch.random.fork_rng(devices=[]):  # the loader draws its workers' base seed from the global RNG
        raw = torch.stack([
            encode_images(clip_model, paths, transform, device, batch_size, num_workers, desc,
                          seed if augment else None, k, root, progress)
            for k in progress.over(range(n), lambda k: f"pass {k + 1}/{n}")
        ])
    return FeatureSet(F.normalize(raw, dim=-1), torch.as_tensor(list(labels), dtype=torch.long), raw.norm(dim=-1))


def feature_transform(clip_model: LoadedClip, augment: bool, aug_scale: tuple[float, float] = (0.5, 1.0)) -> T.Compose:
    """The paper's training augmentation, or CLIP's preprocessing, at the backbone's resolution."""
    resolution = clip_model.input_resolution
    return train_transform(resolution, aug_scale) if augment else test_transform(resolution)


def image_set_key(dataset: str, split: str, shots: int | None, paths: Sequence[str], labels: Sequence[int],
                  augment: bool, seed: int, passes: int, root: str | os.PathLike | None) -> dict:
    """The part of a cache key the images and their crops decide; the rest (:meth:`FeatureCache.get_or_extract`)
    is the CLIP's: its weights, precision, device type and transform."""
    return {"dataset": dataset, "split": split, "shots": shots, "images": image_list_digest(paths, labels),
            "augment": augment, **({"seed": seed, "passes": passes, "root": str(root)} if augment else {})}


def image_list_digest(paths: Sequence[str], labels: Sequence[int]) -> str:
    """SHA-256 of the ordered (path, label) list."""
    h = hashlib.sha256()
    for path, label in zip(paths, labels):
        h.update(f"{path}\t{label}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


class CorruptCache(Exception):
    """A cache file that cannot be a feature set: truncated, garbled, foreign, or changed since it was written."""


# What torch.load raises on a truncated (EOFError, RuntimeError: no zip directory), garbled (KeyError, ValueError:
# the legacy reader) or foreign file (UnpicklingError: not weights only).
_UNREADABLE = (EOFError, RuntimeError, KeyError, ValueError, pickle.UnpicklingError)
_ENTRIES = ("key", "features", "labels", "norms", "digest")


def _read_cache_file(path: Path) -> dict:
    """The cache file's entries, checked for their types and shapes; :class:`CorruptCache` if they are not a set's."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except _UNREADABLE as exc:
        raise CorruptCache(f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(blob, dict) or any(k not in blob for k in _ENTRIES):
        found = sorted(map(str, blob)) if isinstance(blob, dict) else type(blob).__name__
        raise CorruptCache(f"not a feature cache: it holds {found}; expected entries {', '.join(_ENTRIES)}")
    features, labels, norms = blob["features"], blob["labels"], blob["norms"]
    if not all(isinstance(t, torch.Tensor) for t in (features, labels, norms)) or not isinstance(blob["digest"], str):
        raise CorruptCache("its features, labels or norms are not tensors, or its digest is not a string")
    if features.dim() != 3 or labels.dim() != 1 or features.shape[1] != labels.shape[0] or norms.shape != features.shape[:2]:
        raise CorruptCache(f"features {tuple(features.shape)} do not match labels {tuple(labels.shape)} "
                           f"and norms {tuple(norms.shape)}")
    return blob


class FeatureCache:
    """Feature sets on disk, one file per key; written atomically with the digest of their values and labels,
    verified against it on read."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    def path_for(self, key: dict) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        readable = "_".join(str(key.get(k, "")) for k in ("dataset", "split", "backbone"))
        return self.root / f"{re.sub(r'[^A-Za-z0-9.-]+', '-', readable).strip('-')}_{digest}.pt"

    def load(self, key: dict) -> FeatureSet | None:
        """The cached set for ``key``; None (with a log line) if absent, corrupt, changed since it was written
    (values or labels that no longer match the stored digest) or stale."""
        path = self.path_for(key)
        if not path.exists():
            return None
        try:
            blob = _read_cache_file(path)
            if blob["key"] != key:
                logger.info(f"stale feature cache {path} (built for another key); rebuilding")
                return None
            feature_set = FeatureSet(blob["features"], blob["labels"], blob["norms"])
            if feature_set.digest() != blob["digest"]:
                raise CorruptCache("its values or labels do not match the digest stored with them")
        except CorruptCache as exc:  # only what a truncated, garbled or foreign file raises: a bug is not "corrupt"
            logger.info(f"corrupt feature cache {path} ({exc}); rebuilding")
            return None
        return feature_set

    def save(self, key: dict, feature_set: FeatureSet) -> Path:
        path = self.path_for(key)
        atomic_save({"key": key, "features": feature_set.features, "labels": feature_set.labels,
                     "norms": feature_set.norms, "digest": feature_set.digest()}, path)
        return path

    def get_or_extract(
        self,
        clip_model: LoadedClip,
        paths: Sequence[str],
        labels: Sequence[int],
        device: torch.device,
        *,
        dataset: str,
        split: str,
        shots: int | None = None,
        seed: int = 0,
        passes: int = 1,
        augment: bool = False,
        aug_scale: tuple[float, float] = (0.5, 1.0),
        batch_size: int = 128,
        num_workers: int = 0,
        root: str | os.PathLike | None = None,
    ) -> FeatureSet:
        """Read the features from the cache, or extract and cache them; ``root``: the dataset root that augmented
        crops are seeded relative to (:func:`crop_name`).

        The key holds everything that changes them: the CLIP weights, the compute precision and device
        type, the transform (resolution, crop scale, interpolation), the image list, and for augmented
        sets the seed and pass count. (Loader workers and batch size change nothing: see :class:`ImageFiles`.)
        """
        key = {
            "format": CACHE_FORMAT, "backbone": clip_model.name, "clip": clip_model.identity,
            "precision": clip_model.precision, "device": device.type,
            "transform": repr(feature_transform(clip_model, augment, aug_scale)),
            **image_set_key(dataset, split, shots, paths, labels, augment, seed, passes, root),
        }
        path = self.path_for(key)
        cached = self.load(key)
        if cached is None:  # one process encodes a key; the others wait for its file (common.locks)
            lock = self.root / LOCKS / f"{path.name}.lock"  # beside the cache, not among its files
            with once_per_key(lock, f"{dataset} {split} features ({path.name})") as waited:
                cached = self.load(key) if waited else None  # made by the process this one waited for
                if cached is None:
                    feature_set = extract_features(
                        clip_model, paths, labels, device, passes=passes, augment=augment, aug_scale=aug_scale,
                        seed=seed, batch_size=batch_size, num_workers=num_workers, desc=f"{dataset} {split}", root=root,
                    )
                    self.save(key, feature_set)
                    logger.info(f"{split} features: {len(feature_set)} images x {feature_set.features.shape[0]} "
                                f"passes saved to {path}")
                    return feature_set
        logger.info(f"{split} features: {len(cached)} images x {cached.features.shape[0]} passes from {path}")
        return cached
