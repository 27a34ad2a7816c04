"""Every setting against its declared range (one error line each), integers for float keys, label-only name
files, incomplete CLIP weights and a missing label-only dataset (config.build, data.classes, model.clip_loader)."""
import pytest
import torch
from yacs.config import CfgNode as CN

from trainers.ship.__main__ import main
from trainers.ship.common.errors import ShipError
from trainers.ship.config import build_cfg, check_settings, declared_ranges, get_cfg_defaults
from trainers.ship.dassl.config import add_ship_cfg
from trainers.ship.data.classes import read_names_file, read_source_dataset
from trainers.ship.methods import METHODS
from trainers.ship.model.clip_loader import check_blocks, load_clip

from .helpers import write_image_folder


def leaves(node, prefix=""):
    for key, value in node.items():
        yield from leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [(f"{prefix}{key}", value)]


def test_every_key_declares_a_range_its_default_meets():
    ranges = declared_ranges()
    defaults = dict(leaves(get_cfg_defaults()))
    assert sorted(defaults) == sorted(ranges), "a key without a declared range, or a range without a key"
    for key, value in defaults.items():
        assert ranges[key].ok(value), f"{key}'s default {value!r} is outside its own range"
    for method in METHODS.values():  # a method declares its ranges beside its defaults, in its own file
        if method.config and method.__module__.startswith("trainers.ship.methods."):
            assert set(method.ranges()) == set(method.defaults()), method.name


BAD = [  # (key, value as on the command line, what the error must say)
    ("TRAINER.COOP.EPOCHS", "-1", "an integer >= 1"),
    ("TRAINER.SHIP.GEN_EPOCHS", "-3", "an integer >= 1"),
    ("TRAINER.TIPADAPTER.EPOCHS", "-1", "an integer >= 0"),
    ("TRAINER.SHIP.KL_WEIGHT", "-0.5", ">= 0"),
    ("TRAINER.SHIP.N_CTX", "0", "[1, 64]"),
    ("TRAINER.SHIP.N_CTX", "100", "[1, 64]"),
    ("TRAINER.COOP.N_CTX", "-2", "[1, 64]"),
    ("TRAINER.SHIP.ENCODER_HIDDEN", "0", ">= 1"),
    ("TRAINER.SHIP.MLP_HIDDEN", "-4", ">= 1"),
    ("TRAINER.SHIP.LATENT_DIM", "-1", ">= 0"),
    ("TRAINER.SHIP.SYN_POOL_PER_CLASS", "-5", ">= 0"),
    ("TRAINER.SHIP.AUG_SCALE", "(0.0, 0.0)", "0 < a <= b <= 1"),
    ("TRAINER.SHIP.AUG_SCALE", "(0.9, 0.5)", "0 < a <= b <= 1"),
    ("TRAINER.COCOOP.WARMUP_EPOCHS", "-1", ">= 0"),
    ("TRAINER.CLIPADAPTER.RATIO", "-0.2", "[0, 1]"),
    ("TRAINER.COOP.BATCH_SIZE", "0", ">= 1"),
    ("TRAINER.SHIP.GEN_BATCH_SIZE", "-8", ">= 1"),
    ("DATALOADER.BATCH_SIZE", "0", ">= 1"),
    ("TRAINER.COOP.LR", "-0.002", "> 0"),
    ("TRAINER.SHIP.GEN_LR", "nan", "finite"),
    ("TRAINER.CLIPADAPTER.MOMENTUM", "-0.9", "[0, 1]"),
    ("TRAINER.SHIP.AUG_PASSES", "0", ">= 1"),
    ("TRAINER.SHIP.FEATURE_MAP", "-1", ">= 0"),
    ("DATASET.TEMPLATES", "['']", "one {}"),
    ("DATASET.TEMPLATES", "['a photo of a dog.']", "one {}"),
    ("TRAINER.COOP.OPTIM", "'adam'", "sgd, adamw"),
    ("TRAINER.SHIP.GENERATOR", "'gan'", "prompt"),
    ("DATASET.SUBSAMPLE_CLASSES", "'half'", "all, base, new, gzsl"),
]


@pytest.mark.parametrize("key,value,expected", BAD, ids=[f"{k}={v}" for k, v, _ in BAD])
def test_a_bad_setting_is_one_line_naming_key_value_and_range(key, value, expected):
    with pytest.raises(ShipError) as info:
        build_cfg(opts=[key, value])
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{key} ") and expected in message


def test_generator_epochs_zero_names_the_untrained_control():
    with pytest.raises(ShipError, match="TRAINER.SHIP.GENERATOR untrained"):
        build_cfg(opts=["TRAINER.SHIP.GEN_EPOCHS", "0"])


