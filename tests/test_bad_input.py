"""The bad-input matrix (benchmarks/bad_input.py): its classification, a fast subset of real cases, and the whole
matrix under the ``slow`` marker (``python3 -m pytest -m slow tests/test_bad_input.py``)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bad_input import BAD, Case, Outcome, all_cases, classify

ROOT = Path(__file__).resolve().parents[1]

ERROR, OK = Case("g", "n", "error", None), Case("g", "n", "ok", None)


@pytest.mark.parametrize("case,outcome,kind", [
    (ERROR, Outcome(2, "", "error: TRAINER.SHIP.AUG_PASSES 0 is not allowed\n"), "clear"),
    (ERROR, Outcome(130, "", "interrupted; rerun the same command to resume from the last finished stage\n"), "clear"),
    (ERROR, Outcome(1, "", 'Traceback (most recent call last):\n  File "x"\nValueError: bad\n'), "traceback"),
    (ERROR, Outcome(0, "done\n", ""), "silent-wrong"),
    (ERROR, Outcome(2, "", "error: one\nerror: two\n"), "traceback"),
    (ERROR, Outcome(None, "", ""), "silent-wrong"),
    (ERROR, Outcome(2, "", "error: refused\n", lost=["results.json"]), "lost-file"),
    (ERROR, Outcome(2, "", "error: refused\n", wrong="log.txt lacks the error line"), "silent-wrong"),
    (OK, Outcome(0, "", ""), "ok"),
    (OK, Outcome(0, "", "", wrong="classes 4+0, expected 2+2"), "silent-wrong"),
    (OK, Outcome(2, "", "error: refused a good input\n"), "silent-wrong"),
])
def test_outcomes_are_classified_as_the_issue_defines(case, outcome, kind):
    assert classify(case, outcome)[0] == kind


def test_the_matrix_covers_every_group_with_100_cases_or_more():
    cases = all_cases()
    groups = {c.group for c in cases}
    assert len(cases) >= 100 and groups == {"images", "class folders", "settings", "checkpoints", "results", "faults", "scripts"}
    names = {f"{c.group}: {c.name}" for c in cases}
    for key in ("TRAINER.SHIP.GEN_EPOCHS", "TRAINER.COOP.LR", "TRAINER.TIPADAPTER.EPOCHS", "DATALOADER.BATCH_SIZE",
                "DATASET.TEMPLATES", "TRAINER.CLIPADAPTER.RATIO", "TRAINER.COCOOP.WARMUP_EPOCHS"):
        assert any(n.startswith(f"settings: {key} ") for n in names), key


FAST_SUBSET = ["settings: TRAINER.SHIP.AUG_SCALE (0.9, 0.5)", "settings: label-only names file with a repeat",
               "images: truncated, 2 workers"]


def matrix(tmp_path: Path, *cases: str) -> list[dict]:
    """The matrix's command line in a fresh interpreter (it forks, which is unsafe from this threaded process)."""
    out = tmp_path / "rows.json"
    flags = [a for name in cases for a in ("--case", name)]
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bad_input", "--jobs", "2", *flags, "--scratch", tmp_path,
                           "--json", out], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert out.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_a_fast_subset_of_real_cases_is_clear(tmp_path):
    rows = matrix(tmp_path, *FAST_SUBSET)
    assert [r["case"] for r in rows] == sorted(FAST_SUBSET, key=[f"{c.group}: {c.name}" for c in all_cases()].index)
    assert [(r["case"], r["kind"]) for r in rows if r["kind"] != "clear"] == [], rows


@pytest.mark.slow
def test_the_whole_matrix_has_no_traceback_silent_wrong_or_lost_file(tmp_path):
    rows = matrix(tmp_path)
    failing = [(r["case"], r["kind"], r["note"]) for r in rows if r["kind"] in BAD]
    assert len(rows) >= 100 and not failing, failing
