"""The paper's protocol beside the honest one: ``TEST.SELECTION paper`` (best test H over generator snapshots,
Tip-Adapter-F's best test epoch), the published figures in the summary, ``scripts/ship/paper.sh`` and the
untrained-generator control."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainers.ship.__main__ import main
from trainers.ship.common.runtime import seed_everything, stage_seed
from trainers.ship.config import build_cfg
from trainers.ship.data.classes import Classes
from trainers.ship.methods import FitInputs
from trainers.ship.methods.tip_adapter import TipAdapter
from trainers.ship.reports.metrics import harmonic_mean
from trainers.ship.reports.summary import main as summary_main
from trainers.ship.training.stages import build_generator, read_checkpoint
from trainers.ship.training.tip_cache import TipCache, search_alpha_beta

from .helpers import make_world, split_json_dataset, write_image_folder

ROOT = Path(__file__).resolve().parents[1]
TEST_SELECTED = "test (as the official code)"
FAST = ["TRAINER.SHIP.GEN_EPOCHS", "2", "TRAINER.SHIP.AUG_PASSES", "1", "DATALOADER.NUM_WORKERS", "0",
        "TRAINER.COOP.EPOCHS", "3", "TRAINER.SHIP.FEATURE_MAP", "0"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data") / "toy", ["cat", "dog", "car", "tree", "boat", "bird"],
                              per_class=9)


def core(out, folder, clip, cache, *opts, eval_dir=None):
    argv = ["--data-dir", folder, "--weights", clip, "--shots", 2, "--seed", 1, "--trainer", "SHIP_CoOp",
            "--output-dir", out, "--cache-dir", cache]
    if eval_dir is not None:
        argv += ["--eval-only", "--model-dir", eval_dir]
    assert main([str(a) for a in argv + [*FAST, *opts]]) == 0
    return json.loads((Path(out) / "results.json").read_text())


def test_paper_selection_keeps_the_best_test_h_of_the_generator_snapshots(tmp_path, folder, tiny_clip_path):
    cache = tmp_path / "cache"
    paper = core(tmp_path / "paper", folder, tiny_clip_path, cache, "TEST.SELECTION", "paper", "TEST.SNAPSHOT_EVERY", "1")
    honest = core(tmp_path / "honest", folder, tiny_clip_path, cache)
    assert paper["selection"] == TEST_SELECTED and honest["selection"] == "honest"
    assert "selection: test (as the official code)" in (tmp_path / "paper" / "log.txt").read_text()
    # The last snapshot is the honest run's generator.
    last = read_checkpoint(tmp_path / "paper/generator/model.pth.tar-2")["state_dict"]
    trained = read_checkpoint(tmp_path / "honest/generator/model.pth.tar-2")["state_dict"]
    assert all(torch.equal(last[k], trained[k]) for k in trained)
    # Independently: evaluate the head of every snapshot as a finished run (--eval-only), then take the best H.
    h = {}
    for epoch in (1, 2):
        run = tmp_path / f"snapshot{epoch}"
        (run / "prompt_learner").mkdir(parents=True)
        shutil.copy(tmp_path / "paper/setup.json", run / "setup.json")
        shutil.copy(tmp_path / f"paper/selection/generator_{epoch}/prompt_learner/model.pth.tar-3",
                    run / "prompt_learner/model.pth.tar-3")
        scored = core(tmp_path / f"eval{epoch}", folder, tiny_clip_path, cache, eval_dir=run)
        h[epoch] = harmonic_mean(scored["base"], scored["new"])
    record = json.loads((tmp_path / "paper/selection.json").read_text())
    assert [c["test_metric"] for c in record["candidates"]] == pytest.approx([h[1], h[2]])
    best = max(h, key=lambda e: (h[e], -e))
    assert record["chosen_generator_epoch"] == best and paper["hm"] == pytest.approx(max(h.values()))
    assert h[2] == pytest.approx(harmonic_mean(honest["base"], honest["new"]))  # the last snapshot's head: the honest one
    # An evaluation-only run of the selected head says how it was chosen.
    again = core(tmp_path / "again", folder, tiny_clip_path, cache, eval_dir=tmp_path / "paper")
    assert again["selection"] == TEST_SELECTED and again["hm"] == pytest.approx(paper["hm"])
    # An honest run in the same folder trains its own head on the last generator and drops the paper's record.
    rerun = core(tmp_path / "paper", folder, tiny_clip_path, cache)
    assert rerun["selection"] == "honest" and rerun["hm"] == pytest.approx(honest["hm"])
    assert not (tmp_path / "paper/selection.json").exists()


def tip_adapter_f(text_encoder, world, metric_values):
    """A Tip-Adapter-F fit whose test metric returns ``metric_values`` in turn (one per epoch, then the searched
    alpha, beta) and records the logits each call's head gave the test features; the method's own cache is never
    touched by the scoring."""
    cfg = build_cfg(opts=["TRAINER.TIPADAPTER.FINETUNE", "True", "TRAINER.TIPADAPTER.EPOCHS", "3"])
    method = TipAdapter(cfg, text_encoder, ["a photo of a {}."])
    scored, values = [], list(metric_values)
    untouched = method.cache

    def metric(score):
        assert method.cache is untouched  # scoring a candidate has no side effect on the method
        scored.append(score(Classes(world.base_names, world.base_names))(world.test_base.features[0]))
        return values.pop(0)

    seed_everything(0)
    method.fit(FitInputs(world.train, world.base_names, world.new_names, None, world.val, "toy", 16,
                         {n: i for i, n in enumerate(world.base_names + world.new_names)}, metric))
    return method, scored


@pytest.mark.parametrize("searched", [25.0, 35.0])
def test_tip_adapter_f_keeps_its_best_test_epoch_as_the_official_code(text_encoder, searched):
    """Tip-Adapter's main.py: the best test epoch (at the initial alpha, beta), then alpha and beta searched on val,
    and the better of the two on test is reported."""
    world = make_world(text_encoder, seed=3, num_base=3, shots=4, n_test=4)
    method, scored = tip_adapter_f(text_encoder, world, [10.0, 30.0, 20.0, searched])
    classes = Classes(world.base_names, world.base_names)
    kept = TipCache(method.cache.keys, method.cache.values, 1.0, 1.0, method.cache.class_index)
    at_initial = method.score_with(kept, classes)(world.test_base.features[0])
    assert len(scored) == 4 and torch.equal(scored[1], at_initial)  # epoch 2's keys, at the initial alpha and beta
    assert not torch.equal(scored[0], at_initial) and not torch.equal(scored[2], at_initial)  # the keys moved
    alpha, beta, _ = search_alpha_beta(world.val, *_search_inputs(method, text_encoder, world), (7.0, 3.0))
    if searched > 30.0:
        assert (method.cache.alpha, method.cache.beta) == (alpha, beta)
        assert method.selected_on_test() == {"tip_adapter_f_epoch": 2, "alpha_beta": "searched on val"}
    else:
        assert (method.cache.alpha, method.cache.beta) == (1.0, 1.0)
        assert method.selected_on_test()["alpha_beta"].startswith("initial")


def _search_inputs(method, text_encoder, world):
    from trainers.ship.model.classifiers import zero_shot_weights

    zero_shot = zero_shot_weights(text_encoder, world.base_names, ["a photo of a {}."])
    n = len(world.base_names)
    return zero_shot, method.cache.keys.to(zero_shot.device), method.cache.values[:, :n].to(zero_shot.device), \
        text_encoder.logit_scale


def test_untrained_control_is_saved_fingerprinted_and_loaded(tmp_path, folder, tiny_clip_path, capsys):
    out = tmp_path / "untrained"
    opts = ["TRAINER.SHIP.GENERATOR", "untrained"]
    first = core(out, folder, tiny_clip_path, tmp_path / "cache", *opts)
    blob = read_checkpoint(out / "generator/model.pth.tar-0")
    assert len(blob["fingerprint"]) == 64 and blob["epoch"] == 0
    log = (out / "log.txt").read_text()
    assert "generator epoch" not in log and "GENERATOR untrained" in log
    # The initial weights: what SHIP's generator is built with under the generator stage's seed.
    from trainers.ship.model.clip_loader import load_clip
    from trainers.ship.model.text_encoder import TextEncoder

    clip = load_clip(weights=str(tiny_clip_path))
    seed_everything(stage_seed(1, "generator"))
    fresh = build_generator(build_cfg(opts=["TRAINER.SHIP.GENERATOR", "prompt"]), TextEncoder(clip.model)).state_dict()
    assert all(torch.equal(fresh[k].cpu(), blob["state_dict"][k]) for k in fresh)
    capsys.readouterr()
    again = core(out, folder, tiny_clip_path, tmp_path / "cache", *opts)
    assert "Loaded finished stage from" in capsys.readouterr().out and again["hm"] == first["hm"]


def write_result(root, dataset, trainer, seed, base, new, selection="honest", config="cfg"):
    d = root / dataset / trainer / config / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps({"dataset": dataset, "trainer": trainer, "seed": seed, "shots": 16,
                                                "base": base, "new": new, "selection": selection}))


def test_summary_marks_test_selected_rows_and_puts_published_figures_beside(tmp_path, capsys):
    for dataset, base, new in (("Caltech101", 70.0, 76.0), ("EuroSAT", 68.0, 72.0)):
        write_result(tmp_path, dataset, "ZeroshotCLIP", 1, base, new)
    write_result(tmp_path, "EuroSAT", "SHIP_CoOp", 1, 80.0, 70.0, TEST_SELECTED)
    write_result(tmp_path, "EuroSAT", "SHIP_CoOp", 2, 78.0, 72.0, TEST_SELECTED)
    write_result(tmp_path, "EuroSAT", "SHIP_CoOp", 1, 79.0, 60.0, config="honest")
    assert summary_main([str(tmp_path), "--csv", str(tmp_path / "t.csv")]) == 0
    out = capsys.readouterr().out
    assert "| base2new | EuroSAT | SHIP_CoOp [selection: test] | core | cfg | 16 | 2 | 79.00 ± 1.00 | 71.00 ± 1.00 |" in out
    assert "| base2new | EuroSAT | SHIP_CoOp | core | honest | 16 | 1 | 79.00 ± n/a | 60.00 ± n/a |" in out  # one seed
    assert "chosen on the test split as the official code chooses" in out
    # CLIP's published average (CoCoOp paper, Table 1) beside ours, with the difference.
    base, new = (70 + 68) / 2, (76 + 72) / 2
    h = 2 * base * new / (base + new)
    assert (f"| base2new | average | ZeroshotCLIP | core | cfg | 16 | 1 | {base:.2f} / 69.34 / {base - 69.34:+.2f} | "
            f"{new:.2f} / 74.22 / {new - 74.22:+.2f} | {h:.2f} / 71.70 / {h - 71.70:+.2f} | CoCoOp paper") in out
    published = json.loads((ROOT / "trainers/ship/reports/published.json").read_text())["rows"]
    assert all(p["source"] and p["backbone"] == "ViT-B/16" and p["shots"] == 16 for p in published)
    import csv

    rows = {(r["dataset"], r["trainer"]): r for r in csv.DictReader(open(tmp_path / "t.csv"))}
    assert float(rows[("average", "ZeroshotCLIP")]["delta_hm"]) == pytest.approx(h - 71.70)


def test_ablation_table_puts_ship_first_then_the_control(tmp_path, capsys):
    for config, h in (("gen-cvae", 50.0), ("gen-feature", 51.0), ("gen-untrained", 52.0), ("gen-prompt", 53.0), ("kl-0.1", 49.0)):
        write_result(tmp_path, "EuroSAT", "SHIP_CoOp", 1, h, h, config=config)
    assert summary_main([str(tmp_path), "--first", "gen-prompt", "gen-untrained"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| base2new | EuroSAT")]
    assert [line.split(" | ")[4] for line in lines] == ["gen-prompt", "gen-untrained", "gen-cvae", "gen-feature", "kl-0.1"]
    script = (ROOT / "scripts/ship/ablation.sh").read_text()
    assert "for variant in prompt untrained feature" in script and "--first gen-prompt gen-untrained" in script


# ------------------------------------------------------------------------------------------------ paper.sh
def paper_sh(*args, env=None, timeout=300):  # a guard against a hang, not a timing assert
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # python3: this interpreter
    return subprocess.run(["bash", "scripts/ship/paper.sh", *args], cwd=ROOT, env={**os.environ, "PATH": path, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def test_paper_script_dry_run_lists_every_run_of_the_grid(tmp_path):
    proc = paper_sh("--dry-run", env={"OUTPUT": str(tmp_path), "SELECTION": "paper"})
    assert proc.returncode == 0, proc.stderr
    runs = proc.stdout.splitlines()
    assert all(r.startswith("python3 -m trainers.ship ") and r.endswith("TEST.SELECTION paper") for r in runs)
    base2new = [r for r in runs if "/paper/paper/base2new/" in r]
    xd_train = [r for r in runs if "paper/xd/imagenet/" in r.split("--output-dir ")[1].split()[0]]
    xd_eval = [r for r in runs if "/paper/paper/xd/evaluation/" in r]
    gzsl = [r for r in runs if "/paper/paper/gzsl/cub/" in r]
    rows = 15  # ZeroshotCLIP and 7 methods, each with its SHIP twin (Tip-Adapter and Tip-Adapter-F apart)
    assert (len(base2new), len(xd_train), len(xd_eval), len(gzsl)) == (11 * rows * 3, rows * 3, rows * 3 * 10, rows * 3)
    assert len(runs) == len(base2new) + len(xd_train) + len(xd_eval) + len(gzsl)
    coop = [r for r in base2new if "--trainer CoOp " in r]
    assert all("vit_b16_ep50_ctxv1.yaml" in r for r in coop if "--dataset imagenet " in r)
    assert all("vit_b16_ctxv1.yaml" in r for r in coop if "--dataset imagenet " not in r) and len(coop) == 33
    tip_f = [r for r in base2new if "/SHIP_TipAdapter/tip_adapter_f_vit_b16/" in r]
    assert len(tip_f) == 33 and all("--trainer SHIP_TipAdapter " in r for r in tip_f)
    assert all("--eval-only --model-dir" in r for r in xd_eval) and all("SUBSAMPLE_CLASSES gzsl" in r for r in gzsl)
    helped = paper_sh("--help")
    assert helped.returncode == 0 and "--dry-run" in helped.stdout and "SELECTION=paper" in helped.stdout
    bad = paper_sh("--dry-run", env={"SELECTION": "best"})
    assert bad.returncode == 2 and bad.stderr.strip() == "error: SELECTION must be honest or paper; got 'best'"


def small_grid_data(data: Path) -> Path:
    """EuroSAT and DTD in CoOp's layout (4 classes: 3 train, 1 val, 2 test images each) and CUB's GZSL split."""
    split_json_dataset(data, "eurosat", "2750", "split_zhou_EuroSAT.json", ["Forest", "River", "Highway", "Pasture"], (3, 1, 2))
    split_json_dataset(data, "dtd", "images", "split_zhou_DescribableTextures.json", ["banded", "dotted", "woven", "lined"],
                       (3, 1, 2))
    cub = data / "cub"
    seen, unseen = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"], ["004.Groove_billed_Ani"]
    write_image_folder(cub / "CUB_200_2011" / "images", seen + unseen, per_class=4)
    (cub / "trainvalclasses.txt").write_text("\n".join(seen) + "\n")
    (cub / "testclasses.txt").write_text("\n".join(unseen) + "\n")
    return data


def test_paper_script_runs_each_protocol_then_the_tables(tmp_path, tiny_clip_path):
    data = small_grid_data(tmp_path / "DATA")
    env = {"DATA": str(data), "OUTPUT": str(tmp_path / "out"), "DOWNLOAD": "0", "SELECTION": "paper",  # 16 shots: all 3
           "DATASETS": "eurosat dtd", "SEEDS": "1", "TRAINERS": "ZeroshotCLIP", "XD_TRAINERS": "SHIP_CoOp",
           "GZSL_TRAINERS": "SHIP_CoOp", "SOURCE": "eurosat", "TARGETS": "dtd"}
    fast = ["--weights", str(tiny_clip_path), "--cache-dir", str(tmp_path / "cache"), "TRAINER.SHIP.GEN_EPOCHS", "2",
            "TEST.SNAPSHOT_EVERY", "1", "TRAINER.COOP.EPOCHS", "2", "TRAINER.SHIP.AUG_PASSES", "1",
            "DATALOADER.NUM_WORKERS", "0", "TRAINER.SHIP.FEATURE_MAP", "0"]
    proc = paper_sh(*fast, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tree = tmp_path / "out/paper/paper"
    runs = {p.parent.relative_to(tree).as_posix(): json.loads(p.read_text()) for p in tree.rglob("results.json")}
    assert sorted(runs) == ["base2new/dtd/shots_16/ZeroshotCLIP/vit_b16/seed1",
                            "base2new/eurosat/shots_16/ZeroshotCLIP/vit_b16/seed1",
                            "gzsl/cub/shots_16/SHIP_CoOp/vit_b16/seed1",
                            "xd/eurosat/SHIP_CoOp/vit_b16_16shots/seed1",
                            "xd/evaluation/SHIP_CoOp/vit_b16_16shots/dtd/seed1"]
    assert {k: r["selection"] for k, r in runs.items() if "SHIP_CoOp" in k} == \
        {k: TEST_SELECTED for k in runs if "SHIP_CoOp" in k}  # GZSL and cross-dataset: chosen as the official code
    assert all(r["selection"] == "honest" for k, r in runs.items() if "ZeroshotCLIP" in k)  # nothing to choose
    table = (tree / "summary/table.md").read_text()
    assert "| base2new | average | ZeroshotCLIP | core | vit_b16 | 16 | 1 |" in table and "/ 71.70 /" in table  # published
    assert "| gzsl | CUB | SHIP_CoOp [selection: test] | core | vit_b16 | 16 | 1 |" in table
    assert "| SHIP_CoOp [selection: test] | core | vit_b16_16shots | 1 |" in table  # cross-dataset
    # Resumable: every run is skipped; a results.json cut short is not a finished run.
    again = paper_sh("--dry-run", *fast, env=env)
    assert again.stdout.count("# finished: ") == 5
    broken = tree / "gzsl/cub/shots_16/SHIP_CoOp/vit_b16/seed1/results.json"
    broken.write_text(broken.read_text()[:40])
    again = paper_sh("--dry-run", *fast, env=env)
    line = next(x for x in again.stdout.splitlines() if f"--output-dir {broken.parent} " in x)
    assert again.stdout.count("# finished: ") == 4 and line.startswith("python3 -m trainers.ship")


# ---------------------------------------------------------------- the grid at cluster scale
SMALL_GRID = {"DOWNLOAD": "0", "SHOTS": "2", "DATASETS": "eurosat", "SEEDS": "1 2", "TRAINERS": "CoOp SHIP_CLIPAdapter",
              "XD_TRAINERS": "CoOp", "GZSL_TRAINERS": "CoOp", "SOURCE": "eurosat", "TARGETS": "dtd"}
# 4 base-to-new runs, 2 xd tasks (training + dtd), 2 GZSL runs. Distinct feature sets: EuroSAT's test split; its base
# classes' crops per seed at CoOp's scale (0.08, 1) and at the generator's (0.5, 1: SHIP_CLIPAdapter's generator);
# all its classes' crops per seed (xd training, CoOp); DTD's test split; CUB's test split and seen crops per seed
DISTINCT_SETS = 1 + 2 * 2 + 2 + 1 + 1 + 2


def grid_fast(tmp_path: Path, clip: Path) -> list[str]:
    return ["--weights", str(clip), "--cache-dir", str(tmp_path / "cache"), "TRAINER.SHIP.GEN_EPOCHS", "2",
            "TRAINER.COOP.EPOCHS", "2", "TRAINER.CLIPADAPTER.EPOCHS", "2", "TRAINER.SHIP.AUG_PASSES", "1",
            "DATALOADER.NUM_WORKERS", "0", "TRAINER.SHIP.FEATURE_MAP", "0"]


def test_slurm_writes_a_feature_phase_then_the_runs_that_encode_nothing(tmp_path, tiny_clip_path):
    env = {**SMALL_GRID, "DATA": str(small_grid_data(tmp_path / "DATA")), "OUTPUT": str(tmp_path / "out")}
    fast = grid_fast(tmp_path, tiny_clip_path)
    tree = tmp_path / "out/paper/honest"
    listed = paper_sh("--slurm", "--dry-run", *fast, env=env)  # both phases listed, nothing written
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == f"# feature phase: {DISTINCT_SETS} tasks, one per distinct feature set"
    assert lines[DISTINCT_SETS + 1] == "# runs: 8 tasks, after every feature task (--dependency=afterok)"
    assert all("--features-only --feature-set " in line for line in lines[1:DISTINCT_SETS + 1])
    assert not tree.exists()

    proc = paper_sh("--slurm", *fast, env=env)
    assert proc.returncode == 0, proc.stderr
    submit = Path(proc.stdout.strip())
    assert submit == tree / "submit_slurm.sh"
    text = submit.read_text().splitlines()
    assert text[-2] == f"features=$(sbatch --parsable {tree / 'slurm_features.sh'})"
    assert text[-1] == f"sbatch --dependency=afterok:${{features%%;*}} {tree / 'slurm_paper.sh'}"
    features, runs = (tree / "slurm_features.sh").read_text(), (tree / "slurm_paper.sh").read_text()
    assert f"#SBATCH --array=0-{DISTINCT_SETS - 1}" in features and "--feature-task" in features
    assert "#SBATCH --array=0-7" in runs and "--task" in runs
    plan = [line.split("\t") for line in (tree / "feature_plan.tsv").read_text().splitlines()]
    assert len({key for key, _, _ in plan}) == len(plan) == DISTINCT_SETS  # one task per distinct key

    def task(script: str, i: int) -> subprocess.CompletedProcess:  # what Slurm runs: the script, with the task's id
        return subprocess.run(["bash", str(tree / script)], cwd=tmp_path, capture_output=True, text=True,
                              env={**os.environ, "SLURM_ARRAY_TASK_ID": str(i)}, timeout=300)

    for i in range(DISTINCT_SETS):  # each feature task encodes its one set
        done = task("slurm_features.sh", i)
        assert done.returncode == 0 and done.stdout.count(" passes saved to ") == 1, done.stdout + done.stderr
    assert len(list((tmp_path / "cache").glob("*.pt"))) == DISTINCT_SETS
    for i in (0, 4):  # a base-to-new run (CoOp, seed 1) and the xd task (training, then DTD): every set from the cache
        done = task("slurm_paper.sh", i)
        assert done.returncode == 0, done.stderr[-3000:]
        assert " passes saved to " not in done.stdout and done.stdout.count(" passes from ") >= 2, done.stdout[-3000:]


def test_slurm_with_a_recipe_missing_from_the_checkout_is_one_error_line(tmp_path):
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "scripts", checkout / "scripts")
    shutil.copytree(ROOT / "configs", checkout / "configs")
    (checkout / "configs/trainers/SHIP/vit_b16_ctxv1.yaml").unlink()  # CoOp's recipe
    proc = subprocess.run(["bash", str(checkout / "scripts/ship/paper.sh"), "--slurm"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **SMALL_GRID, "OUTPUT": str(tmp_path / "out")})
    assert proc.returncode == 2 and proc.stderr == (
        "error: configs/trainers/SHIP/vit_b16_ctxv1.yaml not found (a recipe of this grid: see paper.sh --help)\n")
    assert not (tmp_path / "out").exists()


def test_jobs_runs_the_grid_on_workers_encoding_each_set_once_and_resumes(tmp_path, tiny_clip_path):
    env = {**SMALL_GRID, "DATA": str(small_grid_data(tmp_path / "DATA")), "OUTPUT": str(tmp_path / "out")}
    fast = grid_fast(tmp_path, tiny_clip_path)
    tree = tmp_path / "out/paper/honest"
    proc = paper_sh("--jobs", "2", *fast, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("worker 0: tasks 0, 2, ... of 8 on ")
    logs = [(tree / f"jobs/worker{w}.log").read_text() for w in (0, 1)]
    assert [log.count("== task ") for log in logs] == [4, 4]
    assert sum(log.count(" passes saved to ") for log in logs) == DISTINCT_SETS  # each set encoded once
    assert len(list((tmp_path / "cache").glob("*.pt"))) == DISTINCT_SETS
    assert len(list(tree.rglob("results.json"))) == 10 and (tree / "summary/table.md").is_file()
    again = paper_sh("--jobs", "2", *fast, env=env, timeout=300)  # resumable: every finished run is skipped
    assert again.returncode == 0, again.stderr[-3000:]
    logs = [(tree / f"jobs/worker{w}.log").read_text() for w in (0, 1)]
    assert sum(log.count("(skip this job)") for log in logs) == 10 and all(log.count("== paper.sh --jobs") == 2 for log in logs)


def test_jobs_reports_a_failed_worker_with_one_error_line(tmp_path):
    env = {**SMALL_GRID, "DATA": str(small_grid_data(tmp_path / "DATA")), "OUTPUT": str(tmp_path / "out")}
    proc = paper_sh("--jobs", "2", "TRAINER.COOP.EPOCHS", "0", env=env, timeout=300)  # every run stops at the settings check
    tree = tmp_path / "out/paper/honest"
    assert proc.returncode == 1 and proc.stderr == (
        f"error: worker(s) 0 1 stopped at a failed run (see {tree}/jobs/worker<w>.log); the other workers' runs "
        "are finished; rerun paper.sh to resume\n")
    assert "TRAINER.COOP.EPOCHS 0 is not allowed" in (tree / "jobs/worker0.log").read_text()
    for bad in (["--jobs", "0"], ["--jobs", "2", "--dry-run"]):
        refused = paper_sh(*bad, env=env)
        assert refused.returncode == 2 and refused.stderr.startswith("error: --jobs ") and refused.stderr.count("\n") == 1