def test_every_violation_is_named_in_one_error_line(tmp_path, capsys):
    code = main(["--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"), "TRAINER.SHIP.KL_WEIGHT", "-1",
                 "DATALOADER.BATCH_SIZE", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "TRAINER.SHIP.KL_WEIGHT -1.0" in err and "DATALOADER.BATCH_SIZE 0" in err
    assert not (tmp_path / "out").exists()  # nothing is written before the settings are known good


def test_integers_for_float_keys_in_overrides_and_files(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("TRAINER:\n  SHIP:\n    GEN_LR: 1\n  COOP:\n    WEIGHT_DECAY: 0\n")
    cfg = build_cfg([str(config)], opts=["TRAINER.SHIP.KL_WEIGHT", "10", "TRAINER.KGCOOP.LAMBDA", "8"])
    for value, expected in ((cfg.TRAINER.SHIP.KL_WEIGHT, 10.0), (cfg.TRAINER.SHIP.GEN_LR, 1.0),
                            (cfg.TRAINER.COOP.WEIGHT_DECAY, 0.0), (cfg.TRAINER.KGCOOP.LAMBDA, 8.0)):
        assert type(value) is float and value == expected
    with pytest.raises(ShipError, match="Type mismatch"):  # a float for an integer key stays an error
        build_cfg(opts=["TRAINER.SHIP.GEN_EPOCHS", "2.5"])


def dassl_like_cfg():
    """A config as Dassl's ``get_cfg_default`` gives it (a plain yacs tree with Dassl's own keys)."""
    cfg = CN()
    cfg.DATASET = CN()
    cfg.DATASET.NAME, cfg.DATASET.NUM_SHOTS = "", -1  # Dassl's -1: every image, not a SHIP range
    cfg.TRAINER = CN()
    cfg.TRAINER.NAME = "CoOp"
    cfg.OPTIM = CN()
    cfg.OPTIM.LR = 0.002
    add_ship_cfg(cfg)
    return cfg


def test_dassl_config_accepts_integers_for_floats_and_checks_ships_keys(tmp_path):
    cfg = dassl_like_cfg()
    config = tmp_path / "c.yaml"
    config.write_text("TRAINER:\n  SHIP:\n    GEN_LR: 1\n")
    cfg.merge_from_file(str(config))  # as CoOp's train.py merges the trainer's config, then the command line
    cfg.merge_from_list(["TRAINER.SHIP.KL_WEIGHT", "10", "OPTIM.LR", "1"])
    assert (cfg.TRAINER.SHIP.KL_WEIGHT, cfg.TRAINER.SHIP.GEN_LR, cfg.OPTIM.LR) == (10.0, 1.0, 1.0)
    check_settings(cfg.clone(), dassl=True)  # Dassl's own keys (NUM_SHOTS -1, TRAINER.NAME CoOp) are not SHIP's
    cfg.merge_from_list(["TRAINER.SHIP.AUG_PASSES", "0"])
    with pytest.raises(ShipError, match="TRAINER.SHIP.AUG_PASSES 0 is not allowed"):
        check_settings(cfg, dassl=True)


# --------------------------------------------------------------------------- label-only names, CLIP blocks
@pytest.mark.parametrize("text,expected", [("", "lists no class names"), ("\n  \n", "lists no class names"),
                                           ("zebra\nokapi\nZebra\n", "'Zebra' twice")])
def test_label_only_name_file_empty_or_with_a_repeat_is_one_line(tmp_path, text, expected):
    path = tmp_path / "names.txt"
    path.write_text(text)
    with pytest.raises(ShipError, match=expected):
        read_names_file(str(path))
    path.write_bytes(b"caf\xe9\n")
    with pytest.raises(ShipError, match="cannot read class-name file"):
        read_names_file(str(path))


def test_label_only_dataset_not_on_disk_leaves_no_folder_behind(tmp_path):
    def dassl_reader():  # CoOp's readers: mkdir_if_missing(split_fewshot_dir), then read the split file
        (tmp_path / "eurosat" / "split_fewshot").mkdir()
        raise FileNotFoundError(2, "No such file or directory", str(tmp_path / "eurosat" / "split_zhou_EuroSAT.json"))

    with pytest.raises(ShipError, match="EuroSAT .DATASET.LABEL_ONLY_FROM. not found"):
        read_source_dataset("EuroSAT", str(tmp_path), "eurosat", dassl_reader)
    assert not (tmp_path / "eurosat").exists()
    (tmp_path / "eurosat").mkdir()
    with pytest.raises(ShipError, match="split_zhou_EuroSAT.json"):
        read_source_dataset("EuroSAT", str(tmp_path), "eurosat", dassl_reader)
    assert list((tmp_path / "eurosat").iterdir()) == []


def fake_clip_state(visual_layers: int, width: int = 768, text_layers: int = 12, text_width: int = 512) -> dict:
    state = {"text_projection": torch.zeros(text_width, 512), "visual.proj": torch.zeros(width, 512),
             "visual.conv1.weight": torch.zeros(width, 3, 16, 16)}
    for i in range(visual_layers):
        state[f"visual.transformer.resblocks.{i}.attn.in_proj_weight"] = torch.zeros(1)
    for i in range(text_layers):
        state[f"transformer.resblocks.{i}.attn.in_proj_weight"] = torch.zeros(1)
    return state


def test_clip_weights_without_a_block_are_one_line(tmp_path, tiny_clip_path):
    check_blocks(fake_clip_state(12), tmp_path / "ViT-B-16.pt")  # ViT-B/16's depth
    with pytest.raises(ShipError, match="has 11 blocks in visual.transformer.resblocks, but a published CLIP of width 768 has 12"):
        check_blocks(fake_clip_state(11), tmp_path / "ViT-B-16.pt")  # without its last visual block
    with pytest.raises(ShipError, match="has 11 blocks in transformer.resblocks"):
        check_blocks(fake_clip_state(12, text_layers=11), tmp_path / "ViT-B-16.pt")
    state = torch.load(tiny_clip_path)  # a width no published CLIP has: blocks numbered without a gap
    state = {k: v for k, v in state.items() if not k.startswith("visual.transformer.resblocks.0.")}
    torch.save(state, tmp_path / "gap.pt")
    with pytest.raises(ShipError, match="lacks block 0 of visual.transformer.resblocks"):
        load_clip(weights=str(tmp_path / "gap.pt"))


def test_a_good_run_still_validates(tmp_path, tiny_clip_path, capsys):
    folder = write_image_folder(tmp_path / "toy", ["cat", "dog", "car", "tree"], per_class=4)
    code = main(["--data-dir", str(folder), "--weights", str(tiny_clip_path), "--shots", "1", "--trainer", "SHIP_CoOp",
                 "--output-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"), "DATALOADER.NUM_WORKERS", "0",
                 "TRAINER.SHIP.AUG_PASSES", "1", "TRAINER.SHIP.GEN_EPOCHS", "1", "TRAINER.COOP.EPOCHS", "1",
                 "TRAINER.SHIP.KL_WEIGHT", "2", "TRAINER.SHIP.FEATURE_MAP", "0"])
    assert code == 0, capsys.readouterr().err
    assert "KL_WEIGHT: 2.0" in (tmp_path / "r" / "log.txt").read_text()  # the integer 2, as a float


@pytest.mark.parametrize("dassl", [False, True])
def test_add_ship_cfg_takes_every_default_from_the_core(dassl, monkeypatch):
    """Every key of the core's config that a Dassl config lacks (but CORE_ONLY) is added with the core's default, so a
    default lives in one place; Dassl's own keys keep Dassl's values. With Dassl installed: on its real config."""
    import sys

    from yacs.config import CfgNode

    from trainers.ship.config import get_cfg_defaults
    from trainers.ship.dassl.config import CORE_ONLY, add_ship_cfg, core_keys
    from trainers.ship.common.ranges import lookup
    from trainers.ship.common.run_log import usable_cpus

    if dassl:
        pytest.importorskip("dassl", reason="compares with Dassl's real config; install Dassl.pytorch to run it")
        from dassl.config import get_cfg_default

        cfg = get_cfg_default()
    else:
        cfg = CfgNode({"SEED": -1, "OUTPUT_DIR": "", "DATASET": CfgNode({"NAME": "", "ROOT": "", "NUM_SHOTS": -1})})
    before = {key: lookup(cfg, key) for key, _ in core_keys(get_cfg_defaults())}
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    add_ship_cfg(cfg, "SHIP_CoOp")
    core = dict(core_keys(get_cfg_defaults()))
    assert "CACHE_DIR" in core and "TRAINER.SHIP.GEN_EPOCHS" in core and not set(CORE_ONLY) & set(core)
    for key, default in core.items():
        present, value = before[key]
        if key == "DATALOADER.NUM_WORKERS" and present:  # Dassl's 4, fewer on fewer cores (add_ship_cfg's one change)
            value = min(value, usable_cpus())
        assert lookup(cfg, key) == (True, value if present else default), key
    assert lookup(cfg, "DEVICE") == (False, None)  # a core-only key stays out of a Dassl config
