"""A killed or interrupted run, a failing disk, bad images and checkpoints, and one folder per run: nothing breaks
with a traceback, nothing is silently wrong, nothing finished is lost (issue 17)."""
import errno
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from trainers.ship.common.errors import INTERRUPTED, ShipError
from trainers.ship.common.locks import RunLock
from trainers.ship.common.runtime import atomic_save, atomic_write_json, setup_logger
from trainers.ship.data.features import FeatureCache, extract_features

from .helpers import write_image_folder
from .test_no_silent_path import FAST, one_error_line, run

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data") / "toy", ["cat", "dog", "car", "tree"], per_class=6)


def flags(folder, weights, out, cache, *extra):
    """Command-line arguments of a fast run; ``extra``: flags first, then config keys."""
    return ["--data-dir", folder, "--weights", weights, "--shots", 2, "--seed", 1, "--output-dir", out,
            "--cache-dir", cache, *extra, *FAST]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, folder, tiny_clip_path):
    """A finished SHIP_CoOp run (base classes) and its feature cache."""
    out = tmp_path_factory.mktemp("trained")
    from trainers.ship.__main__ import main

    assert main([str(a) for a in flags(folder, tiny_clip_path, out / "run", out / "cache",
                                       "DATASET.SUBSAMPLE_CLASSES", "base")]) == 0
    return out


def leftovers(*folders: Path) -> list[Path]:
    """Half-written files (the atomic writer's temporaries)."""
    return [p for f in folders if f.exists() for p in f.rglob("*.tmp")]


# ---------------------------------------------------------------- the run lock
def test_a_killed_runs_lock_never_blocks_a_rerun(tmp_path):
    """The run forks a long-lived process (as the loader's workers) and is killed -9: the rerun starts at once."""
    out = tmp_path / "run"
    ready_r, ready_w = os.pipe()
    run_pid = os.fork()
    if run_pid == 0:  # the run
        try:
            lock = RunLock(out)  # noqa: F841 (held until the process dies)
            worker = os.fork()
            if worker == 0:
                time.sleep(60)
                os._exit(0)
            os.write(ready_w, str(worker).encode())
            time.sleep(60)
        finally:
            os._exit(1)
    os.close(ready_w)
    worker = int(os.read(ready_r, 32))
    try:
        with pytest.raises(ShipError, match=rf"another run \(process {run_pid}\) is writing to"):
            RunLock(out)  # the run is alive: its folder is locked
        os.kill(run_pid, signal.SIGKILL)
        os.waitpid(run_pid, 0)
        os.kill(worker, 0)  # its worker still lives, with the lock file open
        RunLock(out).release()  # ... and holds no lock
    finally:
        os.kill(worker, signal.SIGKILL)


