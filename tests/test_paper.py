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
def paper_sh(*args, env=None, timeout=60):
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
    slurm = paper_sh("--slurm", env={"OUTPUT": str(tmp_path), "DATASETS": "eurosat dtd", "SEEDS": "1", "TRAINERS": "CoOp"})
    if slurm.returncode == 0:  # the Slurm array: a task per base-to-new and GZSL run, one per xd training + its targets
        job = Path(slurm.stdout.strip()).read_text()
        assert "#SBATCH --array=0-3" in job and "--task" in job
    else:  # a recipe this checkout lacks is one error line
        assert slurm.stderr.startswith("error: configs/trainers/SHIP/") and slurm.stderr.count("\n") == 1


def test_paper_script_runs_each_protocol_then_the_tables(tmp_path, tiny_clip_path):
    data = tmp_path / "DATA"
    split_json_dataset(data, "eurosat", "2750", "split_zhou_EuroSAT.json", ["Forest", "River", "Highway", "Pasture"], (3, 1, 2))
    split_json_dataset(data, "dtd", "images", "split_zhou_DescribableTextures.json", ["banded", "dotted", "woven", "lined"],
                       (3, 1, 2))
    cub = data / "cub"
    seen, unseen = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"], ["004.Groove_billed_Ani"]
    write_image_folder(cub / "CUB_200_2011" / "images", seen + unseen, per_class=4)
    (cub / "trainvalclasses.txt").write_text("\n".join(seen) + "\n")
    (cub / "testclasses.txt").write_text("\n".join(unseen) + "\n")
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
