"""One definition of a finished run (``reports.finished``), used by the scripts and the summary: a killed Dassl run
whose log holds only val accuracies (``TEST.FINAL_MODEL best_val``) is neither finished nor tabled."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from trainers.ship.reports.finished import finished
from trainers.ship.reports.summary import collect

ROOT = Path(__file__).resolve().parents[1]

DASSL_HEAD = "Loading trainer: {trainer}\nLoading evaluator: Classification\n"
VAL_TEST = "Evaluate on the *val* set\n=> result\n* total: 8\n* correct: 6\n* accuracy: 75.0%\n"
FINAL_TEST = "Evaluate on the *test* set\n=> result\n* total: 10\n* correct: 4\n* accuracy: {acc}%\n"


def _run(root: Path, layout: str, trainer: str, log: str | None = None, results: dict | None = None) -> Path:
    folder = root / layout.format(trainer=trainer)
    folder.mkdir(parents=True)
    if log is not None:
        (folder / "log.txt").write_text(log)
    if results is not None:
        (folder / "results.json").write_text(json.dumps(results))
    return folder


def _results(split: str, value: float, backend: str = "dassl") -> dict:
    return {"protocol": "base2new", "trainer": "SHIP_CoOp", "dataset": "EuroSAT", "shots": 2, "seed": 1,
            split: value, "selection": "honest", "backend": backend}


def test_a_killed_best_val_run_is_not_finished_and_not_tabled(tmp_path, capsys):
    root = tmp_path / "out"
    layout = "{split}/eurosat/shots_2/{trainer}/vit_b16/seed1"
    killed = VAL_TEST * 3  # killed after three epochs' val tests
    for split in ("train_base", "test_new"):
        _run(root, layout.replace("{split}", split), "CoOp", DASSL_HEAD.format(trainer="CoOp") + killed)
    assert not finished(root / "train_base/eurosat/shots_2/CoOp/vit_b16/seed1")[0]
    assert collect(root)[0] == {}
    skipped = capsys.readouterr().err.splitlines()  # one line per unfinished folder: never left out silently
    assert len(skipped) == 2 and all(line.startswith("skipped ") and "not finished" in line for line in skipped)
    # the same runs, finished: the final test on the test split counts, not the val accuracies before it
    for split, acc in (("train_base", 40.0), ("test_new", 60.0)):
        log = root / layout.replace("{split}", split).format(trainer="CoOp") / "log.txt"
        log.write_text(log.read_text() + FINAL_TEST.format(acc=acc))
    assert finished(root / "train_base/eurosat/shots_2/CoOp/vit_b16/seed1")[0]
    (group, runs), = collect(root)[0].items()
    assert group == ("base2new", "EuroSAT", "CoOp", "vit_b16", 2, "dassl") and runs[0]["base"] == 40.0


def test_a_ship_run_is_finished_only_by_its_complete_results_json(tmp_path):
    """A SHIP trainer's Dassl log with a test-split accuracy but no results.json (killed between the two, or written
    by an older version) is not finished; a results.json cut short is not either."""
    log = DASSL_HEAD.format(trainer="SHIP_CoOp") + VAL_TEST + FINAL_TEST.format(acc=50.0)
    folder = _run(tmp_path, "a/seed1", "SHIP_CoOp", log)
    done, why = finished(folder)
    assert not done and "no results.json" in why
    (folder / "results.json").write_text('{"protocol": "base2new", "trai')
    assert not finished(folder)[0]
    (folder / "results.json").write_text(json.dumps(_results("base", 50.0)))
    assert finished(folder) == (True, f"{folder / 'results.json'} is complete")


def test_rows_name_their_route_and_routes_never_share_a_row(tmp_path):
    layout = "{split}/eurosat/shots_2/SHIP_CoOp/vit_b16/seed{seed}"
    for seed in (1, 2):
        for split, metric in (("train_base", "base"), ("test_new", "new")):
            _run(tmp_path, layout.format(split=split, seed=seed), "", results={**_results(metric, 50.0 + seed), "seed": seed})
    _run(tmp_path, "core/eurosat/SHIP_CoOp/vit_b16/seed1", "",
         results={**_results("base", 70.0, "core"), "new": 30.0, "hm": 42.0})
    groups, _ = collect(tmp_path)
    assert {g[-1]: len(runs) for g, runs in groups.items()} == {"dassl": 2, "core": 1}


def test_the_scripts_ask_the_one_definition(tmp_path):
    """common.sh's finished() (which paper.sh and every train script use) answers as reports.finished does."""
    killed = _run(tmp_path, "killed", "", DASSL_HEAD.format(trainer="SHIP_CoOp") + VAL_TEST)
    done = _run(tmp_path, "done", "", results=_results("base", 50.0))
    env = {**os.environ, "DATA": str(tmp_path)}
    for folder, expected in ((killed, 1), (done, 0)):
        proc = subprocess.run(["bash", "-c", f'source scripts/ship/common.sh && finished "{folder}"'], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == expected, proc.stderr
    cli = subprocess.run(["python3", "-m", "trainers.ship.reports.finished", str(killed)], cwd=ROOT, capture_output=True,
                         text=True, env={**env, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert cli.returncode == 1 and cli.stdout.startswith("not finished: ") and "no results.json" in cli.stdout
    for script in ("paper.sh", "base2new_folder.sh", "common.sh"):
        text = (ROOT / "scripts/ship" / script).read_text()
        assert "trainers.ship.reports.finished" in text or 'finished "${dir}"' in text, script
        assert "results.json\" ]" not in text and "^\\* accuracy" not in text, script


@pytest.mark.parametrize("bad", ["[]", '{"selection": "honest"}', ""])
def test_a_results_json_without_selection_or_metric_is_not_finished(tmp_path, bad):
    (tmp_path / "results.json").write_text(bad)
    assert not finished(tmp_path)[0]