# ---------------------------------------------------------------- Ctrl-C
def interrupt(cmd: list[str], ready, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """Start ``cmd`` in its own process group (``env`` added to the environment), wait for ``ready()``, then press
    Ctrl-C (SIGINT to the whole group, as a terminal does: the loader's workers get it too)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, **(env or {})})
    deadline = time.time() + timeout
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it was interrupted: {proc.stderr.read()}"
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    for _ in range(100):  # nothing of the run is left running (the loader's workers included)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("processes of the interrupted run are still alive")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def command(folder, weights, out, cache, *settings) -> list[str]:
    """``python -m trainers.ship`` of a fast run, with config ``settings`` after (overriding) the fast ones."""
    return [sys.executable, "-m", "trainers.ship", *map(str, flags(folder, weights, out, cache) + list(settings))]


def test_ctrl_c_in_feature_extraction_with_loader_workers(tmp_path, folder, tiny_clip_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    log = out / "log.txt"
    cmd = command(folder, tiny_clip_path, out, cache, "TRAINER.SHIP.AUG_PASSES", 2000, "DATALOADER.NUM_WORKERS", 2,
                  "DATALOADER.BATCH_SIZE", 2)

    def extracting() -> bool:  # a progress line of the training images' extraction: batches are being encoded
        return log.exists() and re.search(r" train: [1-9]\d*/\d+ images", log.read_text()) is not None

    done = interrupt(cmd, extracting, env={"SHIP_PROGRESS_SECONDS": "0.000001"})  # a line after every batch
    assert done.returncode == 130 and done.stderr == INTERRUPTED + "\n", done.stderr
    assert not list(cache.glob("*train*.pt")), "the interrupt came after the extraction"
    assert not leftovers(out, cache) and not (out / "setup.json").exists() and not (out / "results.json").exists()


def test_ctrl_c_in_an_epoch_loop(tmp_path, folder, tiny_clip_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    cmd = command(folder, tiny_clip_path, out, cache, "TRAINER.COOP.EPOCHS", 100000)
    generator = out / "generator" / "model.pth.tar-2"
    done = interrupt(cmd, generator.exists)
    assert done.returncode == 130 and done.stderr == INTERRUPTED + "\n", done.stderr
    assert not (out / "prompt_learner").exists() or not list((out / "prompt_learner").iterdir())
    assert not leftovers(out, cache) and not (out / "setup.json").exists() and not (out / "results.json").exists()
    torch.load(generator, weights_only=True)  # the finished stage is whole


# ---------------------------------------------------------------- failing reads and writes
def test_a_folder_that_cannot_be_written_is_one_line(tmp_path, folder, tiny_clip_path, capsys):
    code, _, err = run(flags(folder, tiny_clip_path, "/sys/ship-run", tmp_path / "cache"), capsys)
    one_error_line(code, err, "/sys/ship-run")
    out = tmp_path / "run"
    (out / "log.txt").mkdir(parents=True)  # not a file: cannot be opened for writing
    code, _, err = run(flags(folder, tiny_clip_path, out, tmp_path / "cache"), capsys)
    one_error_line(code, err, "Is a directory", str(out / "log.txt"))


def test_a_full_disk_is_one_line_naming_the_file(tmp_path, folder, tiny_clip_path, capsys, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    code, _, err = run(flags(folder, tiny_clip_path, tmp_path / "run", tmp_path / "cache"), capsys)
    one_error_line(code, err, "cannot write", str(tmp_path / "cache"), "No space left on device")
    assert not leftovers(tmp_path)


def test_a_file_limit_reached_inside_torch_save_or_the_log_is_one_line(tmp_path):
    """``torch.save`` turns a full disk into a RuntimeError, ``logging`` prints a traceback and goes on: both stop
    with one line naming the file."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))  # Python ignores SIGXFSZ: writes fail with EFBIG
    try:
        with pytest.raises(ShipError, match=f"cannot write {tmp_path / 'big.pt'}: File too large"):
            atomic_save({"a": torch.zeros(100_000)}, tmp_path / "big.pt")
        logger = setup_logger(tmp_path / "run")
        with pytest.raises(ShipError, match=f"cannot write {tmp_path / 'run' / 'log.txt'}: File too large"):
            logger.info("x" * 30_000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        setup_logger(tmp_path / "other")  # log.txt handlers of a writable folder again
    assert not leftovers(tmp_path)


# ---------------------------------------------------------------- bad images, with any number of loader workers
def bad_image(kind: str, path: Path) -> None:
    good = write_image_folder(path.parent / "good", ["x"], per_class=1) / "x" / "img_000.jpg"
    if kind == "corrupt":
        path.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(300))
    elif kind == "zero_bytes":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink_loop":
        path.symlink_to(path.name)
    elif kind == "not_an_image":
        path.write_text("hello")
    elif kind == "decompression_bomb":  # a PNG header of 20000 x 20000 pixels (400 megapixels) and no data
        import struct
        import zlib

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
                         + chunk(b"IEND", b""))


