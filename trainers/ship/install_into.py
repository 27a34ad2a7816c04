"""Install SHIP into an existing CoOp checkout (CoOp, CoCoOp, KgCoOp, MaPLe: any repository in CoOp's layout).

    python -m trainers.ship.install_into PATH/TO/CoOp [--link] [--dry-run] [--uninstall]

Copies (``--link``: symlinks) into the checkout:
- ``trainers/ship/`` (the dassl-free core) and the Dassl trainers ``trainers/ship_coop.py``,
  ``trainers/ship_methods.py`` (``SHIP_<method>`` for every registered method), ``trainers/dassl_feature_trainer.py``;
- this project's dataset readers as the package ``ship_datasets/`` (they register only the datasets the
  checkout lacks, such as CUB; CoOp's own readers keep their names);
- ``configs/trainers/SHIP/`` and the dataset configs the checkout lacks.

and edits its ``train.py`` in two places, each line marked ``# SHIP plug-in``: the imports that register the
trainers and datasets, after its last ``import trainers.*``; and a call of ``add_ship_cfg(cfg)`` at the end of
``extend_cfg``. Nothing else is touched. Running it again changes nothing (after an update of this project it
brings the checkout up to date: changed files, the marked lines, files no longer shipped); ``--uninstall``
removes exactly what it added (recorded in ``.ship_install.json``).
"""
from __future__ import annotations

import argparse
import ast
import filecmp
import json
import os
import shutil
import sys
from pathlib import Path

from .errors import ShipError, report_errors

PROJECT = Path(__file__).resolve().parents[2]
MARKER = "# SHIP plug-in"
MANIFEST = ".ship_install.json"
IMPORTS = ["import trainers.ship_methods", "import ship_datasets.dassl_datasets"]
CFG_LINES = ["from trainers.ship.dassl_config import add_ship_cfg", "add_ship_cfg(cfg)"]


def planned_copies(checkout: Path) -> list[tuple[Path, Path]]:
    """(source in this project, destination in the checkout) of everything installed."""
    pairs = [(PROJECT / "trainers" / "ship", checkout / "trainers" / "ship")]
    pairs += [(PROJECT / "trainers" / f, checkout / "trainers" / f)
              for f in ("ship_coop.py", "ship_methods.py", "dassl_feature_trainer.py")]
    pairs.append((PROJECT / "datasets", checkout / "ship_datasets"))
    pairs.append((PROJECT / "configs" / "trainers" / "SHIP", checkout / "configs" / "trainers" / "SHIP"))
    pairs += [(c, checkout / "configs" / "datasets" / c.name) for c in sorted((PROJECT / "configs" / "datasets").glob("*.yaml"))
              if not (checkout / "configs" / "datasets" / c.name).exists() or _is_ours(checkout, checkout / "configs" / "datasets" / c.name)]
    return pairs


def _manifest(checkout: Path) -> list[str]:
    path = checkout / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else []


def _is_ours(checkout: Path, path: Path) -> bool:
    return str(path.relative_to(checkout)) in _manifest(checkout)


def _same(source: Path, target: Path, link: bool) -> bool:
    if link:
        return target.is_symlink() and Path(os.readlink(target)) == source
    if target.is_symlink() or not target.exists():
        return False
    if source.is_file():
        return target.is_file() and filecmp.cmp(source, target, shallow=False)
    compared = filecmp.dircmp(source, target, ignore=["__pycache__"])
    return not (compared.left_only or compared.right_only or compared.diff_files or compared.funny_files) and all(
        _same(source / d, target / d, False) for d in compared.common_dirs)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _copy(source: Path, target: Path, link: bool) -> None:
    _remove(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        target.symlink_to(source, target_is_directory=source.is_dir())
    elif source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
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


def install(checkout: str | Path, link: bool = False, dry_run: bool = False) -> list[str]:
    """Install into ``checkout``; returns (and prints) one line per change."""
    checkout = Path(checkout).expanduser().resolve()
    train_py = checkout / "train.py"
    if not train_py.is_file() or not (checkout / "trainers" / "__init__.py").is_file():
        raise ShipError(f"{checkout} is not a CoOp checkout: expected train.py and a trainers/ package there")
    changes, installed = [], _manifest(checkout)
    planned = planned_copies(checkout)
    for relative in sorted(set(installed) - {str(t.relative_to(checkout)) for _, t in planned}):  # left by an older version
        changes.append(f"remove {relative} (no longer part of SHIP)")
        if not dry_run:
            _remove(checkout / relative)
            installed = [r for r in installed if r != relative]
    for source, target in planned:
        relative = str(target.relative_to(checkout))
        if _same(source, target, link):
            continue
        if (target.exists() or target.is_symlink()) and relative not in installed:
            raise ShipError(f"{target} exists and was not installed by SHIP; move it away first")
        changes.append(f"{'link' if link else 'copy'} {source.relative_to(PROJECT)} -> {relative}")
        if not dry_run:
            _copy(source, target, link)
            installed = sorted(set(installed) | {relative})
    text = train_py.read_text()
    edited = edited_train_py(without_plugin(text))  # an older version's lines are replaced by this version's
    if edited != text:
        changes.append(f"train.py: {len(IMPORTS)} import lines registering the SHIP trainers and datasets, and "
                       f"add_ship_cfg(cfg) at the end of extend_cfg (lines marked '{MARKER}')")
        if not dry_run:
            train_py.write_text(edited)
    if not dry_run and installed:
        (checkout / MANIFEST).write_text(json.dumps(installed, indent=1) + "\n")
    return _report(changes, dry_run, "installed")


def uninstall(checkout: str | Path, dry_run: bool = False) -> list[str]:
    """Remove what :func:`install` added to ``checkout``."""
    checkout = Path(checkout).expanduser().resolve()
    changes = []
    for relative in _manifest(checkout):
        changes.append(f"remove {relative}")
        if not dry_run:
            _remove(checkout / relative)
    train_py = checkout / "train.py"
    if train_py.is_file() and MARKER in train_py.read_text():
        changes.append(f"train.py: remove the lines marked '{MARKER}'")
        if not dry_run:
            train_py.write_text(without_plugin(train_py.read_text()))
    if not dry_run and (checkout / MANIFEST).is_file():
        (checkout / MANIFEST).unlink()
    return _report(changes, dry_run, "uninstalled")


def _report(changes: list[str], dry_run: bool, done: str) -> list[str]:
    for change in changes:
        print(("would " if dry_run else "") + change)
    if not changes:
        print(f"nothing to change: SHIP is {done} already")
    return changes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainers.ship.install_into", description=__doc__.split("\n")[0])
    p.add_argument("checkout", help="the CoOp checkout (holds train.py and trainers/)")
    p.add_argument("--link", action="store_true", help="symlink to this project instead of copying")
    p.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    p.add_argument("--uninstall", action="store_true", help="remove what an install added")
    args = p.parse_args(argv)
    if args.uninstall:
        return report_errors(lambda: uninstall(args.checkout, args.dry_run))
    return report_errors(lambda: install(args.checkout, args.link, args.dry_run))


if __name__ == "__main__":
    sys.exit(main())
