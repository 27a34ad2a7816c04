"""Progress of long loops (log lines when the output is a file, a bar on a terminal that log lines never share),
the header of log.txt, and the loader workers' default."""
from __future__ import annotations

import io
import logging
import re
import sys

import pytest
import torch
import torch.nn.functional as F

import trainers.ship.common.progress as progress_mod
from trainers.ship.common.errors import ShipError
from trainers.ship.common.progress import Progress, progress_interval
from trainers.ship.config import get_cfg_defaults
from trainers.ship.data.features import FeatureSet, extract_features
from trainers.ship.model.classifiers import ConditionalPromptLearner, PromptLearner
from trainers.ship.model.generator import ShipGenerator
from trainers.ship.training.loops import train_generator, train_prompt_learner

from .helpers import write_image_folder

PROGRESS_LINE = re.compile(r"^(?P<desc>[\w -]+): (?P<done>\d+)/(?P<total>\d+) (?P<unit>\w+)s \(\d+%\), (?P<note>[^,]+), ")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def visible_lines(text: str) -> list[str]:
    """What a terminal shows: each carriage return moves back to the line's start and overwrites it."""
    shown = []
    for line in text.split("\n"):
        screen = ""
        for segment in line.split("\r"):
            screen = segment + screen[len(segment):]
        shown.append(screen.rstrip())
    return shown


@pytest.fixture
def clock(monkeypatch):
    """A clock that advances 10 s at every reading."""
    now = [0.0]

    def tick() -> float:
        now[0] += 10.0
        return now[0]

    monkeypatch.setattr(progress_mod, "_clock", tick)


def test_not_a_terminal_logs_a_line_at_a_steady_interval(ship_log, clock, monkeypatch):
    monkeypatch.setenv("SHIP_PROGRESS_SECONDS", "30")
    progress = Progress("prompt learner", 20)
    for epoch in progress.epochs(2):
        for _ in progress.track(range(10)):
            pass
    # the clock reads 10 s at the start and 10 s later at every step: a line every third step
    assert ship_log == [
        "prompt learner: 3/20 steps (15%), epoch 1/2, 30s elapsed, about 2m 50s left",
        "prompt learner: 6/20 steps (30%), epoch 1/2, 1m 00s elapsed, about 2m 20s left",
        "prompt learner: 9/20 steps (45%), epoch 1/2, 1m 30s elapsed, about 1m 50s left",
        "prompt learner: 12/20 steps (60%), epoch 2/2, 2m 00s elapsed, about 1m 20s left",
        "prompt learner: 15/20 steps (75%), epoch 2/2, 2m 30s elapsed, about 50s left",
        "prompt learner: 18/20 steps (90%), epoch 2/2, 3m 00s elapsed, about 20s left",
    ]


@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan", "inf"])
def test_a_bad_progress_interval_is_one_error(value, monkeypatch):
    monkeypatch.setenv("SHIP_PROGRESS_SECONDS", value)
    with pytest.raises(ShipError, match=f"SHIP_PROGRESS_SECONDS={value!r}: expected a positive number of seconds"):
        progress_interval()


def progress_lines(messages: list[str], desc: str) -> list[re.Match]:
    return [m for m in map(PROGRESS_LINE.match, messages) if m and m["desc"] == desc]


def test_loops_report_progress_inside_epochs(ship_log, text_encoder, monkeypatch):
    """Every step of the generator and of a prompt learner (batch 1: CoCoOp's long epochs) counts."""
    monkeypatch.setenv("SHIP_PROGRESS_SECONDS", "1e-9")  # a line at every step
    torch.manual_seed(0)
    labels = torch.arange(3).repeat(2)
    train = FeatureSet(F.normalize(torch.randn(2, 6, text_encoder.embed_dim), dim=-1), labels)
    names = ["cat", "dog", "car"]
    learner = PromptLearner(text_encoder, n_ctx=4, ctx_init="a photo of a")
    train_prompt_learner(learner, learner.class_prompts(names), train, epochs=2, batch_size=1)
    generator = ShipGenerator(text_encoder)
    train_generator(generator, generator.class_prompts(names), train, epochs=2, batch_size=4)
    steps = progress_lines(ship_log, "prompt learner")
    assert [int(m["done"]) for m in steps] == list(range(1, 13)) and {m["total"] for m in steps} == {"12"}
    assert [m["note"] for m in steps] == ["epoch 1/2"] * 6 + ["epoch 2/2"] * 6
    gen = progress_lines(ship_log, "generator")
    assert [(int(m["done"]), m["note"]) for m in gen] == [(1, "epoch 1/2"), (2, "epoch 1/2"), (3, "epoch 2/2"), (4, "epoch 2/2")]


def test_cocoop_scoring_a_test_set_reports_images(ship_log, text_encoder, monkeypatch):
    monkeypatch.setenv("SHIP_PROGRESS_SECONDS", "1e-9")
    learner = ConditionalPromptLearner(text_encoder, max_prompts=6)  # 3 classes: 2 images at a time
    features = F.normalize(torch.randn(5, text_encoder.embed_dim), dim=-1)
    with torch.no_grad():
        logits = learner.logits(learner.class_prompts(["cat", "dog", "car"]), features)
    assert logits.shape == (5, 3)
    assert [line.split(",")[0] for line in ship_log if line.startswith("CoCoOp scoring")] == [
        "CoCoOp scoring: 2/5 images (40%)", "CoCoOp scoring: 4/5 images (80%)", "CoCoOp scoring: 5/5 images (100%)"]


