"""SHIP inside a CoOp checkout, without Dassl: the installer on a fake checkout, the label-only classes of any
Dassl-shaped dataset, the registry guard, and the text encoder under CoOp's ``clip`` (a fixed 77-token mask)."""
import ast
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from yacs.config import CfgNode as CN

from trainers.ship.common.errors import ShipError
from trainers.ship.config import get_cfg_defaults
from trainers.ship.dassl.classes import dassl_class_split
from trainers.ship.dassl.config import add_ship_cfg
from trainers.ship.model.text_encoder import ClassPrompts, tokenize
from trainers.ship.tools.install_into import MANIFEST, install, uninstall

from .helpers import COOP_TRAIN_PY, coop_shaped_checkout

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def checkout(tmp_path):
    return coop_shaped_checkout(tmp_path / "CoOp")


def test_installer_adds_its_files_and_two_marked_edits(checkout, capsys):
    changes = install(checkout)
    assert any("trainers/ship" in c for c in changes) and any("train.py" in c for c in changes)
    for path in ("trainers/ship/training/stages.py", "trainers/ship/dassl/ship_coop.py", "trainers/ship_methods.py",
                 "trainers/ship/dassl/feature_trainer.py", "trainers/ship/dassl/datasets.py", "ship_datasets/catalog.py",
                 "configs/trainers/SHIP/vit_b16.yaml", "configs/datasets/cub.yaml"):
        assert (checkout / path).is_file(), path
    assert (checkout / "configs/datasets/caltech101.yaml").read_text() == "DATASET:\n  NAME: \"Caltech101\"\n"  # CoOp's kept
    assert not list((checkout / "trainers" / "ship").rglob("__pycache__"))
    text = (checkout / "train.py").read_text()
    added = [line for line in text.splitlines() if "# SHIP plug-in" in line]
    assert len(added) == 3 and "".join(line for line in text.splitlines(keepends=True) if line.rstrip() not in added) == COOP_TRAIN_PY
    lines = text.splitlines()
    assert lines.index("import trainers.zsclip") + 1 == lines.index(added[0])  # after CoOp's trainer imports
    assert lines[lines.index("def main(args):") - 3].strip().startswith("add_ship_cfg(cfg)")  # end of extend_cfg

    namespace = {}  # extend_cfg now adds TRAINER.SHIP and keeps CoOp's keys
    extend = next(n for n in ast.parse(text).body if getattr(n, "name", "") == "extend_cfg")
    exec(ast.get_source_segment(text, extend), namespace)
    cfg = CN()
    cfg.TRAINER, cfg.DATASET, cfg.MODEL = CN(), CN(), CN()
    cfg.MODEL.BACKBONE = CN()
    sys.path.insert(0, str(checkout))
    try:
        namespace["extend_cfg"](cfg)
    finally:
        sys.path.remove(str(checkout))
    assert cfg.TRAINER.COOP.N_CTX == 16 and cfg.TRAINER.COOP.EPOCHS == 200 and cfg.DATASET.LABEL_ONLY_FROM == []

    capsys.readouterr()
    assert install(checkout) == [] and "nothing to change" in capsys.readouterr().out  # idempotent

    # an install by an older version (a list of paths): another marked line and a file it no longer ships; an
    # update replaces both
    (checkout / "train.py").write_text(text.replace("import trainers.ship_methods  # SHIP plug-in",
                                                    "import trainers.ship_old  # SHIP plug-in"))
    (checkout / "trainers" / "ship_old.py").write_text("# shipped by an older version\n")
    (checkout / MANIFEST).write_text(json.dumps(["trainers/ship_old.py", "trainers/ship", "ship_datasets"]))
    changes = install(checkout)
    assert "remove trainers/ship_old.py (no longer part of SHIP)" in changes and (checkout / "train.py").read_text() == text
    assert not (checkout / "trainers" / "ship_old.py").exists()
    uninstall(checkout)
    assert (checkout / "train.py").read_text() == COOP_TRAIN_PY
    assert not (checkout / "trainers" / "ship").exists() and not (checkout / "ship_datasets").exists()
    assert (checkout / "trainers" / "coop.py").is_file() and not (checkout / MANIFEST).exists()


