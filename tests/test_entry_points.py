"""Every Python entry point answers --help: exit 0, its usage, at once, without starting any work."""
from __future__ import annotations

import runpy
import sys
import warnings
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
KNOWN = {"benchmarks", "benchmarks.base2new_pipeline", "benchmarks.generator", "benchmarks.text_encoder",
         "benchmarks.vs_coop_image_loop", "datasets.download", "train", "trainers.ship", "trainers.ship.tools.install_into",
         "trainers.ship.reports.interpret", "trainers.ship.reports.summary", "trainers.ship.install_into",
         "trainers.ship.interpret", "trainers.ship.summary"}
# the paths these commands had before the layers: they still run, after one line naming the new command
OLD_PATHS = {"trainers.ship.install_into": "trainers.ship.tools.install_into",
             "trainers.ship.interpret": "trainers.ship.reports.interpret", "trainers.ship.summary": "trainers.ship.reports.summary"}


def entry_points() -> list[str]:
    """Modules run as ``python -m M`` (a package's ``__main__.py``, a module with a ``__main__`` guard) in the
    project's packages, and the top-level scripts (``train``)."""
    found = set()
    packages = [d for d in ROOT.iterdir() if (d / "__init__.py").is_file() and d.name != "tests"]
    files = [p for d in packages for p in d.rglob("*.py")] + list(ROOT.glob("*.py"))
    for path in files:
        parts = path.relative_to(ROOT).with_suffix("").parts
        if path.name == "__main__.py":
            found.add(".".join(parts[:-1]))
        elif 'if __name__ == "__main__":' in path.read_text(encoding="utf-8"):
            found.add(".".join(parts))
    return sorted(found)


def test_discovery_finds_every_known_entry_point():
    assert KNOWN <= set(entry_points())


def refuse_work(*_args, **_kwargs):
    raise AssertionError("--help started work")


@pytest.mark.parametrize("module", entry_points())
def test_entry_point_answers_help(module, monkeypatch, tmp_path, capsys):
    """Run as ``python -m <module> --help`` would run it; saving or loading a model, or a run, fails the test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [module, "--help"])
    for name in ("save", "load"):
        monkeypatch.setattr(torch, name, refuse_work)
    monkeypatch.setattr("trainers.ship.run.pipeline.run", refuse_work)
    with warnings.catch_warnings(), pytest.raises(SystemExit) as stop:
        warnings.simplefilter("ignore", RuntimeWarning)  # runpy: the module was imported before (by other tests)
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    out, err = capsys.readouterr()
    assert stop.value.code in (0, None)
    assert out.startswith("usage: ") and "--help" in out
    prog = "train.py" if module == "train" else f"python -m {OLD_PATHS.get(module, module)}"
    if module in OLD_PATHS:
        assert err == f"note: python -m {module} is now python -m {OLD_PATHS[module]}\n"
    assert out.split("\n")[0].startswith(f"usage: {prog} "), out.split("\n")[0]
    assert list(tmp_path.iterdir()) == []  # nothing written
