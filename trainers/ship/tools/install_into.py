"""Install SHIP into an existing CoOp checkout (CoOp, CoCoOp, KgCoOp, MaPLe: any repository in CoOp's layout).

    python -m trainers.ship.tools.install_into PATH/TO/CoOp [--link] [--dry-run] [--uninstall]

Copies (``--link``: symlinks, file by file) into the checkout:
- ``trainers/ship/`` (the core, its Dassl adapters in ``trainers/ship/dassl/``) and ``trainers/ship_methods.py``,
  the one module ``train.py`` imports: it registers ``SHIP_<method>`` for every registered method and the datasets;
- this project's dataset readers as the package ``ship_datasets/`` (the Dassl adapters register only the datasets
  the checkout lacks, such as CUB; CoOp's own readers keep their names; the core imports them from there);
- ``configs/trainers/SHIP/`` and the same files under every SHIP trainer's name (``configs/trainers/SHIP_CoOp/``, ...:
  where CoOp's scripts look, ``configs/trainers/${TRAINER}/${CFG}.yaml``), and the dataset configs the checkout lacks.

and edits its ``train.py`` in two places, each line marked ``# SHIP plug-in``: the imports that register the
trainers and datasets, after its last ``import trainers.*``; and a call of ``add_ship_cfg(cfg)`` at the end of
``extend_cfg``. Nothing else is touched. Every file written is recorded with its SHA-256 in ``.ship_install.json``:
running it again changes nothing, or brings the checkout up to date after an update of this project; a file it
did not write, or one edited since, is never overwritten or deleted: the installer names it and stops, before
changing anything. ``--uninstall`` removes exactly what it added.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import inspect
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from trainers.ship.common.errors import ShipError, report_errors
from trainers.ship.dassl.config import ship_trainer_names

PROJECT = Path(__file__).resolve().parents[3]
MARKER = "# SHIP plug-in"
MANIFEST = ".ship_install.json"
IMPORTS = ["import trainers.ship_methods"]
CFG_LINES = ["from trainers.ship.dassl.config import add_ship_cfg", "add_ship_cfg(cfg)"]
TORCH_PIN = "torch==2.5.1 torchvision==0.20.1"  # the last torch whose LR schedulers take Dassl's `verbose`


def _files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    return sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def planned_copies(checkout: Path) -> list[tuple[Path, Path]]:
    """(source file in this project, destination in the checkout) of every file installed."""
    trees = [(PROJECT / "trainers" / "ship", checkout / "trainers" / "ship")]
    trees += [(PROJECT / "trainers" / f, checkout / "trainers" / f)
              for f in ("ship_methods.py",)]
    trees.append((PROJECT / "datasets", checkout / "ship_datasets"))
    configs = PROJECT / "configs" / "trainers" / "SHIP"
    trees += [(configs, checkout / "configs" / "trainers" / name) for name in ["SHIP", *ship_trainer_names()]]
    installed = _manifest(checkout)
    for config in sorted((PROJECT / "configs" / "datasets").glob("*.yaml")):  # only those the checkout lacks
        target = checkout / "configs" / "datasets" / config.name
        if not target.exists() or str(target.relative_to(checkout)) in installed:
            trees.append((config, target))
    pairs = []
    for source, target in trees:
        pairs += [(f, target / f.relative_to(source)) if source.is_dir() else (f, target) for f in _files(source)]
    return pairs


def _manifest(checkout: Path) -> dict[str, str]:
    """relative path -> the SHA-256 (or ``link:<target>``) of every file the installer wrote."""
    path = checkout / MANIFEST
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    if isinstance(data, list):  # an older installer recorded paths only (files or whole folders): take them as written
        found = {}
        for relative in data:
            for file in _files(checkout / relative) if (checkout / relative).exists() else []:
                found[str(file.relative_to(checkout))] = _state(file)
        return found
    return data["files"]


def _state(path: Path) -> str | None:
    """What a file holds now: ``link:<target>`` for a symlink, else its SHA-256; None when absent."""
    if path.is_symlink():
        return f"link:{os.readlink(path)}"
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wanted(source: Path, link: bool) -> str:
    return f"link:{source}" if link else hashlib.sha256(source.read_bytes()).hexdigest()


@dataclass
class Plan:
    """The changes an install or uninstall makes, decided before any is made."""

    write: list[tuple[Path, Path]]  # (source, target)
    remove: list[str]  # relative paths
    keep: dict[str, str]  # the manifest afterwards


def _conflict(relative: str, why: str) -> ShipError:
    return ShipError(f"{relative} {why}; the installer never overwrites or deletes a file it did not write: "
                     f"move it away (or restore it) and run it again")


def plan_install(checkout: Path, link: bool) -> Plan:
    installed = _manifest(checkout)
    plan = Plan([], [], {})
    planned = planned_copies(checkout)
    shipped = {str(t.relative_to(checkout)) for _, t in planned}
    for relative in sorted(set(installed) - shipped):  # written by an older version, no longer part of SHIP
        now = _state(checkout / relative)
        if now is not None and now != installed[relative]:
            raise _conflict(relative, "was changed since SHIP installed it and is no longer part of SHIP")
        plan.remove.append(relative)
    for source, target in planned:
        relative, wanted, now = str(target.relative_to(checkout)), _wanted(source, link), _state(target)
        if now == wanted:
            plan.keep[relative] = wanted
            continue
        if now is not None and relative not in installed:
            raise _conflict(relative, "exists and was not installed by SHIP")
        if now is not None and now != installed[relative]:
            raise _conflict(relative, "was changed since SHIP installed it")
        plan.write.append((source, target))
        plan.keep[relative] = wanted
    return plan


def _remove(path: Path, checkout: Path) -> None:
    """Remove a file, then its folders up to the checkout as they become empty."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    folder = path.parent
    while folder != checkout and folder.is_dir() and not any(p.name != "__pycache__" for p in folder.iterdir()):
        shutil.rmtree(folder)
        folder = folder.parent


