"""Bad input and faults as one line, in the console and in log.txt: config files that are no YAML mapping, seeds
outside numpy's range, an unreadable results.json under the summary, a run killed before it finished, and the SHIP
trainer names, seed, DATA root and loader workers of a run under CoOp's train.py (checked without dassl)."""
import json
import sys

import pytest
from yacs.config import CfgNode as CN

from trainers.ship.__main__ import main
from trainers.ship.common.errors import ShipError
from trainers.ship.common.run_log import usable_cpus
from trainers.ship.common.ranges import SEED_MAX
from trainers.ship.config import build_cfg, read_config_file
from trainers.ship.dassl.config import add_ship_cfg, ship_trainer_names
from trainers.ship.reports import summary
from trainers.ship.run.setup import check_setup

from .helpers import write_image_folder


@pytest.mark.parametrize("text, line, what", [
    ("TRAINER:\n  SHIP: [1\n  X: 2\n", 3, "YAML syntax error"),
    ("# a comment\n- GEN_EPOCHS: 3\n", 2, "its top level is a list"),
    ("TRAINER:\n\tSHIP: 1\n", 2, "YAML syntax error"),
])
def test_a_config_file_that_is_no_yaml_mapping_is_one_line_naming_file_and_line(tmp_path, capsys, text, line, what):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ShipError, match=f"bad config file {path}, line {line}: {what}"):
        read_config_file(path)
    with pytest.raises(ShipError, match=f"line {line}"):
        build_cfg([str(path)])
    assert main(["--root", str(tmp_path), "--config-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: bad config file {path}, line {line}") and err.count("\n") == 1
    cfg = CN()  # the same line under Dassl's merge (every SHIP run's config node reads files this way)
    cfg.TRAINER, cfg.DATASET = CN(), CN()
    add_ship_cfg(cfg, "SHIP_CoOp")
    with pytest.raises(ShipError, match=f"line {line}"):
        cfg.merge_from_file(str(path))
    path.write_text("")  # an empty file is an empty mapping, as yacs reads it
    assert read_config_file(path) == {}


@pytest.mark.parametrize("seed", [-1, SEED_MAX + 1])
def test_a_seed_outside_numpys_range_is_one_line_with_the_range(tmp_path, capsys, seed):
    assert SEED_MAX == 2**32 - 1
    assert main(["--root", str(tmp_path), "--seed", str(seed)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: SEED {seed} is not allowed; expected an integer in [0, {SEED_MAX}]; pass --seed")
    assert build_cfg(overrides={"SEED": SEED_MAX}).SEED == SEED_MAX


def dassl_cfg(trainer="SHIP_CoOp", root="", seed=1):
    """A Dassl-shaped config as CoOp's setup_cfg builds it: extend_cfg (add_ship_cfg), merges, freeze."""
    cfg = CN()
    cfg.TRAINER, cfg.DATASET, cfg.MODEL, cfg.DATALOADER = CN(), CN(), CN(), CN()
    cfg.DATALOADER.NUM_WORKERS, cfg.SEED = 4, -1  # Dassl's defaults
    cfg.TRAINER.NAME, cfg.DATASET.ROOT = "", ""
    add_ship_cfg(cfg, trainer)
    cfg.merge_from_list(["TRAINER.NAME", trainer, "DATASET.ROOT", str(root), "SEED", seed])
    return cfg


def test_under_coops_train_py_bad_trainer_seed_and_root_stop_before_log_or_data(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # add_ship_cfg installs its one-line hook
    with pytest.raises(ShipError, match=r"unknown trainer 'SHIP_Coop' .*the SHIP trainers are .*SHIP_CoOp"):
        add_ship_cfg(CN(), "SHIP_Coop")  # extend_cfg: before CoOp's train.py merges anything or opens log.txt
    with pytest.raises(ShipError, match="unknown trainer 'Ship_CoOp'"):
        add_ship_cfg(CN(), "Ship_CoOp")
    assert "SHIP_CoOp" in ship_trainer_names()
    dassl_cfg(root=tmp_path).freeze()  # a good run passes
    with pytest.raises(ShipError, match=rf"SEED {SEED_MAX + 1} is not allowed; .*\[0, {SEED_MAX}\]"):
        dassl_cfg(root=tmp_path, seed=SEED_MAX + 1).freeze()  # freeze: the end of setup_cfg, before set_random_seed
    with pytest.raises(ShipError, match=rf"SEED -1 is not allowed; .*\[0, {SEED_MAX}\].*pass --seed"):
        dassl_cfg(root=tmp_path, seed=-1).freeze()  # CoOp's "no seed" would still seed SHIP's stages from -1
    missing = tmp_path / "no-DATA"
    with pytest.raises(ShipError, match=f"DATA root not found: {missing}"):
        dassl_cfg(root=missing).freeze()
    assert not missing.exists()
    cfg = dassl_cfg(trainer="SHIP_CoOp", root=tmp_path)
    cfg.merge_from_list(["TRAINER.NAME", "SHIP_Coop"])  # a name set in a config file or override
    with pytest.raises(ShipError, match="unknown trainer 'SHIP_Coop'"):
        cfg.freeze()


def test_under_coops_train_py_loader_workers_default_to_min_4_cores(monkeypatch):
    assert dassl_cfg().DATALOADER.NUM_WORKERS == min(4, usable_cpus())
    cfg = dassl_cfg()
    cfg.merge_from_list(["DATALOADER.NUM_WORKERS", 8])  # a config or override still decides
    assert cfg.DATALOADER.NUM_WORKERS == 8


def test_the_summary_names_an_unreadable_results_json_and_tables_the_rest(tmp_path, capsys):
    good = tmp_path / "base2new" / "good"
    good.mkdir(parents=True)
    (good / "results.json").write_text(json.dumps({"protocol": "base2new", "trainer": "SHIP_CoOp", "dataset": "EuroSAT",
                                                   "seed": 1, "shots": 16, "base": 90.0, "new": 60.0}))
    for name, text in (("empty", ""), ("half", '{"protocol": "base2new", "trai'), ("other", "[1, 2]")):
        (tmp_path / "base2new" / name).mkdir()
        (tmp_path / "base2new" / name / "results.json").write_text(text)
    assert summary.main([str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "SHIP_CoOp" in out and "90.00" in out
    lines = err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("skipped ") and "results.json" in line for line in lines)
    assert "empty" in lines[0] and "JSONDecodeError" in lines[1] and "not a run's results" in lines[2]


def test_an_unfinished_run_is_named_as_such_by_an_evaluation(tmp_path):
    run = tmp_path / "run"
    (run / "generator").mkdir(parents=True)
    (run / "log.txt").write_text("generator epoch [1/50]\n")  # killed (kill -9) during training: no setup.json
    with pytest.raises(ShipError, match=r"holds an unfinished training run .*again to resume it, or delete the folder"):
        check_setup(run, {})
    (run / "log.txt").write_text("* accuracy: 80.0%\n")  # an accuracy line alone is not a finished run (reports.finished)
    with pytest.raises(ShipError, match=r"holds an unfinished training run"):
        check_setup(run, {})
    (run / "results.json").write_text(json.dumps({"selection": "honest", "base": 80.0}))  # finished, by a version
    with pytest.raises(ShipError, match=r"trained by an older version\?"):  # that wrote no setup.json
        check_setup(run, {})


def test_error_lines_go_to_the_runs_log_once_it_is_open(tmp_path, tiny_clip_path, capsys):
    folder = write_image_folder(tmp_path / "toy", ["cat", "dog", "car", "tree"], per_class=3)
    out = tmp_path / "eval"
    argv = ["--data-dir", str(folder), "--weights", str(tiny_clip_path), "--output-dir", str(out), "--cache-dir",
            str(tmp_path / "cache"), "--eval-only", "--model-dir", str(tmp_path / "gone"), "DATALOADER.NUM_WORKERS", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: run folder not found") and err.count("\n") == 1
    assert (out / "log.txt").read_text().splitlines()[-1].endswith(err.strip())  # with its timestamp
    assert main(argv[:-2] + ["DATALOADER.NUM_WORKERS", "-1"]) == 2  # before the log opens: the console alone
    assert "NUM_WORKERS" in capsys.readouterr().err and "NUM_WORKERS -1" not in (out / "log.txt").read_text()