def test_installer_dry_run_link_and_refusals(checkout, tmp_path):
    assert install(checkout, dry_run=True) and not (checkout / "trainers" / "ship").exists()
    assert "SHIP plug-in" not in (checkout / "train.py").read_text()
    install(checkout, link=True)
    linked = checkout / "trainers" / "ship" / "training" / "stages.py"
    assert linked.is_symlink() and linked.resolve() == ROOT / "trainers" / "ship" / "training" / "stages.py"
    uninstall(checkout)
    (checkout / "trainers" / "ship_methods.py").write_text("# someone else's file\n")
    with pytest.raises(ShipError, match="ship_methods.py exists and was not installed by SHIP"):
        install(checkout)
    with pytest.raises(ShipError, match="is not a CoOp checkout"):
        install(tmp_path / "nowhere")


def test_installed_modules_import_beside_coops_datasets_package(checkout):
    """What the Dassl trainers import never needs this project's datasets/ package (CoOp has its own)."""
    install(checkout)
    code = ("import trainers.ship.training.stages, trainers.ship.run.setup, trainers.ship.dassl.classes, "
            "trainers.ship.dassl.config, trainers.ship.reports.summary, ship_datasets.catalog; "
            "import datasets; assert not hasattr(datasets, 'catalog'); print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=checkout, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(checkout)})
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_add_ship_cfg_keeps_keys_defined_already(capsys):
    cfg = CN()
    cfg.TRAINER, cfg.DATASET, cfg.MODEL = CN(), CN(), CN()
    cfg.MODEL.BACKBONE = CN()
    cfg.DATASET.SUBSAMPLE_CLASSES = "base"
    cfg.TRAINER.COOP = CN()
    cfg.TRAINER.COOP.N_CTX = 16  # CoOp's extend_cfg defines the node with its own defaults
    add_ship_cfg(cfg)
    assert cfg.TRAINER.COOP.N_CTX == 16 and cfg.TRAINER.COOP.EPOCHS == 200  # CoOp's default kept, SHIP's keys added
    assert "the checkout's defaults stay for TRAINER.COOP.N_CTX 16 (SHIP's default: 4)" in capsys.readouterr().out
    assert cfg.DATASET.SUBSAMPLE_CLASSES == "base" and cfg.PRECISION == "auto" and "SHIP" in cfg.TRAINER
    with pytest.raises(KeyError, match="TRAINER.SHIP.COOP_EPOCHS was renamed to TRAINER.COOP.EPOCHS"):
        cfg.merge_from_list(["TRAINER.SHIP.COOP_EPOCHS", "3"])  # what CoOp's train.py does with an old config


# ----------------------------------------------------------------------------- label-only classes
FULL = ["c0", "c1", "c2", "c3", "c4"]


def cfg_for(subsample, label_only_from=()):
    cfg = get_cfg_defaults()
    cfg.DATASET.NAME, cfg.DATASET.SUBSAMPLE_CLASSES = "Toy", subsample
    cfg.DATASET.LABEL_ONLY_FROM = list(label_only_from)
    return cfg


def build_all(name):
    """What building a Dassl dataset over all its classes gives (CoOp's readers or this project's)."""
    return {"Toy": ("Toy", FULL), "dtd": ("DescribableTextures", ["banded", "C1", "dotted"])}[name]


def test_label_only_classes_from_a_base_dataset_of_any_reader():
    split = dassl_class_split(cfg_for("base"), FULL[:3], build_all)  # CoOp: base = first ceil(5/2) = 3
    assert split.base.names == FULL[:3] and split.label_only == ["c3", "c4"] and split.evaluated == split.base
    assert split.class_index == {f"Toy#{i}": i for i in range(5)}
    new = dassl_class_split(cfg_for("new"), FULL[3:], build_all)  # a test_new run: identities of the new half
    assert new.evaluated.ids == ["Toy#3", "Toy#4"]
    with pytest.raises(ShipError, match="are not the first 3 of its 5 classes"):
        dassl_class_split(cfg_for("base"), ["c0", "c2", "c1"], build_all)


def test_label_only_classes_of_gzsl_and_cross_dataset_runs(tmp_path):
    gzsl = dassl_class_split(cfg_for("gzsl"), FULL, build_all, num_base=4)  # CUB: the dataset's own seen count
    assert gzsl.gzsl and gzsl.base.names == FULL[:4] and gzsl.label_only == ["c4"] and gzsl.evaluated.names == FULL
    names = tmp_path / "more.txt"
    names.write_text("zebra\n")
    xd = dassl_class_split(cfg_for("all", ["dtd", str(names)]), FULL, build_all)
    assert xd.label_only == ["banded", "dotted", "zebra"]  # "C1" is the known class c1
    assert xd.class_index["DescribableTextures#1"] == 1 and xd.class_index["DescribableTextures#2"] == 6
    assert dassl_class_split(cfg_for("all"), FULL, build_all).label_only == []


# ----------------------------------------------------------------------------- registry guard
def test_dataset_wrappers_register_only_free_names(monkeypatch, capsys):
    """Beside CoOp's readers (registered first by CoOp's train.py) the wrappers take only the free names."""
    class Registry:
        def __init__(self):
            self.names = {"Caltech101": "CoOp's reader", "EuroSAT": "CoOp's reader"}

        def registered_names(self):
            return list(self.names)

        def register(self, obj):
            assert obj.__name__ not in self.names, f"{obj.__name__} registered twice"
            self.names[obj.__name__] = obj

    registry = Registry()
    datasets_module = types.ModuleType("dassl.data.datasets")
    datasets_module.DATASET_REGISTRY, datasets_module.DatasetBase, datasets_module.Datum = registry, object, object
    for name in ("dassl", "dassl.data"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "dassl.data.datasets", datasets_module)
    monkeypatch.delitem(sys.modules, "trainers.ship.dassl.datasets", raising=False)
    import trainers.ship.dassl.datasets  # noqa: F401

    assert registry.names["Caltech101"] == "CoOp's reader" and registry.names["EuroSAT"] == "CoOp's reader"
    assert "CUB" in registry.names and "DescribableTextures" in registry.names
    assert capsys.readouterr().out == ""  # CoOp's own runs import it too: their log stays CoOp's
    from trainers.ship.dassl.config import DASSL_NOTES

    assert any("Caltech101, EuroSAT keep the reader registered already" in line for line in DASSL_NOTES)  # SHIP runs print it
    DASSL_NOTES.clear()
    monkeypatch.delitem(sys.modules, "trainers.ship.dassl.datasets")


# ----------------------------------------------------------------------------- CoOp's clip
def test_text_encoder_under_a_clip_whose_blocks_hold_a_fixed_77_token_mask(text_encoder, tiny_clip, monkeypatch):
    """CoOp's copy of clip applies each block's 77x77 mask as it is; the EOT-cut encoder builds its own mask."""
    def coop_attention(block, x):
        return block.attn(x, x, x, need_weights=False, attn_mask=block.attn_mask.to(dtype=x.dtype))[0]

    model = tiny_clip.model
    ids = tokenize(["a photo of a dog.", "sea lion"])
    with torch.no_grad():
        expected = model.encode_text(ids)  # clip-anytorch's own full pass
        for block in model.transformer.resblocks:
            assert block.attn_mask.shape == (77, 77)
            monkeypatch.setattr(block, "attention", types.MethodType(coop_attention, block))
        with pytest.raises(RuntimeError):  # what calling the transformer on a cut sequence gives under CoOp's clip
            model.transformer(model.token_embedding(ids[:, :9]).permute(1, 0, 2))
        assert torch.allclose(text_encoder(text_encoder.embed_tokens(ids), ids.argmax(-1)), expected, atol=1e-5)
        prompts = ClassPrompts(text_encoder, ["dog"], 4)
        assert prompts.suffix.shape[1] < 77 and text_encoder(*prompts.assemble(torch.zeros(4, text_encoder.width))).isfinite().all()


# ----------------------------------------------------------------------------- issue 17: inside a real checkout
def test_installer_never_overwrites_or_deletes_a_file_it_did_not_write(checkout, capsys):
    install(checkout)
    manifest = json.loads((checkout / MANIFEST).read_text())["files"]
    assert len(manifest["trainers/ship/training/stages.py"]) == 64  # a SHA-256 per file written
    mine = checkout / "configs" / "trainers" / "SHIP" / "my_cfg.yaml"  # a user's own config beside SHIP's
    mine.write_text("TRAINER:\n  COOP:\n    EPOCHS: 3\n")
    assert install(checkout) == [] and mine.is_file()  # a rerun leaves it alone
    edited = checkout / "trainers" / "ship" / "training" / "stages.py"
    edited.write_text(edited.read_text() + "# my local edit\n")
    with pytest.raises(ShipError, match="trainers/ship/training/stages.py was changed since SHIP installed it"):
        install(checkout)
    with pytest.raises(ShipError, match="trainers/ship/training/stages.py was changed since SHIP installed it"):
        uninstall(checkout)
    assert edited.read_text().endswith("# my local edit\n") and mine.is_file()  # nothing changed by either refusal
    edited.write_text((ROOT / "trainers" / "ship" / "training" / "stages.py").read_text())  # restored: both go through
    uninstall(checkout)
    assert mine.read_text() == "TRAINER:\n  COOP:\n    EPOCHS: 3\n" and not (checkout / "trainers" / "ship").exists()


def test_configs_reachable_under_every_ship_trainer_name(checkout):
    """CoOp's scripts read configs/trainers/${TRAINER}/${CFG}.yaml."""
    from trainers.ship.dassl.config import ship_trainer_names

    install(checkout)
    names = ship_trainer_names()
    assert {"SHIP_CoOp", "SHIP_CoCoOp", "SHIP_TipAdapter", "SHIP_KgCoOp", "SHIP_ProGrad", "SHIP_CLIPAdapter"} <= set(names)
    for name in names:
        assert (checkout / "configs" / "trainers" / name / "vit_b16.yaml").read_text() == \
            (ROOT / "configs" / "trainers" / "SHIP" / "vit_b16.yaml").read_text()


def test_installer_reports_a_torch_that_breaks_coops_own_trainers(checkout, monkeypatch, capsys):
    from trainers.ship.tools import install_into

    class Scheduler:  # a torch whose LR schedulers no longer take `verbose`
        def __init__(self, optimizer, last_epoch=-1):
            pass

    monkeypatch.setattr(torch.optim.lr_scheduler, "LRScheduler", Scheduler)
    monkeypatch.setattr(torch, "__version__", "2.14.1+cpu")
    install_into.install(checkout, dry_run=True)
    out = capsys.readouterr().out
    assert f"for those use {install_into.TORCH_PIN}" in out and "`verbose`" in out and "weights_only" in out

    class OldScheduler:  # torch 2.5: `verbose` taken, checkpoints loaded in full
        def __init__(self, optimizer, last_epoch=-1, verbose="deprecated"):
            pass

    monkeypatch.setattr(torch.optim.lr_scheduler, "LRScheduler", OldScheduler)
    monkeypatch.setattr(torch, "__version__", "2.5.1")
    assert install_into.torch_note() is None


def test_core_cli_inside_a_checkout_whose_datasets_package_is_coops(checkout):
    """``python -m trainers.ship`` in a checkout imports the installer's ship_datasets, never CoOp's datasets."""
    install(checkout)
    env = {"PATH": os.environ["PATH"], "HOME": str(checkout)}
    proc = subprocess.run([sys.executable, "-m", "trainers.ship", "--help"], cwd=checkout, capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0 and "--data-dir" in proc.stdout, proc.stderr[-2000:]
    code = "import trainers.ship.data.readers as d; print(d.PACKAGE)"
    assert subprocess.run([sys.executable, "-c", code], cwd=checkout, capture_output=True, text=True,
                          env=env, timeout=120).stdout.strip() == "ship_datasets"


def test_plain_coop_run_gets_no_ship_keys_and_one_line(capsys):
    from trainers.ship.dassl.config import trainer_from_argv

    cfg = CN()
    cfg.TRAINER, cfg.DATASET, cfg.MODEL = CN(), CN(), CN()
    cfg.TRAINER.COOP = CN()
    cfg.TRAINER.COOP.N_CTX = 16
    before = cfg.dump()
    add_ship_cfg(cfg, trainer_from_argv(["--root", "x", "--trainer", "CoOp", "--seed", "1"]))
    assert cfg.dump() == before  # CoOp's printed config is CoOp's
    assert capsys.readouterr().out.count("\n") == 1
    add_ship_cfg(cfg, trainer_from_argv(["--trainer=SHIP_CoOp"]))
    assert "SHIP" in cfg.TRAINER and cfg.TRAINER.COOP.EPOCHS == 200


@pytest.mark.parametrize("key, value, named", [
    ("TRAINER.COOP.CSC", True, "TRAINER.COOP.CSC True"),
    ("TRAINER.COOP.CLASS_TOKEN_POSITION", "middle", "TRAINER.COOP.CLASS_TOKEN_POSITION 'middle'"),
    ("OPTIM.MAX_EPOCH", 50, "OPTIM.MAX_EPOCH 50 is not read by SHIP_CoOp: it trains for TRAINER.COOP.EPOCHS (200)"),
])
def test_coops_keys_that_ship_coop_would_ignore_are_one_error(key, value, named):
    from trainers.ship.dassl.config import check_coop_keys

    cfg = CN()
    cfg.TRAINER, cfg.DATASET, cfg.MODEL, cfg.OPTIM = CN(), CN(), CN(), CN()
    cfg.TRAINER.COOP = CN()
    cfg.TRAINER.COOP.CSC, cfg.TRAINER.COOP.CLASS_TOKEN_POSITION = False, "end"  # CoOp's extend_cfg
    cfg.OPTIM.MAX_EPOCH, cfg.TRAINER.NAME = 10, "SHIP_CoOp"
    add_ship_cfg(cfg, "SHIP_CoOp")
    check_coop_keys(cfg, 10)  # CoOp's defaults: what SHIP_CoOp does anyway
    cfg.merge_from_list([key, value])
    with pytest.raises(ShipError, match=re.escape(named)):
        check_coop_keys(cfg, 10)
    cfg.TRAINER.NAME = "SHIP_TipAdapter"
    if key == "OPTIM.MAX_EPOCH":  # Tip-Adapter's epochs are its own key
        with pytest.raises(ShipError, match="TRAINER.TIPADAPTER.EPOCHS"):
            check_coop_keys(cfg, 10)


def test_errors_under_dassl_name_config_keys_and_download_root_expands_tilde(tmp_path, monkeypatch, tiny_clip_path):
    from trainers.ship.common import options
    from trainers.ship.model import clip_loader

    monkeypatch.setattr(options, "_current", dict(options.FLAGS))
    with pytest.raises(ShipError, match="or --weights PATH"):
        clip_loader.load_clip("ViT-X/99")
    options.use_config_keys()
    with pytest.raises(ShipError, match="or MODEL.BACKBONE.WEIGHTS PATH"):
        clip_loader.load_clip("ViT-X/99")
    monkeypatch.setenv("HOME", str(tmp_path))  # "~/.cache/clip/ViT-B-16.pt" holds a CLIP: it is found, not downloaded
    (tmp_path / ".cache" / "clip").mkdir(parents=True)
    (tmp_path / ".cache" / "clip" / "ViT-B-16.pt").write_bytes(Path(tiny_clip_path).read_bytes())
    monkeypatch.chdir(tmp_path)
    assert clip_loader.load_clip("ViT-B/16", download_root="~/.cache/clip").name == "ViT-B/16"
    assert not (tmp_path / "~").exists()


def test_checkpoint_of_a_missing_epoch_names_loadep(tmp_path):
    from trainers.ship.training.stages import checkpoint_file

    (tmp_path / "model.pth.tar-200").write_bytes(b"x")
    with pytest.raises(ShipError, match=r"--load-epoch 10, LOADEP in CoOp's scripts; this run saved epoch 200"):
        checkpoint_file(tmp_path, 10)
    assert checkpoint_file(tmp_path, 200).name == "model.pth.tar-200"


def test_imagenet_runs_read_ships_imagenet_recipe():
    from trainers.ship.dassl.config import config_for_dataset

    ship = str(ROOT / "configs" / "trainers" / "SHIP" / "vit_b16.yaml")
    path, note = config_for_dataset(ship, "ImageNet")
    assert path.endswith("SHIP/vit_b16_imagenet.yaml") and "config: " in note and "ImageNet recipe" in note
    assert config_for_dataset(ship, "Caltech101") == (ship, "")
    assert config_for_dataset("my/vit_b16.yaml", "ImageNet") == ("my/vit_b16.yaml", "")  # a user's config is theirs


def test_a_config_yacs_refuses_is_one_line_under_coops_train_py(monkeypatch, capsys):
    """CoOp's train.py has no handler: for a SHIP run, add_ship_cfg makes yacs' refusal one line, exit status 2."""
    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda *info: seen.append(info[0]))
    cfg = CN()
    cfg.TRAINER, cfg.DATASET, cfg.MODEL = CN(), CN(), CN()
    add_ship_cfg(cfg, "SHIP_CoOp")
    add_ship_cfg(cfg.clone(), "SHIP_CoOp")  # installed once
    try:
        cfg.merge_from_list(["TRAINER.SHIP.GEN_EPOCS", 1])
    except AssertionError:  # yacs: "Non-existent key"
        info = sys.exc_info()
    with pytest.raises(SystemExit) as exit_:
        sys.excepthook(*info)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: bad config: ") and "GEN_EPOCS" in err and err.count("\n") == 1
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())  # anything else: the previous hook (the traceback)
    assert seen == [RuntimeError]
    with pytest.raises(SystemExit) as exit_:  # SHIP's own refusals before Dassl runs (a trainer name, a DATA root)
        sys.excepthook(ShipError, ShipError("DATA root not found: /nowhere"), None)
    assert exit_.value.code == 2 and capsys.readouterr().err == "error: DATA root not found: /nowhere\n"