KINDS = ["corrupt", "zero_bytes", "truncated", "directory", "symlink_loop", "not_an_image", "decompression_bomb"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_image_is_one_line(tmp_path, tiny_clip, folder, kind):
    """Read in the main process here (fast); the loader's workers hand the same reason over (next test)."""
    bad = tmp_path / "bad.jpg"
    bad_image(kind, bad)
    paths = sorted(str(p) for p in folder.rglob("*.jpg"))[:5] + [str(bad)]
    with pytest.raises(ShipError) as caught:
        extract_features(tiny_clip, paths, [0] * len(paths), CPU, augment=True, num_workers=0, batch_size=2)
    message = str(caught.value)
    assert message.startswith(f"cannot read image {bad}: ") and "\n" not in message, message


def test_a_bad_image_under_the_default_workers_is_the_same_line_as_without(tmp_path, tiny_clip_path, capsys):
    data = write_image_folder(tmp_path / "toy", ["cat", "dog", "car", "tree"], per_class=6)
    (data / "cat" / "img_000.jpg").write_text("not an image")
    lines = []
    for workers in ([], ["DATALOADER.NUM_WORKERS", 2]):
        argv = ["--data-dir", data, "--weights", tiny_clip_path, "--shots", 6, "--output-dir", tmp_path / "run",
                "--cache-dir", tmp_path / "cache", "TRAINER.SHIP.GEN_EPOCHS", 1, *workers]
        code, _, err = run(argv, capsys)
        one_error_line(code, err, f"cannot read image {data / 'cat' / 'img_000.jpg'}")
        lines.append(err)
    assert lines[0] == lines[1]


def test_a_class_folder_name_that_is_not_utf8_is_one_line(tmp_path, tiny_clip_path, capsys):
    data = write_image_folder(tmp_path / "toy", ["cat", "dog", "car"], per_class=4)
    os.rename(data / "car", os.path.join(os.fsencode(data), b"caf\xe9"))
    code, _, err = run(["--data-dir", data, "--weights", tiny_clip_path, "--output-dir", tmp_path / "run",
                        "--cache-dir", tmp_path / "cache", *FAST], capsys)
    one_error_line(code, err, "class folder name b'caf\\xe9'", "is not valid UTF-8")


# ---------------------------------------------------------------- evaluation of a checkpoint
def eval_flags(folder, weights, trained, out, *extra):
    return ["--data-dir", folder, "--weights", weights, "--shots", 2, "--seed", 1, "--cache-dir", trained / "cache",
            "--eval-only", "--model-dir", trained / "run", "--output-dir", out, *extra, *FAST,
            "DATASET.SUBSAMPLE_CLASSES", "new"]


@pytest.mark.parametrize("content", ["no_state_dict", "another_method"])
def test_eval_only_with_a_checkpoint_that_does_not_fit_is_one_line(tmp_path, folder, tiny_clip_path, trained, capsys,
                                                                    content):
    run_dir = tmp_path / "copy"
    shutil.copytree(trained / "run", run_dir)
    checkpoint = run_dir / "prompt_learner" / "model.pth.tar-2"
    blob = {"weights": torch.zeros(3)} if content == "no_state_dict" else \
        {"state_dict": {"values": torch.zeros(4, 2), "keys": torch.zeros(4, 32)}, "epoch": 0}
    torch.save(blob, checkpoint)
    argv = eval_flags(folder, tiny_clip_path, trained, tmp_path / "eval")
    argv[argv.index(trained / "run")] = run_dir
    code, _, err = run(argv, capsys)
    one_error_line(code, err, f"{checkpoint} does not fit", "another method or for another number of classes")


class _RunsCode:
    """Unpickling this object calls ``Path.touch`` on its path: what a checkpoint from someone else could do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_checkpoint_that_carries_code_is_refused_and_nothing_runs(tmp_path, folder, tiny_clip_path, trained, capsys):
    run_dir, marker = tmp_path / "copy", tmp_path / "code-ran"
    shutil.copytree(trained / "run", run_dir)
    checkpoint = run_dir / "prompt_learner" / "model.pth.tar-2"
    blob = torch.load(checkpoint, weights_only=True)
    torch.save({**blob, "extra": _RunsCode(marker)}, checkpoint)
    argv = eval_flags(folder, tiny_clip_path, trained, tmp_path / "eval")
    argv[argv.index(trained / "run")] = run_dir
    code, _, err = run(argv, capsys)
    one_error_line(code, err, f"refused checkpoint {checkpoint}", "objects other than weights (", "nothing of it was run")
    assert not marker.exists()


def test_load_epoch_0_is_never_the_last_epoch(tmp_path, folder, tiny_clip_path, trained, capsys):
    code, _, err = run(eval_flags(folder, tiny_clip_path, trained, tmp_path / "eval", "--load-epoch", 0), capsys)
    one_error_line(code, err, "checkpoint not found", "model.pth.tar-0")
    code, _, err = run(eval_flags(folder, tiny_clip_path, trained, tmp_path / "eval", "--load-epoch", 2), capsys)
    assert code == 0, err


def test_eval_only_on_another_class_set_with_the_same_folder_name_is_refused(tmp_path, tiny_clip_path, trained, capsys):
    other = write_image_folder(tmp_path / "toy", ["cat", "dog", "bus", "tree"], per_class=6)  # folder name toy too
    code, _, err = run(eval_flags(other, tiny_clip_path, trained, tmp_path / "eval"), capsys)
    one_error_line(code, err, "class_names: class 0 'car' (this evaluation: 'bus')", "another class set")


def test_a_setup_of_an_older_version_says_what_it_cannot_compare(tmp_path, tiny_clip_path, trained, capsys):
    """A setup.json written before class_names existed cannot refuse another class set: one line says so."""
    run_dir = tmp_path / "older"
    shutil.copytree(trained / "run", run_dir)
    setup = json.loads((run_dir / "setup.json").read_text())
    del setup["class_names"]
    (run_dir / "setup.json").write_text(json.dumps(setup))
    other = write_image_folder(tmp_path / "toy", ["cat", "dog", "bus", "tree"], per_class=6)
    argv = eval_flags(other, tiny_clip_path, trained, tmp_path / "eval")
    argv[argv.index(trained / "run")] = run_dir
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert f"{run_dir / 'setup.json'} was written by an older version without class_names; these are not compared" in out


# ---------------------------------------------------------------- one run per folder; finished work is kept
def test_eval_only_never_overwrites_a_training_runs_results(tmp_path, folder, tiny_clip_path, trained, capsys):
    before = (trained / "run" / "results.json").read_bytes()
    code, _, err = run(eval_flags(folder, tiny_clip_path, trained, trained / "run"), capsys)
    one_error_line(code, err, "the evaluation's output folder is the training run's folder")
    other_run = tmp_path / "other"
    shutil.copytree(trained / "run", other_run)
    code, _, err = run(eval_flags(folder, tiny_clip_path, trained, other_run), capsys)
    one_error_line(code, err, f"{other_run} holds a training run (setup.json)")
    assert (trained / "run" / "results.json").read_bytes() == before
    assert (other_run / "results.json").read_bytes() == before


@pytest.mark.parametrize("change", [("--seed", 2, "seed 1 (this run: 2)"),
                                    ("--trainer", "SHIP_TipAdapter", "trainer 'SHIP_CoOp' (this run: 'SHIP_TipAdapter')"),
                                    ("TRAINER.SHIP.KL_WEIGHT", 0.5, "KL_WEIGHT 1.0 (this run: 0.5)")])
def test_a_folder_holding_another_finished_run_is_refused(tmp_path, folder, tiny_clip_path, trained, capsys, change):
    out = tmp_path / "run"
    shutil.copytree(trained / "run", out)
    kept = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != "log.txt"}
    code, _, err = run(flags(folder, tiny_clip_path, out, trained / "cache", *change[:2], "DATASET.SUBSAMPLE_CLASSES",
                             "base"), capsys)
    one_error_line(code, err, f"{out} holds a finished run of another setup", change[2])
    assert {p: p.read_bytes() for p in kept} == kept


def test_setup_and_results_are_written_when_the_run_finishes_results_last(tmp_path, folder, tiny_clip_path, capsys,
                                                                         monkeypatch):
    import trainers.ship.common.runtime as runtime

    written = []
    atomic = runtime._atomic_write
    monkeypatch.setattr(runtime, "_atomic_write", lambda path, write: written.append(Path(path).name) or atomic(path, write))
    out = tmp_path / "run"
    code, _, err = run(flags(folder, tiny_clip_path, out, tmp_path / "cache", "TRAINER.SHIP.FEATURE_MAP", 4), capsys)
    assert code == 0, err
    assert written[-2:] == ["setup.json", "results.json"] and written.count("setup.json") == 1, written
    assert "synthesis.json" in written
    results_time = (out / "results.json").stat().st_mtime_ns
    assert all(p.stat().st_mtime_ns <= results_time for p in out.rglob("*") if p.is_file() and p.name != "log.txt")


# ---------------------------------------------------------------- the feature cache
@pytest.mark.parametrize("tamper", ["nan_values", "permuted_labels"])
def test_a_tampered_cache_file_is_rebuilt_with_one_line(tmp_path, tiny_clip, folder, tamper, ship_log):
    paths = sorted(str(p) for p in folder.rglob("*.jpg"))
    labels = [i // 6 for i in range(len(paths))]
    cache = FeatureCache(tmp_path)
    kwargs = dict(dataset="toy", split="train", augment=True, passes=2, root=folder)
    fresh = cache.get_or_extract(tiny_clip, paths, labels, CPU, **kwargs)
    (path,) = tmp_path.glob("*.pt")
    blob = torch.load(path, weights_only=True)
    if tamper == "nan_values":
        blob["features"][0, 0, 0] = float("nan")
    else:
        blob["labels"] = blob["labels"].flip(0)
    torch.save(blob, path)
    again = cache.get_or_extract(tiny_clip, paths, labels, CPU, **kwargs)
    assert [m for m in ship_log if m.startswith("corrupt feature cache")] == [
        f"corrupt feature cache {path} (its values or labels do not match the digest stored with them); rebuilding"]
    assert torch.equal(again.features, fresh.features) and torch.equal(again.labels, fresh.labels)
    assert cache.load(torch.load(path, weights_only=True)["key"]) is not None  # rebuilt whole


def test_a_copied_dataset_gives_the_same_crops(tmp_path, tiny_clip, folder):
    copy = shutil.copytree(folder, tmp_path / "elsewhere" / "toy")
    sets = []
    for root in (folder, copy):
        paths = sorted(str(p) for p in Path(root).rglob("*.jpg"))
        sets.append(FeatureCache(tmp_path / "cache").get_or_extract(
            tiny_clip, paths, [0] * len(paths), CPU, dataset="toy", split="train", augment=True, passes=2, root=root))
    assert torch.equal(sets[0].features, sets[1].features)
    other_root = extract_features(tiny_clip, sorted(str(p) for p in copy.rglob("*.jpg")), [0] * 24, CPU, passes=2,
                                  augment=True, root=copy.parent)  # seeded by other relative paths: other crops
    assert not torch.allclose(other_root.features, sets[0].features, atol=1e-3)


# ---------------------------------------------------------------- file modes
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_written_files_follow_the_umask(tmp_path, folder, tiny_clip_path, capsys, umask, mode):
    previous = os.umask(umask)
    try:
        atomic_save({"a": torch.zeros(1)}, tmp_path / "x.pt")
        atomic_write_json({"a": 1}, tmp_path / "x.json")
        assert stat.S_IMODE((tmp_path / "x.pt").stat().st_mode) == mode
        assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == mode
        if umask == 0o022:  # a whole run: results, setup, checkpoints, cache files
            code, _, err = run(flags(folder, tiny_clip_path, tmp_path / "run", tmp_path / "cache"), capsys)
            assert code == 0, err
            files = [p for d in ("run", "cache") for p in (tmp_path / d).rglob("*") if p.is_file()]
            assert {p.name for p in files} >= {"results.json", "setup.json", "model.pth.tar-2"}
            assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {p.name: oct(mode) for p in files}
    finally:
        os.umask(previous)


# ---------------------------------------------------------------- a split without test images
def test_new_classes_without_test_images_are_one_line(tmp_path, tiny_clip_path, capsys):
    data = write_image_folder(tmp_path / "toy", ["a", "b", "c", "d"], per_class=4)
    split = {"train": [[f"{c}/img_00{i}.jpg", label, c] for label, c in enumerate("abcd") for i in range(2)],
             "val": [[f"{c}/img_002.jpg", label, c] for label, c in enumerate("abcd")],
             "test": [[f"{c}/img_003.jpg", label, c] for label, c in enumerate("ab")]}  # none of the new classes c, d
    (tmp_path / "split.json").write_text(json.dumps(split))
    argv = ["--data-dir", data, "--split-file", tmp_path / "split.json", "--weights", tiny_clip_path, "--shots", 2,
            "--output-dir", tmp_path / "run", "--cache-dir", tmp_path / "cache", *FAST]
    code, _, err = run(argv, capsys)
    one_error_line(code, err, "toy has no test images of its new classes")
    assert not (tmp_path / "run" / "results.json").exists()
    code, _, err = run(argv + ["DATASET.SUBSAMPLE_CLASSES", "base"], capsys)
    assert code == 0, err
    split["test"].append(["c/img_003.jpg", 2, "c"])  # one new class with test images, one without
    (tmp_path / "split.json").write_text(json.dumps(split))
    code, out, err = run(argv[:argv.index("--output-dir") + 1] + [tmp_path / "run2"] + argv[argv.index("--output-dir") + 2:],
                         capsys)
    assert code == 0, err
    assert "1 of the 2 new classes have no test images and are not scored: d" in out


def test_a_swallowed_ctrl_c_still_stops_the_next_step(capsys):
    """Ctrl-C raised where Python swallows exceptions (a __del__, a logging lock after a loader worker forks:
    "Exception ignored in ...") is remembered: the next progress step stops the run, and nothing is printed."""
    from trainers.ship.common.errors import remember_interrupts
    from trainers.ship.common.progress import Progress

    class InterruptedWhileCollected:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)

    restore = remember_interrupts()
    try:
        steps = Progress("loop", 10, interval=1e9)
        InterruptedWhileCollected()  # collected at once: the KeyboardInterrupt is raised inside __del__
        with pytest.raises(KeyboardInterrupt):
            steps.update()
    finally:
        restore()
    assert "Exception ignored" not in capsys.readouterr().err
    steps.update()  # restored: the interrupt was this run's, not the next one's


def test_a_failure_that_follows_ctrl_c_is_reported_as_the_interrupt(capsys):
    """Loader workers also get Ctrl-C and exit; if the run notices that first ("DataLoader worker exited
    unexpectedly"), the user still sees the one interrupt line and status 130. The same failure without Ctrl-C is
    a bug and keeps its traceback."""
    from trainers.ship.common.errors import INTERRUPTED, report_errors

    def interrupted_then_workers_gone():
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            pass  # swallowed, as it may be inside the loader
        raise RuntimeError("DataLoader worker (pid(s) 1) exited unexpectedly")

    assert report_errors(interrupted_then_workers_gone) == 130
    assert capsys.readouterr().err == INTERRUPTED + "\n"

    def workers_gone():
        raise RuntimeError("DataLoader worker (pid(s) 1) exited unexpectedly")

    with pytest.raises(RuntimeError):
        report_errors(workers_gone)
