"""The bad-input matrix: ``python -m benchmarks.bad_input [--jobs 2] [--only WORD | --case NAME ...] [--list]``.

Each case runs the real command line (``python -m trainers.ship``, another entry point's ``--help``, or a script)
on the tiny CLIP and tiny image folders of ``tests/helpers.py`` and classifies what a user sees:

- ``clear``: exit status not 0, one ``error:`` line (or Ctrl-C's one line), no traceback;
- ``ok``: it ran, and the result is right (results of the right classes; finished files kept);
- ``traceback``: a Python traceback reached the user;
- ``silent-wrong``: exit 0 where the input is wrong, a wrong result, or a ``--help`` that starts real work;
- ``lost-file``: a finished file of an earlier run changed or vanished.

Groups: images, class folders, settings (every declared range of every config node: ``config.declared_ranges``),
checkpoints, results (tampered caches, a moved dataset, file modes, new classes without test images), faults (no permission, disk full, Ctrl-C, kill -9 and rerun, a second run) and scripts
(``--help`` of every entry point, reruns of killed runs). A case of the command line runs ``trainers.ship``'s
``main`` in a process forked from a worker that imported it once (the same code as ``python -m trainers.ship``,
without paying the imports per case); faults and scripts run as separate programs. Prints a table and the counts;
exit status 1 if any case is a traceback, silent-wrong or lost-file.

The matrix forks, so it runs in a process of its own: a process that has run a torch operation holds OpenMP
threads, and a child forked from it can hang in its first parallel operation. Tests call the command line
(``--case``, ``--json``), never ``run_matrix`` from their own process.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import runpy
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
BAD = ("traceback", "silent-wrong", "lost-file")
FAST = ["DATALOADER.NUM_WORKERS", "0", "TRAINER.SHIP.AUG_PASSES", "1", "TRAINER.SHIP.GEN_EPOCHS", "1",
        "TRAINER.SHIP.FEATURE_MAP", "0", "TRAINER.SHIP.GEN_BATCH_SIZE", "16",
        *[w for node in ("COOP", "COCOOP", "KGCOOP", "PROGRAD", "CLIPADAPTER") for w in (f"TRAINER.{node}.EPOCHS", "1")]]
CLASSES = ["cat", "dog", "car", "tree"]


@dataclass
class Outcome:
    """What a case's command did."""

    code: int | None  # exit status; None: still running at the time limit
    out: str
    err: str
    wrong: str = ""  # why a finished run's result is wrong ("" when right or not checked)
    lost: list[str] = field(default_factory=list)  # finished files that changed or vanished


@dataclass
class Case:
    group: str
    name: str
    expect: str  # "error": one error line is right; "ok": a correct run is right; "either": both are
    run: Callable[["World", Path], Outcome]
    owner: str = ""  # who fixes it when it fails (the helper that owns the code path)


# --------------------------------------------------------------------------- running the command line
def _forked(target: Callable[[], int | None], cwd: Path, timeout: float, env: dict | None = None,
            limits: dict | None = None) -> Outcome:
    """Run ``target`` (an entry point's main) in a forked child with its own stdout/stderr, as ``python -m`` would:
    an uncaught exception prints its traceback and exits 1."""
    out_path, err_path = cwd / ".stdout", cwd / ".stderr"
    sys.stdout.flush(), sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.chdir(cwd)
            for fd, path in ((1, out_path), (2, err_path)):
                handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(handle, fd)
                os.close(handle)
            sys.stdout = os.fdopen(1, "w", buffering=1)
            sys.stderr = os.fdopen(2, "w", buffering=1)
            os.environ.update(env or {})
            for limit, value in (limits or {}).items():
                resource.setrlimit(limit, (value, value))
            signal.signal(signal.SIGINT, signal.default_int_handler)
            result = target()
            code = result if isinstance(result, int) else 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if exc.code is not None and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001  what the interpreter prints for an uncaught exception
            traceback.print_exc()
            code = 1
        finally:
            try:
                sys.stdout.flush(), sys.stderr.flush()
            finally:
                os._exit(code)
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    code = None if status is None else (os.waitstatus_to_exitcode(status))
    return Outcome(code, out_path.read_text(errors="replace"), err_path.read_text(errors="replace"))


def cli(argv: list[str], cwd: Path, timeout: float = 240, **kw) -> Outcome:
    """``python -m trainers.ship ARGV`` (forked from this process, which imported it)."""
    from trainers.ship.__main__ import main

    return _forked(lambda: main([str(a) for a in argv]), cwd, timeout, **kw)


def module_help(module: str, cwd: Path, timeout: float = 60) -> Outcome:
    """``python -m MODULE --help``."""
    def target():
        sys.argv = [module, "--help"]
        runpy.run_module(module, run_name="__main__", alter_sys=True)

    return _forked(target, cwd, timeout)


def program(cmd: list[str], cwd: Path, timeout: float = 240, env: dict | None = None, preexec=None) -> Outcome:
    """A separate program (scripts, faults that need a real process)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                   **(env or {})}
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environment,
                              preexec_fn=preexec)
        return Outcome(proc.returncode, proc.stdout, proc.stderr)
    except subprocess.TimeoutExpired as exc:
        text = lambda b: b.decode(errors="replace") if isinstance(b, bytes) else (b or "")  # noqa: E731
        return Outcome(None, text(exc.stdout), text(exc.stderr))


def _exception_line(text: str) -> str:
    """The exception line of the first traceback in ``text`` (what was raised), with the last frame's place."""
    lines = text.split("Traceback (most recent call last):", 1)[1].splitlines()
    frames = [line.strip() for line in lines if line.strip().startswith("File ")]
    raised = next((line for line in lines[1:] if line and not line.startswith((" ", "\t"))), "")
    return f"{raised} (at {frames[-1][5:]})" if frames else raised