def _write(source: Path, target: Path, link: bool) -> None:
    if target.is_symlink() or target.exists():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        target.symlink_to(source)
    else:
        shutil.copy2(source, target)


def edited_train_py(text: str) -> str:
    """``train.py`` (without SHIP's lines) with the marked import lines and the ``add_ship_cfg`` call added."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    extend = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "extend_cfg"), None)
    if extend is None:
        raise ShipError("train.py has no top-level extend_cfg(cfg) function; is this a CoOp checkout?")
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    trainer_imports = [n for n in imports if isinstance(n, ast.Import) and n.names[0].name.startswith("trainers.")]
    after_import = (trainer_imports or imports)[-1].end_lineno if imports else 0
    indent = " " * extend.body[0].col_offset
    cfg_block = [f"{indent}{line}  {MARKER}\n" for line in CFG_LINES]
    import_block = [f"{line}  {MARKER}\n" for line in IMPORTS]
    end = extend.end_lineno
    if not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    lines[end:end] = cfg_block  # the function's end comes after the imports: insert it first
    lines[after_import:after_import] = import_block
    return "".join(lines)


def without_plugin(text: str) -> str:
    """``train.py`` with every marked line removed."""
    return "".join(line for line in text.splitlines(keepends=True) if MARKER not in line)


def torch_note() -> str | None:
    """One line when this torch breaks CoOp's own Dassl trainers (not SHIP's): Dassl's LR schedulers pass
    ``verbose``, which torch's schedulers no longer take, and from torch 2.6 Dassl's ``torch.load`` of a checkpoint
    (``--eval-only``) refuses its scheduler state (``weights_only``)."""
    problems = []
    if "verbose" not in inspect.signature(torch.optim.lr_scheduler.LRScheduler.__init__).parameters:
        problems.append("Dassl's LR schedulers pass `verbose`: a TypeError")
    if tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 6):
        problems.append("--eval-only's torch.load refuses Dassl's checkpoints (weights_only)")
    if not problems:
        return None
    return (f"note: torch {torch.__version__} runs the SHIP_ trainers, but not CoOp's own trainers (CoOp, CoCoOp: "
            f"{'; '.join(problems)}); for those use {TORCH_PIN} (docs/running_with_dassl.md)")


def _save_manifest(checkout: Path, files: dict[str, str]) -> None:
    path = checkout / MANIFEST
    if files:
        path.write_text(json.dumps({"version": 2, "files": dict(sorted(files.items()))}, indent=1) + "\n")
    elif path.is_file():
        path.unlink()


def install(checkout: str | Path, link: bool = False, dry_run: bool = False) -> list[str]:
    """Install into ``checkout``; returns (and prints) one line per change."""
    checkout = Path(checkout).expanduser().resolve()
    train_py = checkout / "train.py"
    if not train_py.is_file() or not (checkout / "trainers" / "__init__.py").is_file():
        raise ShipError(f"{checkout} is not a CoOp checkout: expected train.py and a trainers/ package there")
    plan = plan_install(checkout, link)  # every conflict stops here, before anything changes
    text = train_py.read_text()
    edited = edited_train_py(without_plugin(text))  # an older version's lines are replaced by this version's
    changes = [f"remove {relative} (no longer part of SHIP)" for relative in plan.remove]
    changes += [f"{'link' if link else 'copy'} {source.relative_to(PROJECT)} -> {target.relative_to(checkout)}"
                for source, target in plan.write]
    if edited != text:
        changes.append(f"train.py: the import of trainers.ship_methods registering the SHIP trainers and datasets, and "
                       f"add_ship_cfg(cfg) at the end of extend_cfg (lines marked '{MARKER}')")
    if not dry_run:
        for relative in plan.remove:
            _remove(checkout / relative, checkout)
        for source, target in plan.write:
            _write(source, target, link)
        _save_manifest(checkout, plan.keep)
        if edited != text:
            train_py.write_text(edited)
    _report(changes, dry_run, "installed")
    note = torch_note()
    if note:
        print(note)
    return changes


def uninstall(checkout: str | Path, dry_run: bool = False) -> list[str]:
    """Remove what :func:`install` added to ``checkout`` (a file changed since is named, and nothing removed)."""
    checkout = Path(checkout).expanduser().resolve()
    installed = _manifest(checkout)
    for relative, written in sorted(installed.items()):
        now = _state(checkout / relative)
        if now is not None and now != written:
            raise _conflict(relative, "was changed since SHIP installed it")
    changes = [f"remove {relative}" for relative in sorted(installed)]
    train_py = checkout / "train.py"
    edit = train_py.is_file() and MARKER in train_py.read_text()
    if edit:
        changes.append(f"train.py: remove the lines marked '{MARKER}'")
    if not dry_run:
        for relative in sorted(installed):
            _remove(checkout / relative, checkout)
        if edit:
            train_py.write_text(without_plugin(train_py.read_text()))
        _save_manifest(checkout, {})
    return _report(changes, dry_run, "uninstalled")


def _report(changes: list[str], dry_run: bool, done: str) -> list[str]:
    """Print the changes: file copies and removals counted per folder, every other change on its own line."""
    prefix = "would " if dry_run else ""
    per_folder: dict[str, int] = {}
    for change in changes:
        verb, _, rest = change.partition(" ")
        if verb in ("copy", "link", "remove") and "train.py" != rest:
            target = rest.split(" -> ")[-1].split(" (")[0]
            key = f"{verb} {target.rsplit('/', 1)[0] + '/' if '/' in target else target}"
            per_folder[key] = per_folder.get(key, 0) + 1
        else:
            print(prefix + change)
    for key, count in per_folder.items():
        print(f"{prefix}{key} ({count} file{'s' if count > 1 else ''})")
    if not changes:
        print(f"nothing to change: SHIP is {done} already")
    return changes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainers.ship.tools.install_into", description=__doc__.split("\n")[0])
    p.add_argument("checkout", help="the CoOp checkout (holds train.py and trainers/)")
    p.add_argument("--link", action="store_true", help="symlink each file to this project instead of copying")
    p.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    p.add_argument("--uninstall", action="store_true", help="remove what an install added")
    args = p.parse_args(argv)
    if args.uninstall:
        return report_errors(lambda: uninstall(args.checkout, args.dry_run))
    return report_errors(lambda: install(args.checkout, args.link, args.dry_run))


if __name__ == "__main__":
    sys.exit(main())
