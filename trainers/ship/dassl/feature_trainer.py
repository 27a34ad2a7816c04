"""The part the Dassl trainers share: CLIP, the class split, the feature cache, testing on cached features.

Imported only where dassl is installed; works with CoOp's dataset readers as with this project's. Subclasses
build their method (``self.method``, a core method of ``methods``) in ``build_model`` (after
``setup_clip_and_features``) and score features over any classes in ``score``; ``load_model`` loads a finished
run into the method.
"""
from __future__ import annotations

import sys
from operator import attrgetter
from pathlib import Path

import torch
import yaml
from dassl.config import get_cfg_default
from dassl.data.datasets import DATASET_REGISTRY
from dassl.engine import TrainerX

from trainers.ship.common.errors import ShipError
from trainers.ship.common.known_datasets import ALIASES, templates_for
from trainers.ship.common.locks import RunLock
from trainers.ship.common.runtime import atomic_write_json, seed_everything, stage_seed
from trainers.ship.common.scalars import report_test, use_writer
from trainers.ship.config import check_settings
from trainers.ship.dassl.classes import dassl_class_split
from trainers.ship.dassl.config import DASSL_NOTES, check_coop_keys, check_selection
from trainers.ship.dassl.run_guard import route_ship_log, take_back_unfinished, this_run
from trainers.ship.data.classes import Classes, log_duplicate_names, read_source_dataset
from trainers.ship.data.features import FeatureCache, FeatureSet
from trainers.ship.data.readers import val_from_train
from trainers.ship.data.search_val import search_val
from trainers.ship.methods import FitInputs
from trainers.ship.model.clip_loader import load_clip
from trainers.ship.model.text_encoder import TextEncoder
from trainers.ship.reports.metrics import gzsl_report
from trainers.ship.reports.quality import write_synthesis_report
from trainers.ship.run.protocol_data import crop_scales
from trainers.ship.run.setup import check_eval_folder, check_run_folder, check_setup, training_setup, write_setup
from trainers.ship.training.schedules import epoch_steps
from trainers.ship.training.stages import checkpoint_file, load_finished, synthetic_stream


def _with(cfg, **keys):
    """A copy of a frozen Dassl config with ``DATASET`` keys replaced."""
    cfg = cfg.clone()
    cfg.defrost()
    for key, value in keys.items():
        cfg.DATASET[key] = value
    cfg.freeze()
    return cfg