def classify(case: Case, o: Outcome) -> tuple[str, str]:
    """(class, note) of a case's outcome."""
    text = o.out + o.err
    error_lines = [line for line in o.err.splitlines() if line.startswith("error: ")]
    interrupted = [line for line in o.err.splitlines() if line.startswith("interrupted")]
    if "Traceback (most recent call last)" in text:
        return "traceback", _exception_line(text)[:150]
    if o.lost:
        return "lost-file", ", ".join(o.lost)[:150]
    if o.code is None:
        return "silent-wrong", "still running at the time limit"
    if o.wrong:  # e.g. an error line that log.txt lacks, or a folder the refused run created
        return "silent-wrong", o.wrong[:150]
    if o.code != 0:
        if len(error_lines) == 1 or (o.code == 130 and len(interrupted) == 1):
            if case.expect == "ok":
                return "silent-wrong", f"refused a good input: {(error_lines or interrupted)[0][:140]}"
            return "clear", (error_lines or interrupted)[0][:150]
        return "silent-wrong" if not error_lines else "traceback", \
            f"exit {o.code} with {len(error_lines)} error lines: {o.err.strip()[-150:]}"
    if case.expect == "error":
        return "silent-wrong", "exit 0 where one error line was expected"
    return "ok", ""


# --------------------------------------------------------------------------- the world the cases share
@dataclass
class World:
    """Files the cases share (never written by a case): the tiny CLIP, image folders, trained runs."""

    root: Path
    clip: Path
    other_clip: Path  # another CLIP (other random weights)
    folder: Path  # 4 classes x 5 images
    six: Path  # 6 classes: another class count
    same_name: Path  # ".../toy": the folder's name with other classes
    data: Path  # a CoOp DATA root with caltech-101 and eurosat
    runs: dict[str, Path] = field(default_factory=dict)  # trainer -> a finished training run on ``folder``

    def args(self, case_dir: Path, folder: Path | None = None, trainer: str = "SHIP_CoOp", flags: list | tuple = (),
             fast: bool = True, out: Path | None = None, weights: Path | None = None) -> list:
        """A command line of ``trainers.ship``: the flags, then ``KEY VALUE`` settings (FAST, then a case's own)."""
        return ["--data-dir", folder or self.folder, "--weights", weights or self.clip, "--shots", "1", "--trainer",
                trainer, "--output-dir", out or case_dir / "out", "--cache-dir", case_dir / "cache", *flags,
                *(FAST if fast else [])]


def build_world(root: Path, with_runs: bool = True) -> World:
    """The shared files, written by a forked child: this process runs no torch operation, so its forks start clean;
    ``with_runs``: also the finished training runs the checkpoint cases evaluate."""
    world = World(root, root / "tiny.pt", root / "tiny_other.pt", root / "a" / "toy", root / "six", root / "b" / "toy",
                  root / "DATA")
    root.mkdir(parents=True)

    def make() -> None:
        from tests.helpers import save_tiny_clip, split_json_dataset, write_image_folder

        save_tiny_clip(world.clip)
        save_tiny_clip(world.other_clip, seed=1)
        write_image_folder(world.folder, CLASSES, per_class=5)
        write_image_folder(world.six, CLASSES + ["boat", "house"], per_class=5, seed=1)
        write_image_folder(world.same_name, ["apple", "chair", "clock", "horse"], per_class=5, seed=2)
        split_json_dataset(world.data, "caltech-101", "101_ObjectCategories", "split_zhou_Caltech101.json", CLASSES, (3, 1, 2))
        split_json_dataset(world.data, "eurosat", "2750", "split_zhou_EuroSAT.json", ["Forest", "River"], (3, 1, 2))

    sys.path.insert(0, str(ROOT))
    made = _forked(make, root, 300)
    if made.code != 0:
        raise SystemExit(f"the matrix's files could not be made:\n{made.err[-2000:]}")
    for trainer in ("SHIP_CoOp", "TipAdapter", "SHIP_CLIPAdapter") if with_runs else ():
        run_dir = root / "runs" / trainer
        run_dir.mkdir(parents=True)
        o = cli(world.args(run_dir, trainer=trainer), run_dir)
        if o.code != 0:
            raise SystemExit(f"the matrix's own training run {trainer} failed:\n{o.err[-2000:]}")
        world.runs[trainer] = run_dir / "out"
    return world


def results_of(out: Path) -> dict | None:
    path = out / "results.json"
    return json.loads(path.read_text()) if path.is_file() else None


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def kept(files: dict[Path, str]) -> list[str]:
    """Files whose digest changed."""
    return [str(p) for p, d in files.items() if digest(p) != d]


def finished_files(run: Path) -> dict[Path, str]:
    """The digests of a finished run's files (but its log, which a later run may append to)."""
    return {p: digest(p) for p in run.rglob("*") if p.is_file() and p.name != "log.txt" and not p.name.startswith(".")}


def logged(out: Path, start: str) -> str:
    """Why ``out/log.txt`` lacks a line starting (after its timestamp) with ``start``; "" when it has one."""
    log = out / "log.txt"
    text = log.read_text(errors="replace") if log.is_file() else ""
    if any(line.split(" ", 2)[-1].startswith(start) or line.startswith(start) for line in text.splitlines()):
        return ""
    return f"{log} lacks the {start!r} line the console showed"


def expect_classes(n_base: int, n_new: int) -> Callable[[Path], str]:
    def check(out: Path) -> str:
        r = results_of(out)
        if r is None:
            return "exit 0 without results.json"
        if (r.get("num_base"), r.get("num_new")) != (n_base, n_new):
            return f"classes {r.get('num_base')}+{r.get('num_new')}, expected {n_base}+{n_new}"
        if any(not math.isfinite(r.get(k, float("nan"))) for k in ("base", "new")):
            return "accuracy is not a number"
        return ""
    return check


def run_case(world: World, case_dir: Path, argv: list, check: Callable[[Path], str] | None = None,
             keep: dict[Path, str] | None = None, **kw) -> Outcome:
    o = cli(argv, case_dir, **kw)
    if o.code == 0 and check is not None:
        o.wrong = check(case_dir / "out")
    o.lost = kept(keep or {})
    return o


