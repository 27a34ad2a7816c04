"""What a finished run is, in one place: the scripts (``common.sh``, ``paper.sh``, ``base2new_folder.sh``), the
summary and the run-folder checks all ask :func:`finished`.

    python -m trainers.ship.reports.finished RUN_DIR   # exit 0 when finished, 1 otherwise; one line says why

- A SHIP run, of either route (``python -m trainers.ship``, or a ``SHIP_*`` trainer under Dassl's ``train.py``), is
  finished when its ``results.json`` is there and complete: both routes write it atomically as their last file,
  after the final test on the test split, and it names its ``backend``, ``selection`` and metrics.
- A run of CoOp's own trainers (CoOp, CoCoOp, ... in a CoOp checkout: no ``results.json``) is finished when its
  Dassl ``log.txt`` has a ``* accuracy`` line after the last ``Evaluate on the *test* set``; the val tests that
  ``TEST.FINAL_MODEL best_val`` logs every epoch never count, so a killed run is never finished.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

METRIC_KEYS = ("hm", "accuracy", "base", "new", "seen", "unseen")
TEST_MARK = "Evaluate on the *test* set"  # Dassl's test() before the evaluator's lines on the test split
TRAINER_LINE = re.compile(r"^Loading trainer: (\S+)", re.MULTILINE)  # Dassl's build_trainer
SHIP_PREFIX = "SHIP_"  # the Dassl trainers SHIP registers, which write results.json


def complete_results(path: Path) -> tuple[bool, str]:
    """Whether ``results.json`` at ``path`` is a whole run's result (readable, with its selection and a metric)."""
    try:
        result = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return False, f"{path} cannot be read ({type(exc).__name__}); a run still writing it, or a damaged file"
    if not isinstance(result, dict) or "selection" not in result or not any(k in result for k in METRIC_KEYS):
        return False, f"{path} is not a finished run's results (no selection or metric)"
    return True, f"{path} is complete"


def test_split_values(log_text: str, metric: str = "accuracy") -> float | None:
    """The last ``* <metric>: xx%`` after the last ``Evaluate on the *test* set`` of a Dassl log, or None."""
    at = log_text.rfind(TEST_MARK)
    if at < 0:
        return None
    found = re.findall(rf"^\* {metric}: ([\d.]+)%", log_text[at:], re.MULTILINE)
    return float(found[-1]) if found else None


def dassl_trainer(log_text: str) -> str | None:
    """The trainer a Dassl ``log.txt`` ran (``Loading trainer: NAME``), or None."""
    found = TRAINER_LINE.findall(log_text)
    return found[-1] if found else None


def coop_log(folder: Path) -> Path | None:
    """The ``log.txt`` of a finished run of one of CoOp's own trainers in ``folder``, or None."""
    log = folder / "log.txt"
    if not log.is_file():
        return None
    text = log.read_text(errors="replace")
    trainer = dassl_trainer(text)
    if trainer is None or trainer.startswith(SHIP_PREFIX) or test_split_values(text) is None:
        return None
    return log


def finished(folder: str | Path) -> tuple[bool, str]:
    """Whether ``folder`` holds a finished run, and one line saying why (or why not)."""
    folder = Path(folder)
    results = folder / "results.json"
    if results.is_file():
        return complete_results(results)
    if coop_log(folder) is not None:
        return True, f"{folder / 'log.txt'} (a run of CoOp's own trainers) has its test-split accuracy"
    if not folder.is_dir():
        return False, f"{folder} does not exist"
    return False, (f"{folder} has no results.json (SHIP writes it after the final test, on either route) and no "
                   f"log.txt of CoOp's own trainers with a test-split accuracy")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainers.ship.reports.finished",
                                description="Exit 0 when RUN_DIR holds a finished run, 1 otherwise; one line says why.")
    p.add_argument("run_dir", help="a run's output folder")
    done, why = finished(p.parse_args(argv).run_dir)
    print(("finished: " if done else "not finished: ") + why)
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
