import json
import logging

import pytest

from trainers.ship.model.clip_loader import LoadedClip, load_clip
from trainers.ship.model.text_encoder import TextEncoder

from .helpers import ListHandler, save_tiny_clip, write_image_folder


@pytest.fixture(scope="session")
def tiny_clip_path(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny_vit.pt")


@pytest.fixture(scope="session")
def tiny_clip(tiny_clip_path) -> LoadedClip:
    return load_clip(weights=str(tiny_clip_path))


@pytest.fixture(scope="session")
def text_encoder(tiny_clip) -> TextEncoder:
    return TextEncoder(tiny_clip.model)


@pytest.fixture
def ship_log():
    """The messages of the ``ship`` logger during the test."""
    handler = ListHandler()
    logger = logging.getLogger("ship")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    disabled = logging.root.manager.disable  # importing dassl (wilds) disables records up to WARNING
    logging.disable(logging.NOTSET)
    yield handler.messages
    logging.disable(disabled)
    logger.removeHandler(handler)


@pytest.fixture(scope="module")
def eurosat_root(tmp_path_factory):
    """A tiny EuroSAT in CoOp's layout: 2750/<class>/*.jpg and split_zhou_EuroSAT.json."""
    root = tmp_path_factory.mktemp("DATA")
    classes = ["AnnualCrop", "Forest", "Highway", "River"]
    write_image_folder(root / "eurosat" / "2750", classes, per_class=6)
    split = {k: [] for k in ("train", "val", "test")}
    for label, name in enumerate(classes):
        files = sorted((root / "eurosat" / "2750" / name).iterdir())
        for key, part in (("train", files[:3]), ("val", files[3:4]), ("test", files[4:])):
            split[key] += [[f"{name}/{f.name}", label, name] for f in part]
    (root / "eurosat" / "split_zhou_EuroSAT.json").write_text(json.dumps(split))
    return root