# --------------------------------------------------------------------------- images and class folders
def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb by its size alone)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def bad_image(kind: str) -> Callable[[Path], None]:
    """Writes one bad file among the images of class ``cat``."""
    def make(folder: Path) -> None:
        target = folder / "cat" / "bad.jpg"
        good = next((folder / "dog").glob("*.jpg")).read_bytes()
        if kind == "corrupt":
            target.write_bytes(good[:20] + bytes(range(256)) * 4)
        elif kind == "zero bytes":
            target.write_bytes(b"")
        elif kind == "truncated":
            target.write_bytes(good[: len(good) // 3])
        elif kind == "directory named .jpg":
            target.mkdir()
        elif kind == "symlink loop":
            target.symlink_to(target)
        elif kind == "not an image":
            target.write_text("this is a text file\n")
        elif kind == "huge image":
            target.with_suffix(".png").write_bytes(png_header(20000, 20000))
        elif kind == "dangling symlink":
            target.symlink_to(folder / "nowhere.jpg")
    return make


def good_image(kind: str) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        from PIL import Image

        target = folder / "cat" / "extra"
        pixels = Image.new("RGB", (40, 30), (120, 30, 60))
        if kind == "grayscale png":
            pixels.convert("L").save(target.with_suffix(".png"))
        elif kind == "rgba png":
            pixels.convert("RGBA").save(target.with_suffix(".png"))
        elif kind == "cmyk jpeg":
            pixels.convert("CMYK").save(target.with_suffix(".jpg"))
        elif kind == "16-bit png":
            pixels.convert("I;16").save(target.with_suffix(".png"))
        elif kind == "1x1 image":
            pixels.resize((1, 1)).save(target.with_suffix(".jpg"))
        elif kind == "upper-case .JPG":
            pixels.save(target.with_suffix(".JPG"), format="JPEG")
        elif kind == "palette gif":
            pixels.convert("P").save(target.with_suffix(".gif"))
        elif kind == "very wide image":
            pixels.resize((2000, 3)).save(target.with_suffix(".jpg"))
    return make


def folder_case(make: Callable[[Path], None], workers: str = "0", check: Callable[[Path], str] | None = None):
    def run(world: World, case_dir: Path) -> Outcome:
        folder = case_dir / "toy"
        shutil.copytree(world.folder, folder)
        make(folder)
        argv = world.args(case_dir, folder) + ["DATALOADER.NUM_WORKERS", workers, "DATASET.NUM_SHOTS", "16"]  # every image read
        return run_case(world, case_dir, argv, check)
    return run


def class_folders(kind: str) -> tuple[Callable[[Path], None], str, Callable[[Path], str] | None]:
    """(make, expect, check) of a class-folder case."""
    def make(folder: Path) -> None:
        if kind == "empty class folder":
            (folder / "zebra").mkdir()
        elif kind == "one class only":
            for name in CLASSES[1:]:
                shutil.rmtree(folder / name)
        elif kind == "no class folders":
            for name in CLASSES:
                shutil.rmtree(folder / name)
        elif kind == "stray files at the top":
            (folder / "README.txt").write_text("notes\n")
            shutil.copy(next((folder / "cat").glob("*.jpg")), folder / "loose.jpg")
        elif kind == "hidden folder":
            shutil.copytree(folder / "cat", folder / ".ipynb_checkpoints")
        elif kind == "non-UTF-8 class name":
            os.rename(folder / "cat", os.fsencode(folder) + b"/caf\xe9")
        elif kind == "unicode and spaces":
            os.rename(folder / "cat", folder / "chat noir été")
        elif kind == "names differing in case":
            shutil.copytree(folder / "cat", folder / "Cat")
        elif kind == "symlinked class folder":
            shutil.move(folder / "cat", folder.parent / "cat_elsewhere")
            (folder / "cat").symlink_to(folder.parent / "cat_elsewhere")
        elif kind == "class with one image":
            for path in sorted((folder / "cat").glob("*.jpg"))[1:]:
                path.unlink()
        elif kind == "nested sub-folder":
            shutil.copytree(folder / "dog", folder / "cat" / "more")
    expect, check = {
        "empty class folder": ("either", None), "one class only": ("error", None), "no class folders": ("error", None),
        "stray files at the top": ("ok", expect_classes(2, 2)), "hidden folder": ("ok", expect_classes(2, 2)),
        "non-UTF-8 class name": ("either", expect_classes(2, 2)), "unicode and spaces": ("ok", expect_classes(2, 2)),
        "names differing in case": ("either", expect_classes(3, 2)), "symlinked class folder": ("ok", expect_classes(2, 2)),
        "class with one image": ("either", expect_classes(2, 2)), "nested sub-folder": ("either", expect_classes(2, 2)),
    }[kind]
    return make, expect, check


# --------------------------------------------------------------------------- settings: every declared range
def bad_values(spec) -> list[str]:
    """Values outside a declared range, as a user types them."""
    from trainers.ship.common.ranges import Choice, Flag, Interval, Names, Num, Pair, Templates, Text

    if isinstance(spec, Num):
        values = []
        if spec.low is not None:
            values.append(str(spec.low if spec.low_open else (spec.low - 1 if spec.integer else spec.low - 0.5)))
        if spec.high is not None:
            values.append(str(spec.high + 1 if spec.integer else spec.high + 0.5))
        if not spec.integer:
            values.append("nan")
        return values
    if isinstance(spec, Choice):
        return ["'bogus'"]
    if isinstance(spec, Interval):
        return ["(0.0, 0.0)", "(0.9, 0.5)"]
    if isinstance(spec, Pair):
        return ["(7, -1)"]
    if isinstance(spec, Templates):
        return ["['']", "['a photo of a dog.']"]
    if isinstance(spec, Names):
        return ["['x.txt', 'x.txt']"]
    if isinstance(spec, Text) and spec.nonempty:
        return ["''"]
    if isinstance(spec, Flag):
        return ["'maybe'"]
    return []


def settings_cases() -> list[Case]:
    from trainers.ship.config import declared_ranges

    cases = []
    for key, spec in declared_ranges().items():
        for value in bad_values(spec):
            trainer = next((f"SHIP_{m}" for m, n in (("CoOp", "COOP"), ("CoCoOp", "COCOOP"), ("KgCoOp", "KGCOOP"),
                            ("ProGrad", "PROGRAD"), ("CLIPAdapter", "CLIPADAPTER"), ("TipAdapter", "TIPADAPTER"))
                            if key.startswith(f"TRAINER.{n}.")), "SHIP_CoOp")

            def run(world, case_dir, key=key, value=value, trainer=trainer):
                return run_case(world, case_dir, world.args(case_dir, trainer=trainer) + [key, value], timeout=120)
            cases.append(Case("settings", f"{key} {value}", "error", run, owner="validation"))

    def gen_epochs_zero(world, case_dir):
        o = run_case(world, case_dir, world.args(case_dir) + ["TRAINER.SHIP.GEN_EPOCHS", "0"])
        if o.code == 2 and "GENERATOR untrained" not in o.err:
            o.wrong = "the error does not name the control TRAINER.SHIP.GENERATOR untrained"
            o.code = 0
        return o

    def int_for_float(world, case_dir):
        return run_case(world, case_dir, world.args(case_dir) + ["TRAINER.SHIP.KL_WEIGHT", "10"], expect_classes(2, 2))

    def names_file(text):
        def run(world, case_dir):
            names = case_dir / "names.txt"
            names.write_text(text)
            argv = world.args(case_dir) + ["DATASET.LABEL_ONLY_FROM", f"['{names}']", "DATASET.SUBSAMPLE_CLASSES", "all"]
            return run_case(world, case_dir, argv)
        return run

    def label_only_missing(world, case_dir):
        data = case_dir / "DATA"
        shutil.copytree(world.data, data)
        before = {p for p in data.rglob("*")}
        argv = ["--dataset", "Caltech101", "--root", data, "--weights", world.clip, "--shots", "1", "--output-dir",
                case_dir / "out", "--cache-dir", case_dir / "cache", *FAST, "DATASET.LABEL_ONLY_FROM", "['DescribableTextures']"]
        o = run_case(world, case_dir, argv)
        made = sorted(str(p.relative_to(data)) for p in set(data.rglob("*")) - before if "split_fewshot" in str(p) and p.is_dir()
                      and not any(p.iterdir()))
        if made:
            o.lost.append(f"left empty {made}")
        return o

    def config_file(text: str, line: str):
        def run(world, case_dir):
            path = case_dir / "bad.yaml"
            path.write_text(text)
            o = run_case(world, case_dir, world.args(case_dir, flags=["--config-file", path]))
            if o.code == 2 and f"{path}, line {line}" not in o.err:
                o.wrong = f"the error does not name {path}, line {line}: {o.err.strip()[:100]}"
            return o
        return run

    cases += [
        Case("settings", "config file with a YAML syntax error", "error", config_file("TRAINER:\n  SHIP: [1\n  X: 2\n", "3"),
             "faults"),
        Case("settings", "config file whose top level is a list", "error", config_file("# SHIP\n- GEN_EPOCHS: 3\n", "2"),
             "faults"),
        Case("settings", "--seed 4294967296 (over numpy's range)", "error",
             lambda w, d: run_case(w, d, w.args(d, flags=["--seed", "4294967296"])), "faults"),
        Case("settings", "GEN_EPOCHS 0 names the untrained control", "error", gen_epochs_zero, "validation"),
        Case("settings", "KL_WEIGHT 10 (an integer for a float key)", "ok", int_for_float, "validation"),
        Case("settings", "label-only names file empty", "error", names_file(""), "validation"),
        Case("settings", "label-only names file with a repeat", "error", names_file("zebra\nokapi\nzebra\n"), "validation"),
        Case("settings", "label-only dataset not on disk", "error", label_only_missing, "validation"),
        Case("settings", "unknown key", "error", lambda w, d: run_case(w, d, w.args(d) + ["TRAINER.SHIP.GEN_EPOCS", "3"]),
             "validation"),
        Case("settings", "odd number of override words", "error", lambda w, d: run_case(w, d, w.args(d) + ["TRAINER.SHIP.KL_WEIGHT"]),
             "validation"),
    ]
    return cases


# --------------------------------------------------------------------------- checkpoints
def checkpoint_cases() -> list[Case]:
    def eval_only(trainer="SHIP_CoOp", folder_of=lambda w: w.folder, tamper=None, flags=(), source="SHIP_CoOp",
                  same_output=False, check=None, other_clip=False):
        def run(world, case_dir):
            model = case_dir / "run"
            shutil.copytree(world.runs[source], model, symlinks=True)
            if tamper:
                tamper(world, model)
            argv = world.args(case_dir, folder_of(world), trainer, ["--eval-only", "--model-dir", model, *flags],
                              out=model if same_output else None, weights=world.other_clip if other_clip else None)
            return run_case(world, case_dir, argv, check, keep=finished_files(model))
        return run

    def truncate(world, model):
        ckpt = next((model / "prompt_learner").glob("model.pth.tar-*"))
        ckpt.write_bytes(ckpt.read_bytes()[:500])

    def remove(world, model):
        for ckpt in (model / "prompt_learner").glob("model.pth.tar-*"):
            ckpt.unlink()

    def foreign(world, model):  # a Tip-Adapter cache where CoOp's prompt learner belongs
        ckpt = next((model / "prompt_learner").glob("model.pth.tar-*"))
        shutil.copy(next((world.runs["TipAdapter"] / "tip_adapter").glob("model.pth.tar-*")), ckpt)

    def second_run(flags=(), opts=(), trainer="SHIP_CoOp"):
        def run(world, case_dir):
            model = case_dir / "run"
            shutil.copytree(world.runs["SHIP_CoOp"], model, symlinks=True)
            before = results_of(model)
            keep = {p: d for p, d in finished_files(model).items() if p.name != "results.json"}  # compared by value
            o = run_case(world, case_dir, world.args(case_dir, trainer=trainer, flags=flags, out=model) + list(opts), keep=keep)
            after = results_of(model)
            if after is None or any(after.get(k) != before.get(k) for k in ("base", "new", "hm", "trainer", "seed")):
                o.lost.append(f"{model / 'results.json'} (its results changed)")
            return o
        return run

    def clip_file(how: str):
        def run(world, case_dir):
            import torch

            weights = case_dir / "clip.pt"
            state = torch.load(world.clip, map_location="cpu", weights_only=True)
            if how == "without a visual block":
                state = {k: v for k, v in state.items() if not k.startswith("visual.transformer.resblocks.0.")}
            elif how == "without a text block":
                state = {k: v for k, v in state.items() if not k.startswith("transformer.resblocks.0.")}
            elif how == "a tensor of the wrong shape":
                state["visual.proj"] = state["visual.proj"][:, :5]
            elif how == "not a CLIP":
                state = {"weight": torch.zeros(3)}
            torch.save(state, weights)
            if how == "truncated":
                weights.write_bytes(weights.read_bytes()[:4000])
            return run_case(world, case_dir, world.args(case_dir, weights=weights))
        return run

    return [
        *[Case("checkpoints", f"CLIP weights: {how}", "error", clip_file(how), "validation")
          for how in ("without a visual block", "without a text block", "a tensor of the wrong shape", "not a CLIP",
                      "truncated")],
        Case("checkpoints", "eval-only: another method's run", "error", eval_only(trainer="SHIP_CLIPAdapter"), "safety"),
        Case("checkpoints", "eval-only: TipAdapter run as CoOp", "error", eval_only(source="TipAdapter"), "safety"),
        Case("checkpoints", "eval-only: another class count", "error", eval_only(folder_of=lambda w: w.six), "safety"),
        Case("checkpoints", "eval-only: another class count, mismatch allowed (Tip-Adapter cache)", "either",
             eval_only(trainer="TipAdapter", source="TipAdapter", folder_of=lambda w: w.six, flags=["--allow-mismatch"],
                       check=expect_classes(3, 3)), "safety"),
        Case("checkpoints", "eval-only: same folder name, other classes", "error",
             eval_only(folder_of=lambda w: w.same_name), "safety"),
        Case("checkpoints", "eval-only: another CLIP", "error", eval_only(other_clip=True), "safety"),
        Case("checkpoints", "eval-only: checkpoint missing", "error", eval_only(tamper=remove), "safety"),
        Case("checkpoints", "eval-only: checkpoint truncated", "error", eval_only(tamper=truncate), "safety"),
        Case("checkpoints", "eval-only: another method's checkpoint file", "error", eval_only(tamper=foreign), "safety"),
        Case("checkpoints", "eval-only: --load-epoch 0", "error", eval_only(flags=["--load-epoch", "0"]), "safety"),
        Case("checkpoints", "eval-only: --load-epoch 7 (absent)", "error", eval_only(flags=["--load-epoch", "7"]), "safety"),
        Case("checkpoints", "eval-only: model folder missing", "error",
             lambda w, d: run_case(w, d, w.args(d, flags=["--eval-only", "--model-dir", d / "none"])), "safety"),
        Case("checkpoints", "eval-only: output folder is the training run", "either",
             eval_only(same_output=True), "safety"),
        Case("checkpoints", "eval-only: right run (control)", "ok", eval_only(check=expect_classes(2, 2)), "safety"),
        Case("checkpoints", "second seed into a finished run's folder", "error", second_run(flags=["--seed", "2"]), "safety"),
        Case("checkpoints", "another trainer into a finished run's folder", "error", second_run(trainer="SHIP_CLIPAdapter"),
             "safety"),
        Case("checkpoints", "changed setting into a finished run's folder", "error",
             second_run(opts=["TRAINER.SHIP.KL_WEIGHT", "2.0"]), "safety"),
        Case("checkpoints", "same command again (resume, control)", "ok", second_run(), "safety"),
    ]


# --------------------------------------------------------------------------- results that must not change silently
def same_results(first: Path, second: Path) -> str:
    a, b = results_of(first), results_of(second)
    if a is None or b is None:
        return "a run wrote no results.json"
    differing = [k for k in ("base", "new", "hm") if abs(a.get(k, -1) - b.get(k, -1)) > 1e-6]
    return f"{', '.join(differing)} differ: {[a.get(k) for k in differing]} vs {[b.get(k) for k in differing]}" if differing else ""


def summary_of_broken_results(world, case_dir):
    """A neighbour's empty and half-written results.json beside a finished run: named in one line each, the run tabled."""
    tree = case_dir / "tree"
    shutil.copytree(world.runs["SHIP_CoOp"], tree / "good")
    for name, text in (("empty", ""), ("half", '{"protocol": "base2new", "trai')):
        (tree / name).mkdir()
        (tree / name / "results.json").write_text(text)
    o = program([sys.executable, "-m", "trainers.ship.reports.summary", str(tree)], case_dir, 120)
    named = [line for line in o.err.splitlines() if "results.json" in line]
    if o.code == 0 and (len(named) != 2 or "SHIP_CoOp" not in o.out):
        o.wrong = f"{len(named)} lines name the broken files; the finished run tabled: {'SHIP_CoOp' in o.out}"
    return o


def results_cases() -> list[Case]:
    def tampered_cache(how: str):
        def run(world, case_dir):
            first = cli(world.args(case_dir, out=case_dir / "first"), case_dir)
            if first.code != 0:
                return first
            import torch

            for path in (case_dir / "cache").rglob("*.pt"):
                blob = torch.load(path, map_location="cpu", weights_only=True)
                if how == "NaN values":
                    blob["features"][0, 0, 0] = float("nan")
                else:
                    blob["labels"] = blob["labels"].flip(0)
                torch.save(blob, path)
            o = run_case(world, case_dir, world.args(case_dir, out=case_dir / "out"))
            if o.code == 0:
                o.wrong = same_results(case_dir / "first", case_dir / "out")
            return o
        return run

    def moved_dataset(world, case_dir):
        elsewhere = case_dir / "copy" / "deeper" / "toy"
        shutil.copytree(world.folder, elsewhere)
        first = cli(world.args(case_dir, out=case_dir / "first"), case_dir)
        o = run_case(world, case_dir, world.args(case_dir, elsewhere, flags=["--cache-dir", case_dir / "cache2"]))
        if first.code == 0 and o.code == 0:
            o.wrong = same_results(case_dir / "first", case_dir / "out")
        return o

    def file_modes(world, case_dir):
        previous = os.umask(0o022)
        try:
            o = run_case(world, case_dir, world.args(case_dir), expect_classes(2, 2))
        finally:
            os.umask(previous)
        private = [str(p.relative_to(case_dir)) for p in case_dir.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and p.stat().st_mode & 0o044 != 0o044]
        if o.code == 0 and private:
            o.wrong = f"files unreadable by group/others under umask 022: {private[:4]}"
        return o

    def new_without_test_images(world, case_dir):
        folder = case_dir / "toy"
        shutil.copytree(world.folder, folder)
        for name in CLASSES[2:]:  # the new half: one image each, which the split puts in train
            for path in sorted((folder / name).glob("*.jpg"))[1:]:
                path.unlink()
        o = run_case(world, case_dir, world.args(case_dir, folder))
        r = results_of(case_dir / "out")
        if o.code == 0 and r is not None and r.get("new") == 0.0 and "new" in (o.out + o.err).lower() and \
                not any(w in (o.out + o.err).lower() for w in ("no test images", "n/a", "no images")):
            o.wrong = "new 0.0 without a word about the missing test images"
        return o

    return [
        Case("results", "summary over an empty and a half-written results.json", "ok", summary_of_broken_results, "faults"),
        Case("results", "feature cache with NaN values", "ok", tampered_cache("NaN values"), "safety"),
        Case("results", "feature cache with permuted labels", "ok", tampered_cache("permuted labels"), "safety"),
        Case("results", "dataset copied to another folder gives the same results", "ok", moved_dataset, "safety"),
        Case("results", "file modes follow the umask", "ok", file_modes, "safety"),
        Case("results", "new classes without test images", "either", new_without_test_images, "lead (quality.py)"),
    ]


# --------------------------------------------------------------------------- faults
def wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.is_file() and text in path.read_text(errors="replace"):
            return True
        time.sleep(0.1)
    return False


def spawn(argv: list, log: Path) -> subprocess.Popen:
    """``python -m trainers.ship ARGV`` as its own program, stdout and stderr to ``log``."""
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "trainers.ship", *map(str, argv)], cwd=log.parent, stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def fault_cases() -> list[Case]:
    def unwritable(world, case_dir):
        if os.geteuid() == 0:  # root writes where chmod forbids it: a folder nobody may create in
            target = Path("/sys/fs/ship-bad-input")
        else:
            locked = case_dir / "locked"
            locked.mkdir()
            locked.chmod(0o555)
            target = locked / "out"
        return run_case(world, case_dir, world.args(case_dir, out=target))

    def output_is_a_file(world, case_dir):
        (case_dir / "out").write_text("not a folder\n")
        return run_case(world, case_dir, world.args(case_dir))

    def cache_is_a_file(world, case_dir):
        (case_dir / "cache").write_text("not a folder\n")
        return run_case(world, case_dir, world.args(case_dir))

    def disk_full(limit):
        def run(world, case_dir):
            # -B: the interpreter writes no .pyc (under the limit it would leave truncated ones in the repository)
            argv = [sys.executable, "-B", "-m", "trainers.ship", *map(str, world.args(case_dir))]
            o = program(argv, case_dir, 240, env={"PYTHONDONTWRITEBYTECODE": "1"},
                        preexec=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
            if o.code != 0:  # then a rerun with room finishes, and nothing half-written is used
                again = run_case(world, case_dir, world.args(case_dir), expect_classes(2, 2))
                if again.code != 0 or again.wrong:
                    o.wrong, o.code = f"rerun after the full disk: exit {again.code} {again.wrong} {again.err[-120:]}", 0
            return o
        return run

    def ctrl_c(after: str, opts: list):
        def run(world, case_dir):
            log = case_dir / "log"
            proc = spawn(world.args(case_dir) + opts, log)
            if not wait_for(log, after, proc, 180):
                proc.kill()
                return Outcome(1, "", f"error: never reached {after!r} (case setup): {log.read_text()[-200:]}")
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                return Outcome(None, "", "")
            o = Outcome(proc.returncode, "", log.read_text(errors="replace"))
            if (case_dir / "out" / "results.json").exists():
                o.wrong = "results.json written by an interrupted run"
            o.wrong = o.wrong or logged(case_dir / "out", "interrupted")
            return o
        return run

    def kill_and_rerun(world, case_dir):
        log = case_dir / "log"
        argv = world.args(case_dir) + ["DATALOADER.NUM_WORKERS", "2", "TRAINER.SHIP.AUG_PASSES", "50"]
        proc = spawn(argv, log)
        reached = wait_for(log, "Config", proc, 180)
        time.sleep(1.0)
        proc.kill()
        proc.wait()
        if not reached:
            return Outcome(1, "", "error: the run never started (case setup)")
        return run_case(world, case_dir, argv, expect_classes(2, 2))

    def error_in_log(world, case_dir):
        o = run_case(world, case_dir, world.args(case_dir, flags=["--eval-only", "--model-dir", case_dir / "gone"]))
        o.wrong = logged(case_dir / "out", "error: run folder not found")
        return o

    def kill_then_evaluate(world, case_dir):
        log = case_dir / "log"
        train = world.args(case_dir, out=case_dir / "run") + ["TRAINER.COOP.EPOCHS", "3000"]
        proc = spawn(train, log)
        reached = wait_for(log, "prompt learner epoch", proc, 180)
        proc.kill()
        proc.wait()
        if not reached:
            return Outcome(1, "", "error: the run never reached its epochs (case setup)")
        o = run_case(world, case_dir, world.args(case_dir, flags=["--eval-only", "--model-dir", case_dir / "run"]))
        if o.code == 2 and "unfinished training run" not in o.err:
            o.wrong = f"the error does not name the unfinished run: {o.err.strip()[:100]}"
        return o

    def two_runs(world, case_dir):
        log = case_dir / "log"
        argv = world.args(case_dir) + ["TRAINER.COOP.EPOCHS", "3000"]
        proc = spawn(argv, log)
        wait_for(log, "prompt learner epoch", proc, 180)
        o = cli(argv, case_dir, timeout=120)
        proc.kill()
        proc.wait()
        return o

    return [
        Case("faults", "output folder not writable", "error", unwritable, "safety"),
        Case("faults", "output folder is a file", "error", output_is_a_file, "safety"),
        Case("faults", "cache folder is a file", "error", cache_is_a_file, "safety"),
        Case("faults", "disk full at 1 KB (RLIMIT_FSIZE)", "either", disk_full(1024), "safety"),
        Case("faults", "disk full at 200 KB (RLIMIT_FSIZE)", "either", disk_full(200_000), "safety"),
        Case("faults", "Ctrl-C in feature extraction (2 workers)", "error",
             ctrl_c("Config", ["DATALOADER.NUM_WORKERS", "2", "TRAINER.SHIP.AUG_PASSES", "200"]), "safety"),
        Case("faults", "Ctrl-C in the epoch loop", "error", ctrl_c("prompt learner epoch", ["TRAINER.COOP.EPOCHS", "3000"]),
             "safety"),
        Case("faults", "kill -9 in feature extraction (2 workers), rerun at once", "ok", kill_and_rerun, "safety"),
        Case("faults", "a second run into a running run's folder", "error", two_runs, "safety"),
        Case("faults", "an error after the run's log opened is in log.txt", "error", error_in_log, "faults"),
        Case("faults", "kill -9 in training, then --eval-only of it names the unfinished run", "error", kill_then_evaluate,
             "faults"),
    ]


# --------------------------------------------------------------------------- scripts and entry points
ENTRY_MODULES = ["trainers.ship", "trainers.ship.tools.install_into", "trainers.ship.reports.interpret", "trainers.ship.reports.summary",
                 "datasets.download", "benchmarks", "benchmarks.text_encoder", "benchmarks.generator",
                 "benchmarks.base2new_pipeline", "benchmarks.vs_coop_image_loop", "benchmarks.bad_input"]


def help_check(o: Outcome, name: str = "") -> Outcome:
    """``--help``: exit 0 with a usage text (argparse's, or a script's own lines naming it), and no real work."""
    text = (o.out + o.err).lower()
    if o.code == 0 and "usage" not in text and not (name and name.lower() in text):
        o.wrong = "exit 0 without a usage text"
    return o


def script_help(script: Path, case_dir: Path, env: dict) -> Outcome:
    """``bash SCRIPT --help`` must not start work: nothing may appear under its OUTPUT folder."""
    o = help_check(program(["bash", str(script), "--help"], case_dir, 60, {**env, "OUTPUT": str(case_dir / "o")}), script.name)
    if (case_dir / "o").exists() and not o.wrong:
        o.wrong = "--help started real work (it wrote under OUTPUT)"
    return o


def script_cases() -> list[Case]:
    cases = [Case("scripts", f"python -m {m} --help", "ok", lambda w, d, m=m: help_check(module_help(m, d)), "lead")
             for m in ENTRY_MODULES]
    cases.append(Case("scripts", "python train.py --help", "either",
                      lambda w, d: help_check(program([sys.executable, str(ROOT / "train.py"), "--help"], d, 60)), "dassl"))
    for script in sorted((ROOT / "scripts" / "ship").glob("*.sh")):
        if script.name == "common.sh":
            continue
        env = {"DATA": "", "OUTPUT": "", "DOWNLOAD": "0", "BACKEND": "core"}
        cases.append(Case("scripts", f"{script.name} --help", "ok",
                          lambda w, d, s=script, e=env: script_help(s, d, e), "lead"))

    def script_run(world, case_dir, what: str):
        env = {"DATA": str(world.data), "OUTPUT": str(case_dir / "o"), "DOWNLOAD": "0", "BACKEND": "core", "SHOTS": "1",
               "TRAINER": "SHIP_CoOp"}
        argv = ["bash", str(ROOT / "scripts" / "ship" / "base2new_train.sh"), "caltech101", "1", "--weights", str(world.clip),
                "--cache-dir", str(case_dir / "cache"), *FAST]
        first = program(argv, case_dir, 240, env)
        found = list((case_dir / "o").rglob("results.json"))
        if first.code != 0 or not found:
            return Outcome(1, "", f"error: the script's first run failed (case setup): {first.err[-300:]}")
        run_dir = found[0].parent
        if what == "results.json last":  # a kill between results.json and a later file would leave a run that looks finished
            last = max(run_dir.rglob("*"), key=lambda p: p.stat().st_mtime_ns)
            if last.name not in ("results.json", "log.txt"):
                first.wrong = f"{last.relative_to(run_dir)} is written after results.json: a run killed in between is skipped"
            return first
        (run_dir / "results.json").unlink()  # a run killed before it finished
        again = program(argv, case_dir, 240, env)
        if again.code == 0 and not (run_dir / "results.json").is_file():
            again.wrong = "the killed run was skipped as finished"
        return again

    def train_py(what: str):
        def run(world, case_dir):
            data = case_dir / "DATA"
            shutil.copytree(world.data, data)
            before = set(data.rglob("*"))
            args = {"--root": data, "--trainer": "SHIP_CoOp", "--seed": "1", "--output-dir": case_dir / "out",
                    "--dataset-config-file": ROOT / "configs" / "datasets" / "caltech101.yaml",
                    "--config-file": ROOT / "configs" / "trainers" / "SHIP" / "vit_b16.yaml"}
            if what == "trainer":
                args["--trainer"] = "SHIP_Coop"
            elif what == "seed":
                args["--seed"] = "4294967296"
            elif what == "root":
                args["--root"] = data = case_dir / "no-DATA"
            else:
                (case_dir / "bad.yaml").write_text("TRAINER:\n  SHIP: [1\n  X: 2\n")
                args["--config-file"] = case_dir / "bad.yaml"
            argv = [sys.executable, str(ROOT / "train.py"), *[str(w) for pair in args.items() for w in pair],
                    "MODEL.BACKBONE.WEIGHTS", str(world.clip), "CACHE_DIR", str(case_dir / "cache"), *FAST]
            o = program(argv, case_dir, 240)
            made = sorted(str(p) for p in (set(data.rglob("*")) - before if data.exists() else []))
            if o.code == 2 and ((case_dir / "out").exists() or made or (case_dir / "no-DATA").exists()):
                o.wrong = f"the refused run created {made[:2] or case_dir / 'out'}"
            return o
        return run

    cases += [Case("scripts", f"train.py (Dassl): {name}", "error", train_py(what), "faults")
              for what, name in (("trainer", "--trainer SHIP_Coop"), ("seed", "--seed 4294967296"),
                                 ("root", "a DATA root that does not exist"), ("yaml", "a config file with a YAML syntax error"))]
    cases += [Case("scripts", "base2new_train.sh: results.json is a run's last file", "ok",
                   lambda w, d: script_run(w, d, "results.json last"), "safety"),
              Case("scripts", "base2new_train.sh: a killed unfinished run is rerun", "ok",
                   lambda w, d: script_run(w, d, "rerun"), "safety")]
    return cases


# --------------------------------------------------------------------------- the matrix
def all_cases() -> list[Case]:
    cases = []
    for kind in ("corrupt", "zero bytes", "truncated", "directory named .jpg", "symlink loop", "not an image",
                 "huge image", "dangling symlink"):
        for workers in ("0", "2"):
            cases.append(Case("images", f"{kind}, {workers} workers", "error", folder_case(bad_image(kind), workers), "safety"))
    for kind in ("grayscale png", "rgba png", "cmyk jpeg", "16-bit png", "1x1 image", "upper-case .JPG", "palette gif",
                 "very wide image"):
        cases.append(Case("images", kind, "ok", folder_case(good_image(kind), "0", expect_classes(2, 2)), "safety"))
    for kind in ("empty class folder", "one class only", "no class folders", "stray files at the top", "hidden folder",
                 "non-UTF-8 class name", "unicode and spaces", "names differing in case", "symlinked class folder",
                 "class with one image", "nested sub-folder"):
        make, expect, check = class_folders(kind)
        cases.append(Case("class folders", kind, expect, folder_case(make, "0", check), "safety"))
    return cases + settings_cases() + checkpoint_cases() + results_cases() + fault_cases() + script_cases()


CASES: list[Case] = []


def _run_one(index: int, world: World, scratch: Path) -> dict:
    case = CASES[index]
    case_dir = Path(tempfile.mkdtemp(prefix=f"case{index:03d}-", dir=scratch))
    start = time.monotonic()
    try:
        kind, note = classify(case, case.run(world, case_dir))
    except Exception as exc:  # noqa: BLE001  a broken case is reported, not a crash of the matrix
        kind, note = "traceback", f"the case itself failed: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(case_dir, ignore_errors=True)
    return {"index": index, "kind": kind, "note": note, "seconds": time.monotonic() - start}


def run_matrix(jobs: int = 2, only: str | list[str] = "", scratch: Path | None = None,
               quiet: bool = False) -> list[tuple[Case, str, str, float]]:
    """Run the cases (those whose "group: name" contains ``only``, or is in the list ``only``), ``jobs`` at a time,
    each in a process forked from this one (which imports the code once and runs no torch operation)."""
    global CASES
    CASES = all_cases()
    chosen = [i for i, c in enumerate(CASES) if (f"{c.group}: {c.name}" in only if isinstance(only, list)
                                                 else only.lower() in f"{c.group}: {c.name}".lower())]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bad-input-", dir=scratch) as tmp:
        tmp = Path(tmp)
        world = build_world(tmp / "world", with_runs=any(CASES[i].group == "checkpoints" or "summary" in CASES[i].name
                                                          for i in chosen))
        running: dict[int, int] = {}  # pid -> case index
        pending = list(chosen)
        while pending or running:
            while pending and len(running) < jobs:
                index = pending.pop(0)
                sys.stdout.flush(), sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    try:
                        result = _run_one(index, world, tmp)
                        (tmp / f"result-{index}.json").write_text(json.dumps(result))
                    finally:
                        os._exit(0)
                running[pid] = index
            pid, _ = os.wait()
            index = running.pop(pid, None)
            if index is None:
                continue
            path = tmp / f"result-{index}.json"
            result = json.loads(path.read_text()) if path.is_file() else \
                {"kind": "traceback", "note": "the case's process died", "seconds": 0.0}
            rows.append((CASES[index], result["kind"], result["note"], result["seconds"]))
            if not quiet:
                print(f"[{len(rows)}/{len(chosen)}] {CASES[index].group}: {CASES[index].name}: {result['kind']}", flush=True)
    order = {id(c): i for i, c in enumerate(CASES)}
    return sorted(rows, key=lambda r: order[id(r[0])])


def report(rows) -> dict[str, int]:
    counts = {k: 0 for k in ("clear", "ok", *BAD)}
    width = max(len(f"{c.group}: {c.name}") for c, *_ in rows)
    for case, kind, note, seconds in rows:
        counts[kind] += 1
        print(f"{case.group + ': ' + case.name:<{width}}  {kind:<12} {seconds:5.1f}s  {note if kind != 'ok' else ''}")
    print(f"\n{len(rows)} cases: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    failing = [(c, k, n) for c, k, n, _ in rows if k in BAD]
    if failing:
        print("\nnot clear/ok, by owner:")
        for case, kind, note in sorted(failing, key=lambda r: r[0].owner):
            print(f"  [{case.owner}] {case.group}: {case.name}: {kind}: {note}")
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bad_input", description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    p.add_argument("--only", default="", help="run the cases whose group or name contains this text")
    p.add_argument("--case", action="append", default=[], metavar="NAME",
                   help='run the case named exactly "group: name" (repeatable; instead of --only)')
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--scratch", type=Path, default=None, help="folder for the matrix's temporary files")
    p.add_argument("--json", type=Path, default=None, metavar="PATH",
                   help="also write the rows to PATH as a JSON list of {case, kind, note, seconds}")
    args = p.parse_args(argv)
    if args.case and args.only:
        p.error("--case and --only exclude each other")
    unknown = sorted(set(args.case) - {f"{c.group}: {c.name}" for c in all_cases()})
    if unknown:
        p.error(f"no case named {unknown[0]!r} (see --list)")
    if args.list:
        for case in all_cases():
            print(f"{case.group}: {case.name} (expect {case.expect})")
        return 0
    start = time.monotonic()
    rows = run_matrix(args.jobs, args.case or args.only, scratch=args.scratch)
    counts = report(rows)
    if args.json:
        args.json.write_text(json.dumps([{"case": f"{c.group}: {c.name}", "kind": kind, "note": note, "seconds": sec}
                                         for c, kind, note, sec in rows], indent=1))
    print(f"wall time {time.monotonic() - start:.0f}s")
    return 1 if any(counts[k] for k in BAD) else 0


if __name__ == "__main__":
    sys.exit(main())
