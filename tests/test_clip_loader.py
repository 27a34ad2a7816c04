import urllib.error

import pytest
import torch

from trainers.ship.common.errors import ShipError
from trainers.ship.model import clip_loader
from trainers.ship.model.clip_loader import load_clip

from .helpers import save_tiny_clip


def test_loads_state_dict_frozen_fp32(tiny_clip):
    model = tiny_clip.model
    assert all(not p.requires_grad for p in model.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert tiny_clip.input_resolution == 32
    assert tiny_clip.name == "tiny_vit" and tiny_clip.identity.startswith("tiny_vit:sha256:")


def test_resnet_backbone_dims(tmp_path):
    loaded = load_clip(weights=str(save_tiny_clip(tmp_path / "tiny_rn.pt", resnet=True)))
    assert loaded.model.text_projection.shape == (64, 48)
    assert loaded.model.encode_image(torch.zeros(1, 3, 32, 32)).shape == (1, 48)


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(ShipError, match=r"CLIP weights file not found: .*nope\.pt"):
        load_clip(weights=str(tmp_path / "nope.pt"))


def test_corrupt_weights_file_is_named(tmp_path, tiny_clip_path):
    bad = tmp_path / "cut.pt"
    bad.write_bytes(tiny_clip_path.read_bytes()[:5000])
    with pytest.raises(ShipError, match=r"corrupt CLIP weights file .*cut\.pt"):
        load_clip(weights=str(bad))


def test_not_a_clip_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(ShipError, match="not a CLIP checkpoint"):
        load_clip(weights=str(path))


def test_unknown_backbone_lists_known():
    with pytest.raises(ShipError, match=r"unknown backbone 'ViT-Q/7'.*ViT-B/16"):
        load_clip("ViT-Q/7")


def test_named_backbone_without_network_says_where(tmp_path, monkeypatch):
    def offline(url, root):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(clip_loader._clip_impl, "_download", offline)
    with pytest.raises(ShipError) as err:
        load_clip("ViT-B/16", download_root=str(tmp_path))
    message = str(err.value)
    assert str(tmp_path / "ViT-B-16.pt") in message and "--weights" in message and "\n" not in message


def test_named_backbone_read_from_cache_dir(tmp_path, tiny_clip_path, monkeypatch):
    monkeypatch.setattr(clip_loader._clip_impl, "_download", lambda url, root: pytest.fail("must not download"))
    (tmp_path / "ViT-B-16.pt").write_bytes(tiny_clip_path.read_bytes())
    loaded = load_clip("ViT-B/16", download_root=str(tmp_path))
    assert loaded.name == "ViT-B/16" and loaded.model.text_projection.shape == (64, 32)
