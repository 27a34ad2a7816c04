"""The layered tree behaves as the flat one it replaced: fixed tiny runs give byte-identical outputs."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .helpers import save_tiny_clip, split_json_dataset, write_image_folder

ROOT = Path(__file__).resolve().parents[1]
PRE_MOVE = "72503ca"  # the last commit of the flat layout
SUMMARY = {"pre-move": "trainers.ship.summary", "now": "trainers.ship.summary"}
MACHINE_FIELDS = ("seconds", "peak_memory_mib")  # what the machine measured, not what the code computed


@pytest.fixture(scope="session")
def pre_move_tree(tmp_path_factory) -> Path:
    """The project as of PRE_MOVE, exported from this checkout's git history (skipped where there is none)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    found = subprocess.run(["git", "cat-file", "-e", f"{PRE_MOVE}^{{commit}}"], cwd=ROOT, capture_output=True)
    if found.returncode:
        pytest.skip(f"commit {PRE_MOVE} is not in this checkout's history (a shallow clone?)")
    tree = tmp_path_factory.mktemp("pre-move")
    archive = subprocess.run(["git", "archive", PRE_MOVE], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def _inputs(work: Path) -> None:
    save_tiny_clip(work / "clip.pt")
    write_image_folder(work / "toy", ["cat", "dog", "car", "tree", "boat"], per_class=8)
    split_json_dataset(work / "DATA", "caltech-101", "101_ObjectCategories", "split_zhou_Caltech101.json",
                       ["cat", "dog", "car", "tree"], (4, 1, 2))
    split_json_dataset(work / "DATA", "eurosat", "2750", "split_zhou_EuroSAT.json",
                       ["Forest", "River", "Highway", "Pasture"], (4, 1, 3))


def _has_dassl() -> bool:
    return subprocess.run([sys.executable, "-c", "import dassl"], capture_output=True).returncode == 0


def golden_outputs(tree: Path, work: Path, summary: str) -> dict[str, object]:
    """Relative path -> content of every results.json (less MACHINE_FIELDS), summary table and checkpoint
    state dict the fixed runs of ``tests/golden_runs.py`` write with the code of ``tree``."""
    work.mkdir(parents=True)
    _inputs(work)
    args = [sys.executable, str(ROOT / "tests" / "golden_runs.py"), str(work), summary]
    proc = subprocess.run(args + ([sys.executable] if _has_dassl() else []), cwd=tree, capture_output=True,
                          text=True, env={**__import__("os").environ, "PYTHONPATH": str(tree)}, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = {}
    for path in sorted((work / "out").rglob("*")):
        name = str(path.relative_to(work / "out"))
        if path.name == "results.json":
            found[name] = {k: v for k, v in json.loads(path.read_text()).items() if k not in MACHINE_FIELDS}
        elif path.name.startswith("table."):
            found[name] = path.read_bytes()
        elif path.name.startswith("model.pth.tar-"):
            found[name] = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
        elif path.name == "log.txt" and "dassl" in name:
            found[name] = [line for line in path.read_text().splitlines() if line.startswith("* ")]
    return found


def test_fixed_runs_are_byte_identical_to_the_flat_layout(pre_move_tree, tmp_path):
    before = golden_outputs(pre_move_tree, tmp_path / "before", SUMMARY["pre-move"])
    now = golden_outputs(ROOT, tmp_path / "now", SUMMARY["now"])
    assert sorted(before) == sorted(now)
    assert sum(name.endswith("results.json") for name in now) == 6 and "summary/table.md" in now
    assert any(name.endswith("model.pth.tar-2") for name in now)
    for name, value in before.items():
        assert _same(value, now[name]), name


def _same(a, b) -> bool:
    """Equal to the bit, tensors included (nested dicts and lists of them)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b
