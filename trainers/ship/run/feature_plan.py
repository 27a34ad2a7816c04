"""The feature phase of a grid: every distinct feature set its runs read, each extracted by one task, before any run.

    python -m trainers.ship.run.feature_plan < COMMANDS

``COMMANDS``: one run's command line per line (``python3 -m trainers.ship ...``, as ``paper.sh`` writes them). For
each feature set these runs read (each dataset's test split, each seed's training crops at each crop scale, the
search images), in order of first use, prints one line ``KEY<TAB>WHAT<TAB>COMMAND``: its plan key
(:meth:`FeatureRequest.plan_key`), what it is, and the first run's command with ``--features-only --feature-set
KEY``, which extracts that set into ``CACHE_DIR`` and nothing else. No CLIP is loaded and no image decoded: the
plan reads the datasets' split files and few-shot draws (it writes the draws a run would write).
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
from dataclasses import dataclass

from yacs.config import CfgNode

from trainers.ship.common.errors import ShipError, report_errors
from trainers.ship.common.runtime import resolve_device, setup_logger
from trainers.ship.config import check_settings
from trainers.ship.data.readers import DatasetSplits
from trainers.ship.methods import resolve
from trainers.ship.model.clip_loader import load_clip
from trainers.ship.run.command_line import cfg_from_args, parse_args
from trainers.ship.run.protocol_data import FeatureRequest, extract_requested, feature_requests, load_fewshot_dataset

logger = logging.getLogger("ship")
PROGRAM = "-m trainers.ship"  # what precedes a run's arguments in its command line


def run_feature_requests(cfg: CfgNode, eval_only: bool) -> tuple[DatasetSplits, list[FeatureRequest]]:
    """The dataset of the run ``cfg`` and the feature sets it reads: its training crops unless it only evaluates,
    its method's search images, its test images; every class is a base class in a cross-dataset run."""
    method_class, _ = resolve(cfg.TRAINER.NAME)
    check_settings(cfg)
    dataset = load_fewshot_dataset(cfg)
    return dataset, feature_requests(cfg, dataset, with_train=not eval_only, with_val=method_class.uses_val,
                                     all_base=bool(cfg.DATASET.LABEL_ONLY_FROM))


def extract_only(cfg: CfgNode, eval_only: bool, plan_key: str | None = None) -> None:
    """Every feature set of the run ``cfg`` (or only the one of ``plan_key``) into ``CACHE_DIR``; nothing else runs."""
    setup_logger(None)  # the console only: a feature task writes no run folder
    dataset, requests = run_feature_requests(cfg, eval_only)
    if plan_key is not None:
        keys = [r.plan_key(cfg, dataset.name) for r in requests]
        if plan_key not in keys:
            raise ShipError(f"--feature-set {plan_key} is not a feature set of this run; its sets: "
                            + ", ".join(f"{k} ({r.role})" for k, r in zip(keys, requests)))
        requests = [requests[keys.index(plan_key)]]
    device = resolve_device(cfg.DEVICE)
    clip_model = load_clip(cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.WEIGHTS or None, device,
                           cfg.MODEL.BACKBONE.DOWNLOAD_ROOT, cfg.PRECISION)
    extract_requested(cfg, dataset, clip_model, device, requests)
    logger.info(f"features only: {len(requests)} feature set(s) of {dataset.name} in {cfg.CACHE_DIR}")


@dataclass
class PlannedSet:
    key: str
    what: str
    command: str


def plan(commands: list[str]) -> list[PlannedSet]:
    """One :class:`PlannedSet` per distinct feature set the runs of ``commands`` read, in order of first use."""
    planned: dict[str, PlannedSet] = {}
    for command in commands:
        words = shlex.split(command)
        at = next((i for i in range(len(words) - 1) if " ".join(words[i:i + 2]) == PROGRAM), None)
        if at is None:
            raise ShipError(f"not a run's command line (python -m trainers.ship ...): {command[:200]}")
        args = parse_args(words[at + 2:])
        cfg = cfg_from_args(args)
        dataset, requests = run_feature_requests(cfg, args.eval_only)
        for request in requests:
            key = request.plan_key(cfg, dataset.name)
            if key not in planned:
                o = request.options
                what = f"{dataset.name} {request.options['split']}: {len(request.items)} images" + (
                    f", seed {o['seed']}, {o['passes']} passes cropped at {tuple(o['aug_scale'])}" if o.get("augment") else "")
                head = " ".join(shlex.quote(w) for w in words[:at + 2])
                rest = " ".join(shlex.quote(w) for w in words[at + 2:])
                planned[key] = PlannedSet(key, what, f"{head} --features-only --feature-set {key} {rest}")
    return list(planned.values())


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m trainers.ship.run.feature_plan", description=__doc__.split("\n")[0],
                            epilog="Reads the runs' command lines on stdin.").parse_args(argv)

    def run() -> None:
        setup_logger(None, sys.stderr).setLevel(logging.WARNING)  # each run logs what its readers read; stdout: the plan
        commands = [line for line in sys.stdin.read().splitlines() if line.strip()]
        planned = plan(commands)
        for one in planned:
            print(f"{one.key}\t{one.what}\t{one.command}")
        print(f"feature plan: {len(planned)} distinct feature sets for {len(commands)} runs", file=sys.stderr)

    return report_errors(run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