class FeatureTrainerX(TrainerX):
    """A Dassl TrainerX whose images are encoded once by the core's feature cache."""

    def __init__(self, cfg):
        route_ship_log()
        out = Path(cfg.OUTPUT_DIR)
        this_run.update(dir=out, movable=take_back_unfinished(out))
        for line in DASSL_NOTES:  # e.g. which dataset readers SHIP registered beside the checkout's
            print(line)
        check_coop_keys(cfg, get_cfg_default().OPTIM.MAX_EPOCH)
        check_settings(cfg, dassl=True)  # every SHIP and method setting against its declared range
        check_selection(cfg)  # TEST.SELECTION paper: the core's protocol, one line here
        self.run_lock = RunLock(cfg.OUTPUT_DIR)  # a second run into this folder stops here, with one line
        self.training_run = False  # True from before_train: --eval-only never gets there
        super().__init__(cfg)

    def build_data_loader(self):
        """GZSL (``SUBSAMPLE_CLASSES gzsl``): Dassl builds the dataset over every class; training keeps the seen ones."""
        if self.cfg.DATASET.SUBSAMPLE_CLASSES != "gzsl":  # its value checked by check_settings in __init__
            return super().build_data_loader()
        cfg = self.cfg
        self.cfg = _with(cfg, SUBSAMPLE_CLASSES="all")
        try:
            super().build_data_loader()
        finally:
            self.cfg = cfg

    def setup_clip_and_features(self) -> None:
        cfg = self.cfg
        self.clip = load_clip(cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.WEIGHTS or None, self.device,
                              cfg.MODEL.BACKBONE.DOWNLOAD_ROOT, cfg.PRECISION)
        print(f"Loaded CLIP {self.clip.name} on {self.device}, precision {self.clip.precision} (PRECISION {cfg.PRECISION})")
        self.text_encoder = TextEncoder(self.clip.model, self.clip.precision)
        self.cache = FeatureCache(cfg.CACHE_DIR)
        self._feature_sets: dict[tuple, FeatureSet] = {}
        dataset = self.dm.dataset
        log_duplicate_names(cfg.DATASET.NAME, dataset.classnames)
        self.split = dassl_class_split(cfg, dataset.classnames, self._build_all, getattr(dataset, "num_base", 0))
        self.templates = list(cfg.DATASET.TEMPLATES) or getattr(dataset, "templates", None) or templates_for(cfg.DATASET.NAME)
        n_base = len(self.split.base.names)
        self.train_items = [d for d in dataset.train_x if d.label < n_base]  # GZSL: the seen classes' images
        self.train_features = None  # extracted in before_train: an --eval-only run reads no training images
        self.setup = training_setup(cfg, self.clip, cfg.DATASET.NAME,
                                    "all" if cfg.DATASET.SUBSAMPLE_CLASSES == "all" else "base", self.split.dataset_classes,
                                    backend="dassl")
        self.trained_setup: dict = {}  # --eval-only: the setup of the run it evaluates (load_model)

    def _build_all(self, name: str) -> tuple[str, list[str]]:
        """The registry name and class names of dataset ``name`` (a registry name, or a CoOp dataset-config name
        such as ``dtd`` read from ``configs/datasets/<name>.yaml``) over all its classes."""
        registered = DATASET_REGISTRY.registered_names()
        if name not in registered and ALIASES.get(name) in registered:
            name = ALIASES[name]
        if name not in registered:
            # CoOp's layout: configs/datasets beside train.py (the working directory of CoOp's scripts)
            configs = [folder / "configs" / "datasets" / f"{name}.yaml" for folder in (Path.cwd(), Path(sys.argv[0]).resolve().parent)]
            config = next((c for c in configs if c.is_file()), None)
            resolved = (yaml.safe_load(config.read_text()) or {}).get("DATASET", {}).get("NAME") if config else None
            if resolved not in registered:
                raise ShipError(f"unknown dataset {name!r} in DATASET.LABEL_ONLY_FROM; expected a registered dataset "
                                f"({', '.join(sorted(registered))}), a name with configs/datasets/<name>.yaml, or a .txt file")
            name = resolved
        shots = self.cfg.DATASET.NUM_SHOTS if name == self.cfg.DATASET.NAME else 0  # no few-shot files for a target
        reader = DATASET_REGISTRY.get(name)

        def read():
            return reader(_with(self.cfg, NAME=name, SUBSAMPLE_CLASSES="all", NUM_SHOTS=shots))

        if name != self.cfg.DATASET.NAME:  # a label-only source: Dassl's reader writes split_fewshot/ before it reads
            folder = getattr(reader, "dataset_dir", None)
            return name, list(read_source_dataset(name, self.cfg.DATASET.ROOT, folder if isinstance(folder, str) else None,
                                                  read).classnames)
        return name, list(read().classnames)

    def before_train(self):
        check_run_folder(Path(self.output_dir), self.setup)  # another setup's run in this folder: one line, never resumed
        self.training_run = True
        super().before_train()
        if self.cfg.DATASET.SUBSAMPLE_CLASSES == "new":
            raise ShipError("DATASET.SUBSAMPLE_CLASSES new is for evaluation (--eval-only --model-dir RUN): training "
                            "in base-to-new uses base; to train on every class, use all")
        if self.cfg.TRAINER.SHIP.SYNTHESIZE and not self.split.label_only:
            raise ShipError(f"{self.cfg.DATASET.NAME} with SUBSAMPLE_CLASSES {self.cfg.DATASET.SUBSAMPLE_CLASSES} leaves "
                            f"no label-only classes to synthesise; train on base (base-to-new), gzsl, or set "
                            f"DATASET.LABEL_ONLY_FROM (cross-dataset), or set TRAINER.SHIP.SYNTHESIZE False")
        head_scale, generator_scale = crop_scales(self.cfg)  # as the core: the method at its CROP_SCALE
        self.train_features = self.features(self.train_items, "train", augment=True, scale=head_scale)
        self.generator_features = self.train_features
        if generator_scale is not None:
            print(f"{self.cfg.TRAINER.NAME}: the generator trains on features cropped at scale {generator_scale} "
                  f"(TRAINER.SHIP.AUG_SCALE), the method on features cropped at {head_scale} (its CROP_SCALE)")
            self.generator_features = self.features(self.train_items, "train", augment=True, scale=generator_scale)

    def init_writer(self, log_dir):
        """Dassl's writer at OUTPUT_DIR/tensorboard, handed to the core's loops (``scalars``) for the run."""
        super().init_writer(log_dir)
        use_writer(self._writer)

    def close_writer(self):
        use_writer(None)
        super().close_writer()
        self._writer = None

    def search_val(self) -> FeatureSet:
        """The features of the images a method searches its settings on (Tip-Adapter's α, β), chosen as the core
        chooses them (``data.search_val``): the whole val split of the base classes, read with NUM_SHOTS 0, not
        Dassl's few-shot val; for a reader whose val split is its test set (CoOp's ImageNet), the validation images
        the core draws from the training images the few-shot set left out, never Dassl's ``val``."""
        cfg, n_base = self.cfg, len(self.split.base.names)
        reader = DATASET_REGISTRY.get(cfg.DATASET.NAME)
        full = reader(_with(cfg, SUBSAMPLE_CLASSES="all", NUM_SHOTS=0))

        def drawn():  # the core's draw runs over every class: the few-shot set of every class is left out
            few_shot = (self.dm.dataset.train_x if cfg.DATASET.SUBSAMPLE_CLASSES in ("all", "gzsl")
                        else reader(_with(cfg, SUBSAMPLE_CLASSES="all")).train_x)
            return val_from_train(full.train_x, few_shot, cfg.DATASET.NUM_SHOTS, cfg.SEED, attrgetter("impath"))

        chosen = search_val(cfg.DATASET.NAME, cfg.TRAINER.NAME, n_base, full.val or [], self.dm.dataset.test, drawn,
                            attrgetter("impath"), attrgetter("label"))
        return self.features(chosen.items, "val") if chosen.drawn else self.features(chosen.items, "val", few_shot=False)

    def seeded_method(self, method_class, val: FeatureSet | None = None):
        """As the core builds a head (``run.heads``): SHIP's synthetic features when TRAINER.SHIP.SYNTHESIZE (the
        generator stage runs only when training), then ``method_class`` built under the trainer's stage seed, and the
        inputs it is fitted on (``val``: its search images)."""
        cfg = self.cfg
        synthetic = self.synthesise() if cfg.TRAINER.SHIP.SYNTHESIZE else None
        seed_everything(stage_seed(cfg.SEED, type(self).__name__))
        method = method_class(cfg, self.text_encoder, self.templates)
        inputs = FitInputs(self.train_features, self.split.base.names, self.split.label_only, synthetic, val,
                           cfg.DATASET.NAME, cfg.DATASET.NUM_SHOTS, dict(self.split.class_index))
        return method, inputs

    def synthesise(self):
        """The SHIP generator stage (trained, or loaded from OUTPUT_DIR) on the base features, its stream of
        synthetic features of the label-only classes, and ``synthesis.json``."""
        stream = synthetic_stream(self.cfg, self.text_encoder, self.clip, self.generator_features, self.split.base.names,
                                  self.split.label_only, Path(self.output_dir))
        write_synthesis_report(Path(self.output_dir), stream.generator, self.split.label_only, self.text_encoder,
                               self.templates)
        if self.cfg.TRAINER.SHIP.FEATURE_MAP:  # as the core's, with the base panel only (no new-class test images here)
            from trainers.ship.reports.feature_map import draw_feature_map  # matplotlib only when a map is drawn

            path = draw_feature_map(self.cfg.TRAINER.SHIP.FEATURE_MAP, stream.generator, Path(self.output_dir),
                                    self.cfg.DATASET.NAME, self.split.base.names, self.train_features)
            print(f"Map of real and synthetic features: {path}")
        return stream

    def steps_per_epoch(self, batch_size: int, drop_last: bool = False) -> int:
        """The batches of one training epoch, as the core counts them (``training.epoch_steps``)."""
        return epoch_steps(len(self.train_items), batch_size, drop_last)

    def features(self, datums, split: str, augment: bool = False, scale: tuple[float, float] | None = None,
                 few_shot: bool | None = None) -> FeatureSet:
        """The cached features of a split's images, read from disk once per run (best_val tests val every epoch);
        ``scale``: the crop scale of augmented views (default TRAINER.SHIP.AUG_SCALE); ``few_shot``: a set drawn
        for this run's shots and seed (default: augmented sets and Dassl's val)."""
        cfg = self.cfg
        scale = tuple(scale or cfg.TRAINER.SHIP.AUG_SCALE)
        few_shot = augment or split == "val" if few_shot is None else few_shot
        key = (split, augment, scale, few_shot)
        if key in self._feature_sets:
            return self._feature_sets[key]
        self._feature_sets[key] = self.cache.get_or_extract(
            self.clip, [d.impath for d in datums], [d.label for d in datums], self.device,
            dataset=cfg.DATASET.NAME, split=split,
            shots=cfg.DATASET.NUM_SHOTS if few_shot else None, seed=cfg.SEED,
            passes=cfg.TRAINER.SHIP.AUG_PASSES, augment=augment, aug_scale=scale,
            batch_size=cfg.DATALOADER.TEST.BATCH_SIZE, num_workers=cfg.DATALOADER.NUM_WORKERS, root=cfg.DATASET.ROOT,
        )
        return self._feature_sets[key]

    @torch.no_grad()
    def score(self, features: torch.Tensor, classes: Classes) -> torch.Tensor:
        """Logits of normalised image features over ``classes``, by the method's scorer (as the core scores)."""
        return self.method.scorer(classes)(features)

    def load_model(self, directory, epoch=None):
        """Load the head of the run in ``directory`` after checking its setup (``setup.json``): the checkpoint of
        ``epoch``, else Dassl's best-on-val model when TEST.FINAL_MODEL best_val kept one, else the last epoch's."""
        if not self.training_run:  # --eval-only: into a folder of its own (best_val reloads this run's own model)
            check_eval_folder(Path(self.cfg.OUTPUT_DIR), Path(directory))
        self.trained_setup = check_setup(Path(directory), self.setup, self.cfg.ALLOW_SETUP_MISMATCH)
        path = checkpoint_file(Path(directory) / self.stage, epoch)
        load_finished(self.method, path, type(self).__name__)  # weights only, as the core; one log line

    def after_train(self):
        """Training finished: ``setup.json`` (what evaluations check, and what a rerun into this folder must match),
        then Dassl's test, which writes ``results.json`` (:meth:`write_results`: what marks the run finished)."""
        write_setup(Path(self.output_dir), self.setup)
        super().after_train()

    @torch.no_grad()
    def test(self, split=None):
        """Score cached features with Dassl's evaluator (``* accuracy`` lines). The val split (best_val selection)
        has the base classes only; a GZSL test adds the seen / unseen / H lines of one joint label space."""
        use_val = (split or self.cfg.TEST.SPLIT) == "val" and bool(self.dm.dataset.val)
        name = "val" if use_val else "test"
        print(f"Evaluate on the *{name}* set")
        n_base = len(self.split.base.names)
        if use_val:
            datums, classes = [d for d in self.dm.dataset.val if d.label < n_base], self.split.base
        else:
            datums, classes = self.dm.dataset.test, self.split.evaluated
        features = self.features(datums, name)
        self.set_model_mode("eval")
        self.evaluator.reset()
        logits = self.score(features.features[0].to(self.device), classes)
        self.evaluator.process(logits, features.labels.to(self.device))
        accuracy = list(self.evaluator.evaluate().values())[0]
        if self.split.gzsl and not use_val:
            report = gzsl_report(logits.argmax(-1).cpu(), features.labels, n_base, len(classes.names))
            print(f"GZSL: {n_base} seen + {len(classes.names) - n_base} unseen classes in one label space")
            for key in ("seen", "unseen", "hm"):
                print(f"* {key}: {report[key]:.2f}%")
        if not use_val:
            values = ({k: report[k] for k in ("seen", "unseen", "hm")} if self.split.gzsl
                      else {self.evaluated_split(): accuracy})
            self.write_test_scalars(values)
            self.write_results(values)
        return accuracy

    def write_results(self, accuracy: dict) -> None:
        """``results.json`` after the final test on the test split, atomically, as the core writes it (with
        ``"backend": "dassl"``): the last file of a finished run (``reports.finished``), what the summary tables."""
        cfg = self.cfg
        trained_on = self.trained_setup.get("dataset", cfg.DATASET.NAME)
        protocol = ("gzsl" if self.split.gzsl else "xd" if cfg.DATASET.LABEL_ONLY_FROM or trained_on != cfg.DATASET.NAME
                    else "base2new")
        results = {"protocol": protocol, "trainer": cfg.TRAINER.NAME, "dataset": cfg.DATASET.NAME,
                   "backbone": self.clip.name, "shots": cfg.DATASET.NUM_SHOTS, "seed": cfg.SEED,
                   "precision": self.clip.precision, **accuracy, "selection": "honest", "backend": "dassl"}
        if protocol == "xd":
            results.update(source=trained_on, label_only_from=list(cfg.DATASET.LABEL_ONLY_FROM))
        atomic_write_json(results, Path(self.output_dir) / "results.json")

    def evaluated_split(self) -> str:
        """What a test scores, by DATASET.SUBSAMPLE_CLASSES: ``base``, ``new`` or ``accuracy`` (all classes)."""
        return {"base": "base", "new": "new"}.get(self.cfg.DATASET.SUBSAMPLE_CLASSES, "accuracy")

    def write_test_scalars(self, accuracy: dict) -> None:
        """``test/<split>`` (GZSL: ``test/seen``, ``test/unseen``, ``test/H``) into OUTPUT_DIR/tensorboard; an
        ``--eval-only`` run (no training, so no writer of Dassl's) opens Dassl's writer for them."""
        opened = self._writer is None
        if opened:
            self.init_writer(str(Path(self.output_dir) / "tensorboard"))
        report_test(accuracy)
        if opened:
            self.close_writer()
