"""Paths that once changed a result without a word: each now gives the right result or stops with one line."""
import dataclasses
import json
import os

import pytest
import torch
from torch.utils.data import DataLoader
from yacs.config import CfgNode

from trainers.ship.__main__ import main
from trainers.ship.common.errors import ShipError
from trainers.ship.common.locks import RunLock
from trainers.ship.common.runtime import OptimizerStep, resolve_precision
from trainers.ship.config import get_cfg_defaults
from trainers.ship.data.features import FeatureCache, ImageFiles, collate_images, extract_features, feature_transform
from trainers.ship.methods import trainer_names
from trainers.ship.training.stages import STAGE_KEYS, checkpoint_file, fingerprint

from .helpers import save_tiny_clip, write_image_folder

FAST = ["TRAINER.SHIP.GEN_EPOCHS", "2", "TRAINER.COOP.EPOCHS", "2", "TRAINER.SHIP.AUG_PASSES", "1",
        "DATALOADER.NUM_WORKERS", "0"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data") / "toy", ["cat", "dog", "car", "tree"], per_class=6)


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(code, err, *expected):
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    for text in expected:
        assert text in err, err


# ---------------------------------------------------------------- 2. cache columns follow class identity
def test_tip_adapter_keeps_classes_with_one_display_name_apart(tmp_path, tiny_clip_path, capsys):
    folder = write_image_folder(tmp_path / "cranes", ["Crane", "crane", "cat", "dog"], per_class=6)
    out_dir = tmp_path / "run"
    code, out, err = run(["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--trainer", "TipAdapter",
                          "--output-dir", out_dir, "--cache-dir", tmp_path / "cache", *FAST], capsys)
    assert code == 0, err
    assert "1 class names occur more than once (Crane / crane)" in out  # one line names them
    state = torch.load(out_dir / "tip_adapter" / "model.pth.tar-0", weights_only=True)["state_dict"]
    # sorted folders: Crane, cat | crane, dog. Every class has its own column, by identity
    assert state["class_index"] == {"cranes#0": 0, "cranes#1": 1, "cranes#2": 2, "cranes#3": 3}
    assert state["values"][:, 0].sum() == 2  # Crane's two shots vote for Crane, not for crane


# ---------------------------------------------------------------- 4. evaluation under another setup
@pytest.fixture(scope="module")
def trained(tmp_path_factory, folder, tiny_clip_path):
    out = tmp_path_factory.mktemp("trained")
    assert main([str(a) for a in ["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--seed", 1,
                                  "--output-dir", out / "run", "--cache-dir", out / "cache", *FAST,
                                  "DATASET.SUBSAMPLE_CLASSES", "base"]]) == 0
    return out


@pytest.mark.parametrize("case", ["shots", "clip", "setting", "seed", "dataset"])
def test_eval_only_refuses_another_setup(trained, folder, tiny_clip_path, tmp_path, case, capsys):
    other_clip = save_tiny_clip(tmp_path / "other.pt", seed=1)
    other_folder = write_image_folder(tmp_path / "other", ["a", "b", "c", "d"], per_class=6)
    change, expected = {
        "shots": (["--shots", 4], "shots 2 (this evaluation: 4)"),
        "clip": (["--weights", other_clip], "clip tiny_vit:sha256:"),
        "setting": (["TRAINER.COOP.N_CTX", 8], "TRAINER.COOP.N_CTX 4 (this evaluation: 8)"),
        "seed": (["--seed", 2], "seed 1 (this evaluation: 2)"),
        "dataset": (["--data-dir", other_folder], "dataset toy (this evaluation: other"),
    }[case]
    flags = ["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--seed", 1, "--cache-dir", trained / "cache",
             "--eval-only", "--model-dir", trained / "run", "--output-dir", tmp_path / "eval"]
    opts = [*FAST, "DATASET.SUBSAMPLE_CLASSES", "new"]
    flag_change, opt_change = (change, []) if str(change[0]).startswith("--") else ([], change)
    code, _, err = run(flags + flag_change + opts + opt_change, capsys)
    one_error_line(code, err, expected, "--allow-mismatch")
    assert not (tmp_path / "eval" / "results.json").exists()
    if case == "seed":  # an explicit override evaluates it, with one log line
        code, out, err = run(flags + flag_change + ["--allow-mismatch"] + opts, capsys)
        assert code == 0, err
        assert "evaluating it anyway (ALLOW_SETUP_MISMATCH)" in out


def test_eval_only_under_the_same_setup_needs_no_flag(trained, folder, tiny_clip_path, tmp_path, capsys):
    code, out, err = run(["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--seed", 1,
                          "--cache-dir", trained / "cache", "--eval-only", "--model-dir", trained / "run",
                          "--output-dir", tmp_path / "eval", *FAST, "DATASET.SUBSAMPLE_CLASSES", "new"], capsys)
    assert code == 0, err
    setup = json.loads((trained / "run" / "setup.json").read_text())
    assert setup["trainer"] == "SHIP_CoOp" and setup["clip"].startswith("tiny_vit:sha256:") and setup["classes"] == "base"


# ---------------------------------------------------------------- 5. best_val deploys the best checkpoint
def test_dassl_checkpoint_choice(tmp_path):
    folder = tmp_path / "prompt_learner"
    folder.mkdir()
    for name in ("model.pth.tar-2", "model.pth.tar-10", "model-best.pth.tar"):
        (folder / name).write_bytes(b"x")
    assert checkpoint_file(folder, None).name == "model-best.pth.tar"  # what best_val kept
    assert checkpoint_file(folder, None, prefer_best=False).name == "model.pth.tar-10"  # resume: the last epoch
    assert checkpoint_file(folder, 2).name == "model.pth.tar-2"
    (folder / "model-best.pth.tar").unlink()
    assert checkpoint_file(folder, None).name == "model.pth.tar-10"
    with pytest.raises(ShipError, match="checkpoint not found"):
        checkpoint_file(folder, 7)


# ---------------------------------------------------------------- 6. the feature cache key
def test_every_image_gets_its_own_crop_whatever_the_workers_and_order(tiny_clip, folder):
    """The guarantee: each image's augmented view depends on (seed, pass, image) alone. The transformed pixels
    are compared exactly; the features only within a tolerance, since another batch layout may change float
    results in the last bits, and a different crop of any image exceeds that tolerance by far."""
    paths = sorted(str(p) for p in folder.rglob("*.jpg"))[:10]
    transform = feature_transform(tiny_clip, augment=True)
    views = ImageFiles(paths, transform, seed=3, augmentation_pass=1, root=folder)
    direct = torch.stack([views[i][0] for i in range(len(paths))])
    loader = DataLoader(views, batch_size=3, num_workers=2, collate_fn=collate_images)
    assert torch.equal(torch.cat([images for images, _ in loader]), direct)  # pixels: exactly, in workers too
    backwards = ImageFiles(paths[::-1], transform, seed=3, augmentation_pass=1, root=folder)
    assert torch.equal(torch.stack([backwards[i][0] for i in range(len(paths))]).flip(0), direct)

    labels = [0] * len(paths)
    kwargs = dict(passes=2, augment=True, seed=3, root=folder)
    serial = extract_features(tiny_clip, paths, labels, torch.device("cpu"), num_workers=0, batch_size=3, **kwargs)
    parallel = extract_features(tiny_clip, paths, labels, torch.device("cpu"), num_workers=2, batch_size=4, **kwargs)
    shuffled = extract_features(tiny_clip, paths[::-1], labels, torch.device("cpu"), num_workers=0, batch_size=10, **kwargs)
    tolerance = 1e-5
    assert (serial.features - parallel.features).abs().max() <= tolerance
    assert (serial.features - shuffled.features.flip(1)).abs().max() <= tolerance  # a crop belongs to its image
    other_crops = extract_features(tiny_clip, paths, labels, torch.device("cpu"), passes=2, augment=True, seed=4, root=folder)
    per_image = (serial.features - other_crops.features).abs().amax(dim=-1)  # [pass, image]
    assert per_image.min() > 100 * tolerance  # every other crop of every image is far outside the tolerance


def test_precision_and_device_are_in_the_feature_key(tmp_path, tiny_clip, folder, monkeypatch):
    calls = []
    monkeypatch.setattr("trainers.ship.data.features.extract_features",
                        lambda *a, **k: calls.append(1) or extract_features(tiny_clip, a[1], a[2], torch.device("cpu")))
    cache = FeatureCache(tmp_path)
    paths = sorted(str(p) for p in folder.rglob("*.jpg"))[:3]
    for clip_model, device in ((tiny_clip, "cpu"), (tiny_clip, "cpu"), (dataclasses.replace(tiny_clip, precision="bf16"), "cpu"),
                               (tiny_clip, "cuda")):
        cache.get_or_extract(clip_model, paths, [0, 0, 0], torch.device(device), dataset="toy", split="test")
    assert len(calls) == 3 and len(list(tmp_path.glob("*.pt"))) == 3  # the second call reads the first's file


# ---------------------------------------------------------------- 7. mixed precision
@pytest.mark.parametrize("capability, asked, expected", [
    ((7, 0), "auto", "fp32"), ((7, 5), "fp16", "fp16"), ((8, 0), "auto", "bf16"), ((9, 0), "bf16", "bf16"),
    ((9, 0), "fp32", "fp32"), ((7, 0), "bf16", "only emulated"), ((8, 6), "half", "unknown PRECISION"),
])
def test_precision_choice(monkeypatch, capability, asked, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100")
    if expected in ("fp32", "fp16", "bf16"):
        assert resolve_precision(asked, torch.device("cuda")) == expected
    else:
        with pytest.raises(ShipError, match=expected):
            resolve_precision(asked, torch.device("cuda"))


def test_cpu_is_fp32_and_half_precision_needs_cuda():
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    with pytest.raises(ShipError, match="PRECISION fp16 needs a CUDA device"):
        resolve_precision("fp16", torch.device("cpu"))


def test_fp16_steps_scale_the_loss_and_skip_overflow():
    weight = torch.nn.Parameter(torch.ones(3))
    step = OptimizerStep(torch.optim.SGD([weight], lr=0.1), "fp16", "cpu")
    assert step.scaler is not None and OptimizerStep(torch.optim.SGD([weight], lr=0.1), "bf16").scaler is None
    step((weight * torch.tensor([1.0, 2.0, 3.0])).sum())
    assert torch.allclose(weight.data, torch.tensor([0.9, 0.8, 0.7]))  # the unscaled gradient was applied
    before = weight.data.clone()
    step((weight * float("inf")).sum())  # an overflowing step is skipped, and the scale lowered
    assert torch.equal(weight.data, before) and step.scaler.get_scale() < 2.0 ** 16


def test_the_run_logs_its_precision(trained):
    assert "precision fp32 (PRECISION auto)" in (trained / "run" / "log.txt").read_text()


# ---------------------------------------------------------------- 8. a stage depends on its own settings only
def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 2 + 1
    if isinstance(value, str):
        return value + " x"
    return (0.25, 0.75) if value != (0.25, 0.75) else ()


@pytest.mark.parametrize("stage", ["generator", *trainer_names()])
def test_each_stage_fingerprint_holds_only_what_the_stage_reads(tiny_clip, stage):
    cfg = get_cfg_defaults()
    reference = fingerprint(cfg, tiny_clip, stage, train="digest")
    for node, settings in cfg.TRAINER.items():  # every setting of every trainer node
        for key, value in (settings.items() if isinstance(settings, CfgNode) else ()):
            changed = cfg.clone()
            changed.TRAINER[node][key] = _changed(value)
            read = f"TRAINER.{node}.{key}" in STAGE_KEYS[stage]
            assert (fingerprint(changed, tiny_clip, stage, train="digest") != reference) == read, (node, key)
    for key, value in (("DATALOADER.NUM_WORKERS", 0), ("DATASET.SUBSAMPLE_CLASSES", "new"), ("OUTPUT_DIR", "elsewhere"),
                       ("ALLOW_SETUP_MISMATCH", True)):
        changed = cfg.clone()
        node, leaf = changed, key.split(".")
        for part in leaf[:-1]:
            node = node[part]
        node[leaf[-1]] = value
        assert fingerprint(changed, tiny_clip, stage, train="digest") == reference, key
    for other in (dict(train="other"), dict(train="digest", generator="g")):
        assert fingerprint(cfg, tiny_clip, stage, **other) != reference
    assert fingerprint(cfg, dataclasses.replace(tiny_clip, precision="bf16"), stage, train="digest") != reference


def test_a_tip_adapter_setting_does_not_retrain_the_generator(tmp_path, folder, tiny_clip_path, capsys):
    common = ["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--trainer", "SHIP_TipAdapter",
              "--output-dir", tmp_path / "run", "--cache-dir", tmp_path / "cache", *FAST]
    assert run(common, capsys)[0] == 0
    changed = common + ["TRAINER.TIPADAPTER.SEARCH_SCALE", "(5.0, 2.0)", "TRAINER.COOP.LR", "0.5"]
    one_error_line(*run(changed, capsys)[::2], "holds a finished run of another setup", "SEARCH_SCALE")  # kept
    for name in ("results.json", "setup.json"):  # as a run killed after its stages, before it finished
        (tmp_path / "run" / name).unlink()
    code, out, err = run(changed, capsys)
    assert code == 0, err
    assert "generator epoch" not in out and f"Loaded finished stage from {tmp_path / 'run' / 'generator'}" in out
    assert "tip_adapter/model.pth.tar-0 was trained on other inputs or settings; retraining it" in out


# ---------------------------------------------------------------- 9. empty validation split
def test_empty_validation_split_is_one_line(tmp_path, tiny_clip_path, capsys):
    folder = write_image_folder(tmp_path / "imgs", ["a", "b", "c", "d"], per_class=4)
    split = {"train": [[f"{c}/img_00{i}.jpg", label, c] for label, c in enumerate("abcd") for i in range(2)],
             "val": [], "test": [[f"{c}/img_003.jpg", label, c] for label, c in enumerate("abcd")]}
    (tmp_path / "split.json").write_text(json.dumps(split))
    code, out, err = run(["--data-dir", folder, "--split-file", tmp_path / "split.json", "--weights", tiny_clip_path,
                          "--shots", 2, "--trainer", "TipAdapter", "--output-dir", tmp_path / "run",
                          "--cache-dir", tmp_path / "cache", *FAST], capsys)
    one_error_line(code, err, "has no validation images of its base classes")


# ---------------------------------------------------------------- 11. one run per output folder
def test_a_second_run_into_a_locked_folder_stops(tmp_path, folder, tiny_clip_path, capsys):
    out_dir = tmp_path / "run"
    holder = RunLock(out_dir)
    try:
        code, out, err = run(["--data-dir", folder, "--weights", tiny_clip_path, "--output-dir", out_dir, *FAST], capsys)
        one_error_line(code, err, f"another run (process {os.getpid()}) is writing to {out_dir}")
        assert not (out_dir / "log.txt").exists()
    finally:
        holder.release()
    RunLock(out_dir).release()  # free again once the holder is done


def test_a_ship_trainer_never_trains_the_plain_method_without_a_word(tmp_path, folder, tiny_clip_path, capsys):
    """Cross-dataset names that are all source classes leave nothing to synthesise: one line, not plain CoOp."""
    names = tmp_path / "names.txt"
    names.write_text("Cat\ndog\n")  # the folder's own classes
    argv = ["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--output-dir", tmp_path / "run",
            "--cache-dir", tmp_path / "cache", *FAST, "DATASET.LABEL_ONLY_FROM", f"['{names}']"]
    code, out, err = run(argv, capsys)
    one_error_line(code, err, "SHIP_CoOp has no label-only classes to synthesise", "TRAINER.SHIP.SYNTHESIZE False")
    code, out, err = run(argv + ["TRAINER.SHIP.SYNTHESIZE", "False"], capsys)  # asked for: the plain method
    assert code == 0, err
