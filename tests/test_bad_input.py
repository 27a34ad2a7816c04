"""The bad-input matrix (benchmarks/bad_input.py): its classification, a fast subset of real cases, and the whole
matrix under the ``slow`` marker (``python3 -m pytest -m slow tests/test_bad_input.py``)."""
import pytest

from benchmarks.bad_input import BAD, Case, Outcome, all_cases, classify, run_matrix

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


def test_a_fast_subset_of_real_cases_is_clear(tmp_path):
    rows = run_matrix(jobs=2, only=FAST_SUBSET, scratch=tmp_path, quiet=True)
    assert [f"{c.group}: {c.name}" for c, *_ in rows] == sorted(FAST_SUBSET, key=[f"{c.group}: {c.name}" for c in all_cases()].index)
    assert {kind for _, kind, _, _ in rows} == {"clear"}, rows


@pytest.mark.slow
def test_the_whole_matrix_has_no_traceback_silent_wrong_or_lost_file(tmp_path):
    rows = run_matrix(jobs=2, scratch=tmp_path, quiet=True)
    failing = [(f"{c.group}: {c.name}", kind, note) for c, kind, note, _ in rows if kind in BAD]
    assert len(rows) >= 100 and not failing, failing
