"""Each feature set is encoded once however many processes need it at once (``common.locks.once_per_key``):
concurrent processes over one cache key, a holder killed mid-extraction, and a file system without locks."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from trainers.ship.common import locks
from trainers.ship.data.features import FeatureCache

from .helpers import write_image_folder

ROOT = Path(__file__).resolve().parents[1]

# One process: wait for GO (so that all start together), then read or extract the train features of the folder
# (2 augmented passes); ENCODE_DELAY seconds are added to every encoded batch (a slow extraction) and the file
# ENCODING is written when the first batch starts. Logs go to stderr; the result is the digest and the path.
WORKER = r"""
import json, logging, os, sys, time
from pathlib import Path
import torch
from trainers.ship.data import features
from trainers.ship.model.clip_loader import load_clip

cache_dir, folder, weights, go, encoding, delay = sys.argv[1:7]
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
real = features.encode_images

def slow(*args, **kwargs):
    Path(encoding).touch()
    time.sleep(float(delay))
    return real(*args, **kwargs)

features.encode_images = slow
clip = load_clip(weights=weights, device=torch.device("cpu"))
paths = sorted(str(p) for p in Path(folder).rglob("*.jpg"))
while not Path(go).exists():
    time.sleep(0.01)
fs = features.FeatureCache(cache_dir).get_or_extract(clip, paths, list(range(len(paths))), torch.device("cpu"),
                                                     dataset="toy", split="train", shots=2, seed=1, passes=2,
                                                     augment=True, root=folder)
print(json.dumps({"digest": fs.digest()}))
"""


def _worker(tmp_path: Path, tiny_clip_path: Path, cache: Path, delay: float, name: str) -> subprocess.Popen:
    folder = tmp_path / "toy"
    if not folder.exists():
        write_image_folder(folder, ["cat", "dog", "car"], per_class=3)
    args = [sys.executable, "-c", WORKER, str(cache), str(folder), str(tiny_clip_path), str(tmp_path / "go"),
            str(tmp_path / f"encoding-{name}"), str(delay)]
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _finish(proc: subprocess.Popen) -> tuple[dict, str]:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1]), err


def test_concurrent_processes_encode_a_key_once_and_agree_with_a_serial_run(tmp_path, tiny_clip_path):
    serial = _worker(tmp_path, tiny_clip_path, tmp_path / "serial-cache", 0, "serial")
    (tmp_path / "go").touch()
    expected, _ = _finish(serial)
    (tmp_path / "go").unlink()

    procs = [_worker(tmp_path, tiny_clip_path, tmp_path / "cache", 0.5, f"p{i}") for i in range(3)]
    time.sleep(0.5)  # not a timing assert: only so that the three are likely to start together
    (tmp_path / "go").touch()
    results = [_finish(p) for p in procs]
    logs = [err for _, err in results]
    assert sum("passes saved to" in log for log in logs) == 1, logs  # exactly one extraction
    assert sum(" passes from " in log for log in logs) == 2
    assert len(list(tmp_path.glob("encoding-p*"))) == 1  # the others never encoded an image
    assert all(r["digest"] == expected["digest"] for r, _ in results)  # bit-identical to the serial run's
    waited = [log for log in logs if "waiting for it" in log]
    assert all("toy train features" in log and "is making it (lock" in log for log in waited)


def test_a_holder_killed_mid_extraction_hands_over_to_a_waiter(tmp_path, tiny_clip_path):
    cache = tmp_path / "cache"
    (tmp_path / "go").touch()
    holder = _worker(tmp_path, tiny_clip_path, cache, 600, "holder")  # never finishes on its own
    _wait_for(lambda: (tmp_path / "encoding-holder").exists(), "the holder to start encoding")
    waiter = _worker(tmp_path, tiny_clip_path, cache, 0, "waiter")
    before = []
    for line in waiter.stderr:  # the waiter's log up to the line that says it waits for the holder
        before.append(line)
        if "waiting for it" in line:
            break
    assert f"process {holder.pid} is making it (lock" in before[-1]
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=60)
    result, rest = _finish(waiter)
    log = "".join(before) + rest
    assert "passes saved to" in log and "corrupt" not in log  # it extracted; no partial file was read
    assert (tmp_path / "encoding-waiter").exists()  # the waiter took over and encoded the images itself
    assert [p.suffix for p in cache.glob("*") if p.name != ".locks"] == [".pt"]  # no partial file left behind
    assert [p.name for p in (cache / ".locks").iterdir()] == [next(cache.glob("*.pt")).name + ".lock"]
    serial = _worker(tmp_path, tiny_clip_path, tmp_path / "serial-cache", 0, "serial")
    assert result["digest"] == _finish(serial)[0]["digest"]


def test_a_file_system_without_locks_is_one_line_and_the_work_still_runs(tmp_path, tiny_clip, monkeypatch, ship_log):
    def refuse(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(locks.fcntl, "lockf", refuse)
    folder = write_image_folder(tmp_path / "toy", ["cat", "dog"], per_class=2)
    paths = sorted(str(p) for p in folder.rglob("*.jpg"))
    fs = FeatureCache(tmp_path / "cache").get_or_extract(tiny_clip, paths, [0, 0, 1, 1], torch.device("cpu"),
                                                         dataset="toy", split="test")
    assert fs.features.shape[:2] == (1, 4)
    (line,) = [m for m in ship_log if "does not support file locks" in m]
    assert "No locks available" in line and "toy test features" in line


def test_a_waiter_logs_a_progress_line_at_least_every_30_seconds(tmp_path, monkeypatch, ship_log):
    """With a clock that jumps 31 s a poll, every poll past the first is a progress line; the holder is this test
    (a second open file description of the same lock file cannot be taken while a child process holds it)."""
    lock = tmp_path / "k.lock"
    child = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
                              "fcntl.lockf(f, fcntl.LOCK_EX); f.write('4242'); f.flush(); print('held', flush=True); "
                              "sys.stdin.read()", str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    ticks = iter(range(0, 31 * 10, 31))
    polls = []

    def sleep(seconds):
        polls.append(seconds)
        if len(polls) == 3:
            child.stdin.close()  # the holder ends: its lock goes with it
            child.wait(timeout=60)

    monkeypatch.setattr(locks.time, "sleep", sleep)
    with locks.once_per_key(lock, "toy test features", clock=lambda: next(ticks)) as waited:
        assert waited and lock.read_text() == str(os.getpid())  # it waited: the holder's work may be done
    with locks.once_per_key(lock, "toy test features") as waited:
        assert not waited  # free at once: nobody worked on the key meanwhile
    waiting = [m for m in ship_log if "toy test features" in m]
    assert "process 4242 is making it" in waiting[0]
    assert sum("still waiting for process 4242" in m for m in waiting) >= 2
