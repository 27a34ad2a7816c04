"""Same seed, same result; a killed run resumes to the result an uninterrupted run gives."""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainers.ship.__main__ import main

from .helpers import write_image_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data") / "toy", ["cat", "dog", "car", "tree", "boat"], per_class=6)


def args(folder, weights, out, cache, *extra):
    return ["--data-dir", str(folder), "--weights", str(weights), "--shots", "2", "--seed", "3",
            "--output-dir", str(out), "--cache-dir", str(cache), "DATALOADER.NUM_WORKERS", "0",
            "TRAINER.SHIP.AUG_PASSES", "2", *map(str, extra)]


def result(out: Path) -> dict:
    r = json.loads((out / "results.json").read_text())
    r.pop("seconds"), r.pop("peak_memory_mib")  # measurements, not results
    return r


@pytest.mark.parametrize("trainer", ["SHIP_CoOp", "SHIP_TipAdapter"])
def test_two_runs_with_one_seed_agree(tmp_path, folder, tiny_clip_path, trainer, capsys):
    for name, cache in (("a", "cache_a"), ("b", "cache_b")):  # second run: fresh features too
        assert main(args(folder, tiny_clip_path, tmp_path / name, tmp_path / cache, "TRAINER.NAME", trainer,
                         "TRAINER.SHIP.GEN_EPOCHS", 3, "TRAINER.COOP.EPOCHS", 3)) == 0
    assert result(tmp_path / "a") == result(tmp_path / "b")


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, folder, tiny_clip_path):
    epochs = ["TRAINER.SHIP.GEN_EPOCHS", 5, "TRAINER.COOP.EPOCHS", 300]
    cache = tmp_path / "cache"
    assert main(args(folder, tiny_clip_path, tmp_path / "whole", cache, *epochs)) == 0

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "trainers.ship", *args(folder, tiny_clip_path, out, cache, *epochs)]
    # a progress line after every step (stdout is not a terminal): the kill waits for the prompt learner's epoch 2
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "SHIP_PROGRESS_SECONDS": "0.000001"})
    generator, log = out / "generator" / "model.pth.tar-5", out / "log.txt"

    def in_epoch_2() -> bool:
        return log.exists() and re.search(r"prompt learner: \d+/\d+ steps .*epoch 2/300", log.read_text()) is not None

    deadline = time.time() + 300
    while not in_epoch_2() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.kill()  # during the prompt learner's 300 epochs
    proc.wait()
    assert generator.exists(), "the run ended before its generator stage finished"
    assert not (out / "prompt_learner" / "model.pth.tar-300").exists(), "the kill came too late to test resuming"
    assert not (out / "results.json").exists()

    resumed = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert "Loaded finished stage from" in resumed.stdout and "generator epoch" not in resumed.stdout
    assert result(out) == result(tmp_path / "whole")


def test_negative_seed_is_an_error(tmp_path, folder, tiny_clip_path, capsys):
    assert main(args(folder, tiny_clip_path, tmp_path / "r", tmp_path / "c") + ["SEED", "-1"]) == 2
    assert "SEED -1 is not allowed; expected an integer in [0, 4294967295]" in capsys.readouterr().err