def test_core_test_keys_under_a_dassl_config_and_paper_selection_refused():
    """TEST.SELECTION / TEST.SNAPSHOT_EVERY: registered with the core's defaults (a yacs KeyError before), range
    checked, and ``paper`` refused by the SHIP Dassl trainers with one line naming the core's route."""
    from trainers.ship.config import check_settings
    from trainers.ship.dassl.config import check_selection

    core = get_cfg_defaults().TEST
    cfg = CN()
    cfg.TRAINER, cfg.DATASET, cfg.MODEL, cfg.TEST = CN(), CN(), CN(), CN()
    cfg.TEST.FINAL_MODEL = "last_step"  # Dassl's own TEST key stays
    add_ship_cfg(cfg, "SHIP_CoOp")
    assert (cfg.TEST.SELECTION, cfg.TEST.SNAPSHOT_EVERY) == (core.SELECTION, core.SNAPSHOT_EVERY) == ("honest", 10)
    cfg.TRAINER.NAME = "SHIP_CoOp"
    check_selection(cfg)
    cfg.merge_from_list(["TEST.SNAPSHOT_EVERY", 0])
    with pytest.raises(ShipError, match=r"TEST.SNAPSHOT_EVERY 0 is not allowed; expected an integer >= 1"):
        check_settings(cfg, dassl=True)
    cfg.merge_from_list(["TEST.SNAPSHOT_EVERY", 5, "TEST.SELECTION", "paper"])
    check_settings(cfg, dassl=True)
    with pytest.raises(ShipError, match=r"TEST.SELECTION paper is not run by SHIP_CoOp .*python -m trainers.ship "
                                        r"\.\.\. TEST.SELECTION paper, or scripts/ship/paper.sh"):
        check_selection(cfg)
