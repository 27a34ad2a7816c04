"""The layers of ``trainers/ship``: imports point down (``.importlinter``, checked by import-linter), no import circle
anywhere in ``trainers/`` and ``datasets/``, and the layered tree behaves as the flat one it replaced (fixed tiny
runs give byte-identical outputs)."""
import ast
import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainers.ship.tools.install_into import MANIFEST, install

from .helpers import coop_shaped_checkout, save_tiny_clip, split_json_dataset, write_image_folder

ROOT = Path(__file__).resolve().parents[1]
PRE_MOVE = "cb24f98"  # the last commit of the flat layout
SUMMARY = {"pre-move": "trainers.ship.summary", "now": "trainers.ship.reports.summary"}
MACHINE_FIELDS = ("seconds", "peak_memory_mib")  # what the machine measured, not what the code computed
# What the one-route issue added on purpose, left out of the comparison with the flat layout: the route that produced a
# run (results.json "backend", the summary's "route" column) and the results.json the Dassl route now writes
# after its final test (its accuracies are still compared, through the log's "* " lines).
ROUTE_FIELDS = ("backend",)


def _csv_without_route(path: Path) -> bytes:
    """A summary CSV without its ``route`` field, written as the summary writes CSV."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=[k for k in rows[0] if k != "route"], restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _without_route(table: bytes) -> bytes:
    """A summary table without its ``route`` column (the flat layout's tables have none)."""
    lines, drop = [], None
    for line in table.decode().split("\n"):
        cells = line.split(" | ") if line.startswith("|") else None
        if cells is not None and drop is None and "route" in cells:
            drop = cells.index("route")
        if cells is not None and drop is not None and set(line) <= set("|-"):  # the separator: one column less
            line = "|---" * (line.count("|") - 2) + "|"
        elif cells is not None and drop is not None and len(cells) > drop:
            line = " | ".join(cells[:drop] + cells[drop + 1:])
        elif not line.startswith("|"):
            drop = None
        lines.append(line)
    return "\n".join(lines).encode()


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
                          text=True, env={**os.environ, "PYTHONPATH": str(tree)}, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = {}
    for path in sorted((work / "out").rglob("*")):
        name = str(path.relative_to(work / "out"))
        if path.name == "results.json" and not name.startswith("dassl/"):
            found[name] = {k: v for k, v in json.loads(path.read_text()).items()
                           if k not in MACHINE_FIELDS + ROUTE_FIELDS}
        elif path.name == "table.md":
            found[name] = _without_route(path.read_bytes())
        elif path.name == "table.csv":
            found[name] = _csv_without_route(path)
        elif path.name.startswith("table."):
            found[name] = path.read_bytes()
        elif path.name.startswith("model.pth.tar-"):
            found[name] = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        elif path.name == "log.txt" and "dassl" in name:
            found[name] = [line for line in path.read_text().splitlines() if line.startswith("* ")]
    return found


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the tree at ``root`` with its ``.importlinter`` contracts."""
    cli = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run([sys.executable, "-c", cli, "--config", ".importlinter", "--no-cache"], cwd=root,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)}, timeout=300)


def test_imports_point_down_the_layers():
    pytest.importorskip("importlinter")
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 2 kept, 0 broken." in proc.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("trainers/ship/common/errors.py", "import trainers.ship.run.pipeline", "trainers.ship.common.errors -> trainers.ship.run.pipeline"),
    ("trainers/ship/model/generator.py", "from trainers.ship.data import features", "trainers.ship.model.generator -> trainers.ship.data"),
    ("trainers/ship/methods/coop.py", "import dassl.engine", "trainers.ship.methods.coop -> dassl"),
])
def test_an_import_that_climbs_a_layer_fails_the_lint(tmp_path, module, line, broken):
    """The contracts can fail: one added import that points up (or pulls Dassl into the core) breaks one."""
    pytest.importorskip("importlinter")
    for part in ("trainers", "datasets", ".importlinter"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
        copy(ROOT / part, tmp_path / part)
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    proc = lint_imports(tmp_path)
    assert proc.returncode == 1 and "1 broken" in proc.stdout and broken in proc.stdout, proc.stdout


def _import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the file, functions included), from the source."""
    modules = {}
    for package in ("trainers", "datasets"):
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                found.update([module] + [f"{module}.{a.name}" for a in node.names])
        # an import of a.b.c runs a and a.b too: those edges count, but for the packages a module is inside of,
        # which run before it anyway
        graph[name] = {m for f in found for m in _prefixes(f) if m in modules and m not in _prefixes(name)}
    return graph


def _prefixes(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def test_no_import_circle():
    """No circle among the modules of trainers/ and datasets/, imports inside functions included (a package's
    ``__init__`` importing its own modules is none: they run inside the package's import)."""
    graph = _import_graph()
    assert len(graph) > 50 and "trainers.ship.common.errors" in graph["trainers.ship.config.build"]
    state, circles = {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                circles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, " | ".join(" -> ".join(c) for c in circles)


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


def test_a_checkout_installed_by_the_flat_layout_is_migrated_by_installing_again(pre_move_tree, tmp_path, capsys):
    """Install the flat layout into a CoOp-shaped checkout, install again from this tree: the files it no longer
    ships go (through the manifest; a user's file stays), the marked lines are rewritten, and a SHIP trainer runs."""
    checkout = coop_shaped_checkout(tmp_path / "CoOp")
    env = {**os.environ, "PYTHONPATH": str(pre_move_tree)}
    proc = subprocess.run([sys.executable, "-m", "trainers.ship.install_into", str(checkout)], cwd=pre_move_tree,
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    old_only = ["trainers/ship_coop.py", "trainers/dassl_feature_trainer.py", "ship_datasets/dassl_datasets.py",
                "trainers/ship/settings_check.py", "trainers/ship/stages.py", "trainers/ship/published.json"]
    assert all((checkout / f).is_file() for f in old_only)
    assert "import ship_datasets.dassl_datasets  # SHIP plug-in" in (checkout / "train.py").read_text()
    (checkout / "trainers" / "ship" / "my_notes.txt").write_text("a user's own file\n")

    changes = install(checkout)
    for relative in old_only:
        assert f"remove {relative} (no longer part of SHIP)" in changes and not (checkout / relative).exists()
    assert (checkout / "trainers/ship/my_notes.txt").read_text() == "a user's own file\n"
    manifest = json.loads((checkout / MANIFEST).read_text())["files"]
    shipped = {str(p.relative_to(checkout)) for p in checkout.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert set(manifest) == shipped - {"train.py", "trainers/__init__.py", "trainers/coop.py", "datasets/__init__.py",
                                       "configs/datasets/caltech101.yaml", MANIFEST, "trainers/ship/my_notes.txt"}
    assert "trainers/ship/training/stages.py" in manifest and "trainers/ship/dassl/ship_coop.py" in manifest
    marked = [line.strip() for line in (checkout / "train.py").read_text().splitlines() if "# SHIP plug-in" in line]
    assert marked == ["import trainers.ship_methods  # SHIP plug-in",
                      "from trainers.ship.dassl.config import add_ship_cfg  # SHIP plug-in", "add_ship_cfg(cfg)  # SHIP plug-in"]
    capsys.readouterr()
    assert install(checkout) == []  # migrated: nothing left to change

    # a SHIP trainer runs from the migrated checkout (its own trainers/ and ship_datasets/, not this tree's)
    data = write_image_folder(tmp_path / "toy", ["cat", "dog", "car", "tree"], per_class=5)
    clip = save_tiny_clip(tmp_path / "clip.pt")
    run = [sys.executable, "-m", "trainers.ship", "--data-dir", str(data), "--weights", str(clip), "--shots", "1",
           "--trainer", "SHIP_CoOp", "--output-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
           "DATALOADER.NUM_WORKERS", "0", "TRAINER.SHIP.GEN_EPOCHS", "1", "TRAINER.SHIP.AUG_PASSES", "1",
           "TRAINER.COOP.EPOCHS", "1"]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    proc = subprocess.run(run, cwd=checkout, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["trainer"] == "SHIP_CoOp"
    if _has_dassl():  # and its Dassl trainers register from the one module train.py imports
        code = ("import trainers.ship_methods as m; from dassl.engine import TRAINER_REGISTRY as r; "
                "import trainers.ship.training.stages as s; print(m.__file__, 'SHIP_CoOp' in r.registered_names(), s.__file__)")
        proc = subprocess.run([sys.executable, "-c", code], cwd=checkout,
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        module, registered, stages = proc.stdout.split()
        assert module.startswith(str(checkout)) and registered == "True" and stages.startswith(str(checkout))
