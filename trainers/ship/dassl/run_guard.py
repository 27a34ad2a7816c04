"""A SHIP run under a Dassl ``train.py`` that has no error handler (CoOp's): bad input, Ctrl-C or a failed read or
write is one ``error:`` line; the folder of a run that did not finish is moved to ``<folder>.unfinished`` (CoOp's
scripts skip an existing folder) and taken back by the next run of the same command; the core's log lines go to
stdout, which Dassl tees into ``log.txt``. Imports no Dassl.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from trainers.ship.common.errors import one_line, print_and_log, remember_interrupts
from trainers.ship.common.options import use_config_keys

UNFINISHED = ".unfinished"
this_run = {"dir": None, "movable": False}  # this process's output folder, and whether a failure moves it aside


def _set_aside(out: Path) -> Path:
    """Move an unfinished run's folder to ``<folder>.unfinished`` (CoOp's scripts skip any existing folder)."""
    target = out.with_name(out.name + UNFINISHED)
    n = 2
    while target.exists():
        target, n = out.with_name(f"{out.name}{UNFINISHED}-{n}"), n + 1
    out.rename(target)
    return target


def _only_logs(out: Path) -> bool:
    """True when ``out`` holds nothing but Dassl's log files and the run lock: no finished or resumable work."""
    return all(p.name.startswith("log.txt") or p.name == ".lock" for p in out.iterdir()) if out.is_dir() else True


def take_back_unfinished(out: Path) -> bool:
    """Put the files of this folder's unfinished run (moved to ``<folder>.unfinished`` by a failure) back, so this
    run resumes from its last finished stage; its log is kept as ``log.txt-unfinished``. True when ``out`` may be
    moved aside again on failure (it held no finished work of another run)."""
    aside = out.with_name(out.name + UNFINISHED)
    if not _only_logs(out):
        return False
    if aside.is_dir():
        work = not _only_logs(aside)
        for entry in aside.iterdir():
            target, n = out / entry.name, 1
            while target.exists():
                target, n = out / f"{entry.name}-unfinished{'' if n == 1 else n}", n + 1
            entry.rename(target)
        aside.rmdir()
        if work:
            print(f"Resuming the unfinished run moved to {aside} (its files are back in {out})")
    return True


def _report_ship_errors(kind, error, trace) -> None:
    """Under any ``train.py`` (CoOp's has no handler): a ShipError, Ctrl-C or a failed read/write is one line
    (exit status 2, or 130 for Ctrl-C), a bug its traceback; and the folder of a run that did not finish is moved
    to ``<folder>.unfinished``, so that CoOp's scripts, which skip an existing folder, run it again."""
    out = this_run["dir"]
    moved = ""
    if this_run["movable"] and out is not None and out.is_dir():
        try:
            moved = f" (the unfinished run was moved to {_set_aside(out)}; once the cause is fixed, the same command resumes it)"
        except OSError:
            pass
    reported = one_line(error) if isinstance(error, BaseException) else None
    if reported is None:
        sys.__excepthook__(kind, error, trace)
        if moved:
            print(moved.strip(" ()"), file=sys.stderr)
        return
    line, status = reported
    print_and_log(line.replace("\n", " ") + moved)  # console and Dassl's log.txt
    sys.exit(status)


def route_ship_log() -> None:
    """The core's progress lines (generator epochs, label-only classes, caches) to stdout, which Dassl's
    ``setup_logger`` tees into ``log.txt``; bad input as one ``error:`` line; error messages that name config
    keys (``MODEL.BACKBONE.WEIGHTS``), not the core's flags."""
    use_config_keys()
    ship_log = logging.getLogger("ship")
    ship_log.setLevel(logging.INFO)
    ship_log.propagate = False
    logging.disable(logging.NOTSET)  # a dependency of dassl disables every log record up to WARNING
    if not any(getattr(h, "ship_stdout", False) for h in ship_log.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.ship_stdout = True
        ship_log.addHandler(handler)
    sys.excepthook = _report_ship_errors
    remember_interrupts()  # for the rest of the process: a swallowed Ctrl-C still stops the next step
