import pytest
import torch

from trainers.ship.data import features as features_mod
from trainers.ship.data.features import FeatureCache, FeatureSet, extract_features

from .helpers import write_image_folder


@pytest.fixture
def images(tmp_path):
    root = write_image_folder(tmp_path / "imgs", ["cat", "dog"], per_class=3)
    paths = sorted(str(p) for p in root.rglob("*.jpg"))
    return paths, [0 if "/cat/" in p else 1 for p in paths]


@pytest.fixture
def encode_calls(monkeypatch):
    calls = []
    real = features_mod.encode_images

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(features_mod, "encode_images", counting)
    return calls


def get(cache, tiny_clip, images, **kw):
    paths, labels = images
    args = dict(dataset="toy", split="train", shots=3, seed=1, passes=2, augment=True)
    return cache.get_or_extract(tiny_clip, paths, labels, torch.device("cpu"), **{**args, **kw})


def test_augmented_passes_are_normalised_and_differ(tiny_clip, images):
    fs = extract_features(tiny_clip, *images, torch.device("cpu"), passes=3, augment=True, seed=0)
    assert fs.features.shape == (3, 6, 32) and fs.labels.tolist() == images[1]
    assert torch.allclose(fs.features.norm(dim=-1), torch.ones(3, 6), atol=1e-5)
    assert not torch.allclose(fs.features[0], fs.features[1])  # different random crops
    again = extract_features(tiny_clip, *images, torch.device("cpu"), passes=3, augment=True, seed=0)
    assert torch.equal(fs.features, again.features)  # seeded
    plain = extract_features(tiny_clip, *images, torch.device("cpu"), passes=3, augment=False)
    assert plain.features.shape == (1, 6, 32)  # CLIP preprocessing: one pass


def test_norms_are_clips_raw_feature_norms(tiny_clip, images):
    """features · norms is what CLIP's encode_image gives for the same preprocessed image (Tip-Adapter's raw mean)."""
    paths, labels = images
    fs = extract_features(tiny_clip, paths, labels, torch.device("cpu"))
    transform = features_mod.feature_transform(tiny_clip, augment=False)
    with torch.no_grad():
        raw = torch.cat([tiny_clip.model.encode_image(features_mod.ImageFiles([p], transform)[0][0][None]).float()
                         for p in paths])
    assert fs.norms.shape == (1, 6) and not torch.allclose(fs.norms, torch.ones(1, 6))
    assert torch.allclose(fs.raw()[0], raw, rtol=1e-4, atol=1e-5)
    assert torch.equal(fs.subset(torch.tensor(labels) == 1).norms, fs.norms[:, torch.tensor(labels) == 1])


def test_extraction_leaves_global_rng_alone(tiny_clip, images):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    extract_features(tiny_clip, *images, torch.device("cpu"), passes=2, augment=True, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_second_call_reads_cache(tmp_path, tiny_clip, images, encode_calls, ship_log):
    cache = FeatureCache(tmp_path / "cache")
    first = get(cache, tiny_clip, images)
    assert len(encode_calls) == 2  # two passes
    second = get(cache, tiny_clip, images)
    assert len(encode_calls) == 2  # nothing re-encoded
    assert torch.equal(first.features, second.features) and torch.equal(first.labels, second.labels)
    assert torch.equal(first.norms, second.norms) and first.digest() == second.digest()
    assert any("from" in m for m in ship_log)


def test_key_changes_give_new_files(tmp_path, tiny_clip, images):
    cache = FeatureCache(tmp_path / "cache")
    for kw in ({}, {"seed": 2}, {"passes": 3}, {"shots": 4}, {"split": "val"}):
        get(cache, tiny_clip, images, **kw)
    paths, labels = images
    cache.get_or_extract(tiny_clip, paths[:-1], labels[:-1], torch.device("cpu"), dataset="toy", split="train")
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 6
    assert not list((tmp_path / "cache").glob("*.tmp"))  # atomic writes leave no temporary files


def test_truncated_cache_is_rebuilt(tmp_path, tiny_clip, images, encode_calls, ship_log):
    cache = FeatureCache(tmp_path / "cache")
    first = get(cache, tiny_clip, images)
    (path,) = (tmp_path / "cache").glob("*.pt")
    path.write_bytes(path.read_bytes()[:100])
    rebuilt = get(cache, tiny_clip, images)
    assert len(encode_calls) == 4 and torch.equal(first.features, rebuilt.features)
    assert any(m.startswith("corrupt feature cache") for m in ship_log)
    assert get(cache, tiny_clip, images) is not None and len(encode_calls) == 4  # repaired on disk


@pytest.mark.parametrize("content", ["empty", "garbage", "a list", "entries missing", "not tensors", "shapes"])
def test_a_foreign_cache_file_is_rebuilt_with_one_line(tmp_path, tiny_clip, images, ship_log, content):
    cache = FeatureCache(tmp_path / "cache")
    first = get(cache, tiny_clip, images)
    (path,) = (tmp_path / "cache").glob("*.pt")
    blob = torch.load(path, weights_only=True)
    if content in ("empty", "garbage"):
        path.write_bytes(b"" if content == "empty" else b"not a torch file" * 8)
    else:
        torch.save({"a list": [1, 2], "entries missing": {"key": blob["key"]},
                    "not tensors": {**blob, "labels": blob["labels"].tolist()},
                    "shapes": {**blob, "labels": blob["labels"][:-1]}}[content], path)
    assert torch.equal(get(cache, tiny_clip, images).features, first.features)
    assert sum(m.startswith(f"corrupt feature cache {path} (") for m in ship_log) == 1


def test_a_bug_while_reading_the_cache_is_not_called_corrupt(tmp_path, tiny_clip, images, ship_log, monkeypatch):
    """Only what a bad file raises means "rebuild": any other error stops the run instead of hiding behind a rebuild."""
    cache = FeatureCache(tmp_path / "cache")
    get(cache, tiny_clip, images)

    def broken(self):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(FeatureSet, "digest", broken)
    with pytest.raises(ZeroDivisionError):
        get(cache, tiny_clip, images)
    assert not any(m.startswith("corrupt feature cache") for m in ship_log)


def test_stale_cache_is_rebuilt(tmp_path, tiny_clip, images, encode_calls, ship_log):
    cache = FeatureCache(tmp_path / "cache")
    get(cache, tiny_clip, images)
    (path,) = (tmp_path / "cache").glob("*.pt")
    blob = torch.load(path, weights_only=True)
    blob["key"]["images"] = "something else"
    torch.save(blob, path)
    get(cache, tiny_clip, images)
    assert len(encode_calls) == 4 and any(m.startswith("stale feature cache") for m in ship_log)