def test_feature_extraction_reports_images_over_all_passes(ship_log, tiny_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_PROGRESS_SECONDS", "1e-9")
    root = write_image_folder(tmp_path / "data", ["cat", "dog"], per_class=3)
    paths = sorted(str(p) for p in root.rglob("*.jpg"))
    extract_features(tiny_clip, paths, [0] * len(paths), torch.device("cpu"), passes=2, augment=True, batch_size=4,
                     desc="train features")
    lines = progress_lines(ship_log, "train features")
    assert [(m["done"], m["total"], m["unit"], m["note"]) for m in lines] == [
        ("4", "12", "image", "pass 1/2"), ("6", "12", "image", "pass 1/2"),
        ("10", "12", "image", "pass 2/2"), ("12", "12", "image", "pass 2/2")]


def test_on_a_terminal_log_lines_never_share_the_bar_line(monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(sys, "stderr", terminal)
    logger = logging.getLogger("ship")
    handler = logging.StreamHandler(sys.stdout)
    monkeypatch.setattr(logger, "handlers", [handler])
    progress = Progress("generator", 4, interval=1e-9)
    for epoch in progress.epochs(2):
        for _ in progress.track(range(2)):
            pass
        logger.info(f"epoch {epoch}")
    shown = visible_lines(terminal.getvalue())
    assert "epoch 1" in shown and "epoch 2" in shown  # alone on their lines, the bar cleared first
    assert not any(PROGRESS_LINE.match(line) for line in shown)  # no periodic lines on a terminal: the bar says it
    assert logger.handlers == [handler]  # the console handler is back after the bar


def test_log_txt_has_a_header_per_run_and_timestamps(tmp_path, tiny_clip_path, capsys, monkeypatch):
    from trainers.ship.__main__ import main

    data = write_image_folder(tmp_path / "data", ["cat", "dog", "car", "tree"], per_class=6)
    argv = ["--data-dir", str(data), "--weights", str(tiny_clip_path), "--trainer", "ZeroshotCLIP", "--shots", "2",
            "--output-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "DATALOADER.NUM_WORKERS", "0"]
    monkeypatch.setattr(sys, "orig_argv", ["python3", "-m", "trainers.ship", *argv])  # the command as typed
    assert main(argv) == 0 and main(argv) == 0
    log = (tmp_path / "run" / "log.txt").read_text()
    runs = log.split("=" * 80 + "\n")[1:]
    assert len(runs) == 2 and all("** Config **" in run for run in runs)  # each run's config follows its separator
    header = runs[0].splitlines()
    assert re.fullmatch(r"run started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d on .+", header[0])
    assert header[1] == f"command: python3 -m trainers.ship --data-dir {data} " + " ".join(argv[2:])
    assert re.match(r"versions: python 3\.\d+\.\d+, torch \S+, torchvision \S+, clip-anytorch \S+, numpy \S+", header[3])
    assert header[4].startswith("device: cpu (")
    logged = [line for line in log.splitlines() if re.search(r"\* accuracy: [\d.]+%$", line)]
    assert logged and all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", line) for line in logged)
    assert "=" * 80 in capsys.readouterr().out  # stdout: the same header, lines without timestamps


@pytest.mark.parametrize("cores, workers", [(1, 1), (2, 2), (3, 3), (64, 4)])
def test_loader_workers_default_to_the_cores_this_process_may_use(cores, workers, monkeypatch):
    monkeypatch.setattr("trainers.ship.config.defaults.usable_cpus", lambda: cores)
    assert get_cfg_defaults().DATALOADER.NUM_WORKERS == workers


class _FixedHead(torch.nn.Module):
    """A head whose logits are given: ``predict(x, n_classes)`` -> predicted classes."""

    def __init__(self, predict, n_classes):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.text_encoder = type("T", (), {"precision": "fp32"})()
        self.predict, self.n_classes = predict, n_classes

    def logits(self, prompts, x):
        return torch.nn.functional.one_hot(self.predict(x), self.n_classes).float()


class _Stream:
    def sample(self, n):
        return torch.randn(n, 4), torch.randint(6, 12, (n,))


def test_a_final_head_that_predicts_a_few_classes_is_one_warning(ship_log):
    """warn_if_head_collapsed scores the final head on the training features (and as many synthetic ones): a head
    that predicts 2 of 12 classes for everything warns once, naming the trainer; one that predicts the labels does not;
    the random state is left as it was."""
    from trainers.ship.training.loops import warn_if_head_collapsed

    labels = torch.arange(6).repeat(5)
    train = FeatureSet(torch.randn(2, 30, 4), labels)
    collapsed = _FixedHead(lambda x: (x[:, 0] > 0).long(), 12)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    cpu = torch.device("cpu")
    assert warn_if_head_collapsed("SHIP_Toy", lambda x: collapsed.logits(None, x), "fp32", cpu, train, _Stream())
    assert torch.equal(torch.rand(3), expected)
    (line,) = [m for m in ship_log if "collapsed" in m]
    assert line.startswith("warning: SHIP_Toy collapsed: 3 of its 12 classes received 100% of its predictions on 30 "
                           "of its training features and 30 synthetic ones")
    healthy = _FixedHead(lambda x: labels[: len(x)] if len(x) == 30 else torch.arange(len(x)) % 12, 12)
    assert not warn_if_head_collapsed("Toy", lambda x: healthy.logits(None, x), "fp32", cpu, train)
