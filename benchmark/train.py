"""The training loop: parameter groups, warm-up + cosine, AMP, DDP, checkpoints, exact resume.

One call of :func:`run_training` trains one (model, dataset, seed), selects a checkpoint on the
validation split (never on test), evaluates it on test and writes the run folder
(:mod:`benchmark.results`).

Exact resume: a checkpoint is written atomically at the end of every epoch with the model,
optimiser, scheduler, grad scaler, RNG states (python, numpy, torch, CUDA), epoch, best score and
history. On top of that every epoch re-seeds torch from (seed, epoch) and draws its sample order
and augmentations from (seed, epoch, index) (:mod:`benchmark.data`), so an epoch's random numbers
do not depend on how the process got there. A run stopped after epoch k and resumed therefore
reaches the same final metrics as an uninterrupted one, exactly (tested on the CPU).

Model selection: with a ``val`` split, the checkpoint of the epoch with the best val
``select_metric`` (default R@1; ties keep the earlier epoch) is ``best.pt``; without one
(ICFG-PEDES) the last epoch is used, as IRRA's schedule runs to its end anyway. ``metrics.json``
records the rule, the split and the epoch. ``select_on="test"`` selects on test instead, as the
published releases do (:mod:`benchmark.protocol`); it is recorded and marked in every table.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmark import dist, results
from benchmark.checkpoints import (
    load_checkpoint,
    load_model_weights,
    require_keys,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from benchmark.data import Augment, TrainPairs, eval_set, per_process_batch, train_loader
from benchmark.evaluate import autocast, evaluate
from benchmark.optim import (  # noqa: F401  (build_optimizer, lr_lambda: public here too)
    OPTIMIZER_RULES,
    SCHEDULE_UNITS,
    build_optimizer,
    lr_lambda,
)
from benchmark.parsing import ParsingMaps, resolve_parsing_dir
from benchmark.protocol import ICFG_SPLITS, apply_icfg_split, selection_record
from benchmark.samplers import PERSON_CAPTIONS, SAMPLERS
from ogor.datasets import base_format_name, read_dataset
from toreid.errors import ToreidError
from toreid.io import atomic_write_json, read_json, stable_seed

OPTIMIZERS = ("adam", "adamw", "sgd")
SELECT_ON = ("val", "test")
#: What ``last.pt`` holds (all of it plain data: see ``benchmark.checkpoints``).
_LAST_KEYS = ("model", "optimizer", "scheduler", "scaler", "rng", "epoch", "best_score",
              "best_epoch", "history")
AMP_MODES = ("off", "bf16", "fp16")
SELECT_METRICS = ("R@1", "Rsum", "mAP")


@dataclass
class TrainConfig:
    """Every knob of a training run (``config.json`` stores the resolved values).

    Attributes:
        epochs: training epochs.
        batch_size: the global batch: samples per step over all processes (the paper's
            number); each of W processes takes batch_size / W, and the models that declare
            ``batch_gathers`` compute their batch losses over the whole global batch.
        lr: learning rate of the encoder group.
        lr_new_mult: multiplier for the ``new`` group (MGCC: x10, 1e-5 -> 1e-4; IRRA: x5).
        bias_lr_mult: multiplier for biases (IRRA: x2).
        weight_decay: weight decay of weights.
        bias_weight_decay: weight decay of biases and norms (IRRA: 0); ``None`` = weight_decay.
        optimizer: ``adam``, ``adamw`` or ``sgd`` (with ``momentum``, Nesterov; Dual-Path).
        momentum: SGD momentum (ignored by Adam).
        adam_eps: Adam epsilon (IRRA: 1e-3).
        warmup_epochs: linear warm-up from ``warmup_factor * lr`` (IRRA: 5 epochs, 0.1).
        warmup_factor: the warm-up's starting fraction of the lr.
        lr_milestones: epochs after which the lr is multiplied by ``lr_gamma`` (a step schedule
            instead of the cosine; Dual-Path); empty: cosine.
        lr_gamma: the step schedule's factor.
        grad_clip: max global grad norm; ``None`` disables clipping.
        amp: ``off``, ``bf16`` or ``fp16`` (CUDA only; fp16 uses a GradScaler).
        seed: the run's seed (model init, order, augmentation).
        eval_every: evaluate on val every N epochs (and always after the last one).
        select_metric: the val metric that picks ``best.pt``.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        workers: DataLoader worker processes.
        eval_batch_size: images per encoding batch at evaluation.
        query_chunk: queries per similarity block at evaluation (bounds memory).
        hflip, pad_crop, random_erasing: the augmentation (see :class:`benchmark.data.Augment`).
        i2t: also report image-to-text metrics on test.
        compile_similarity: ``torch.compile`` the model's pair similarity for evaluation on
            CUDA (3x faster MGCC evaluation on an H100; ignored on the CPU).
        optimizer_rules: ``groups`` (the model's encoder/new groups, biases = 1-d tensors) or
            ``irra`` (IRRA's name rules, :mod:`benchmark.optim`).
        schedule_unit: ``step`` (warm-up and cosine per step) or ``epoch`` (the lr changes once
            per epoch, as IRRA's scheduler: epoch e of E uses the factor of ``e - 1``).
        select_on: ``val`` (default: never test) or ``test`` (the published protocol of the
            MGCC, IRRA, RDE and TBPS-CLIP releases; recorded and marked in every table).
        icfg_split: ``irra`` (all 19,848 ICFG-PEDES test images are test) or ``mgcc-code``
            (the MGCC release: the first 10,000 test entries are test, the rest val).
        sampler: ``random`` (a shuffled order) or ``identity`` (every batch P persons x
            ``ims_per_id`` samples, :class:`benchmark.samplers.IdentityBatchSampler`; ViTAA).
        ims_per_id: K, samples per person in an identity-balanced batch (ViTAA: 4).
        person_caption: ``own`` (each image with its own caption) or ``same-person`` (with a
            random caption of its person, drawn per sample and epoch; Dual-Path).
        weak_caption: also give each sample a caption of another image of its person (the
            batch's ``weak_tokens``; SSAN's weak positive).
    """

    epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-5
    lr_new_mult: float = 10.0
    bias_lr_mult: float = 1.0
    weight_decay: float = 0.0
    bias_weight_decay: float | None = None
    optimizer: str = "adam"
    momentum: float = 0.9
    adam_eps: float = 1e-8
    warmup_epochs: int = 0
    warmup_factor: float = 0.1
    lr_milestones: list[int] = field(default_factory=list)
    lr_gamma: float = 0.1
    grad_clip: float | None = None
    amp: str = "off"
    seed: int = 1
    eval_every: int = 1
    select_metric: str = "R@1"
    device: str = "auto"
    workers: int = 0
    eval_batch_size: int = 128
    query_chunk: int = 512
    hflip: float = 0.5
    pad_crop: int = 0
    random_erasing: float = 0.0
    i2t: bool = False
    compile_similarity: bool = False
    optimizer_rules: str = "groups"
    schedule_unit: str = "step"
    select_on: str = "val"
    icfg_split: str = "irra"
    sampler: str = "random"
    ims_per_id: int = 4
    person_caption: str = "own"
    weak_caption: bool = False

    def validate(self) -> None:
        """Refuse impossible values with a one-line error naming the option."""
        checks = [
            (self.epochs >= 1, "epochs", "must be >= 1"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
            (self.lr > 0, "lr", "must be > 0"),
            (self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {', '.join(OPTIMIZERS)}"),
            (self.amp in AMP_MODES, "amp", f"must be one of {', '.join(AMP_MODES)}"),
            (self.select_metric in SELECT_METRICS, "select_metric",
             f"must be one of {', '.join(SELECT_METRICS)}"),
            (0 <= self.warmup_epochs <= self.epochs, "warmup_epochs",
             "must be between 0 and epochs"),
            (self.eval_every >= 1, "eval_every", "must be >= 1"),
            (self.optimizer_rules in OPTIMIZER_RULES, "optimizer_rules",
             f"must be one of {', '.join(OPTIMIZER_RULES)}"),
            (self.schedule_unit in SCHEDULE_UNITS, "schedule_unit",
             f"must be one of {', '.join(SCHEDULE_UNITS)}"),
            (self.select_on in SELECT_ON, "select_on", f"must be one of {', '.join(SELECT_ON)}"),
            (self.icfg_split in ICFG_SPLITS, "icfg_split",
             f"must be one of {', '.join(ICFG_SPLITS)}"),
            (self.sampler in SAMPLERS, "sampler", f"must be one of {', '.join(SAMPLERS)}"),
            (self.ims_per_id >= 1, "ims_per_id", "must be >= 1"),
            (self.sampler != "identity" or self.batch_size % self.ims_per_id == 0, "batch_size",
             f"must be a multiple of ims_per_id={self.ims_per_id} with the identity sampler"),
            (self.person_caption in PERSON_CAPTIONS, "person_caption",
             f"must be one of {', '.join(PERSON_CAPTIONS)}"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ToreidError(f"training option '{name}': {message} (got "
                                  f"{getattr(self, name)!r})")

    @property
    def augment(self) -> Augment:
        return Augment(hflip=self.hflip, pad_crop=self.pad_crop, erase=self.random_erasing)


@dataclass
class RunSpec:
    """What to train: a model (name + build options), a dataset (label + root), a seed."""

    model: str
    dataset: str
    dataset_root: Path
    train: TrainConfig
    model_options: dict[str, Any] = field(default_factory=dict)
    preset: str = "custom"


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available else CPU; a CUDA request without CUDA is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ToreidError("device 'cuda' requested but CUDA is not available (use --device "
                              "cpu or auto)")
        if name == "cuda":
            name = f"cuda:{local_rank}"
    elif name != "cpu":
        raise ToreidError(f"unknown device {name!r} (valid: auto, cpu, cuda, cuda:N)")
    return torch.device(name)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def model_options_for(model_name: str, dataset_format: str, options: dict[str, Any]) -> dict:
    """The model's build options for a dataset; explicit options win.

    MGCC's token-selection ratios depend on the dataset (paper: CUHK-PEDES (0.3, 0.4),
    ICFG-PEDES (0.4, 0.5), RSTPReid (0.5, 0.5)); the table lives in the models package
    (``models.methods.mgcc.MGCC_PAPER_RATIOS``, keyed by dataset format) and applies to
    ``mgcc``, its architecture variants and ``baseline1`` / ``baseline2`` (MGCC's model on
    other backbones, Table 2's backbone ablation): ``models.registry.MGCC_DATASET_RATIO_MODELS``;
    not to ablation variants, which carry their own ratios.
    """
    from models.registry import MGCC_DATASET_RATIO_MODELS

    resolved = dict(options)
    if model_name in MGCC_DATASET_RATIO_MODELS:
        from models.methods.mgcc import MGCC_PAPER_RATIOS

        ratios = MGCC_PAPER_RATIOS.get(dataset_format)
        if ratios is not None:
            resolved.setdefault("rho_image", ratios[0])
            resolved.setdefault("rho_text", ratios[1])
    return resolved


def build_for_run(name: str, num_classes: int, options: dict[str, Any],
                  train_captions: list[str] | None = None) -> torch.nn.Module:
    """Build ``name`` for a run; a model that embeds words gets the vocabulary of
    ``train_captions`` (it lands in the model config, hence in ``config.json``)."""
    from models import build_model
    from models.registry import with_vocabulary

    if train_captions is not None:
        options = with_vocabulary(name, options, train_captions)
    return build_model(name, num_classes=num_classes, **options)


def rebuild_from_run(run: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model of a finished run with its selected (``best.pt``) weights.

    An incomplete ``config.json``, a checkpoint that is not weights-only, truncated, or of
    another model or shape are each one-line errors naming the file (and the field).
    """
    from models import build_model_from_config

    config_path = Path(run) / "config.json"
    config = read_json(config_path, "run config")
    section = config.get("model") if isinstance(config, dict) else None
    model_config = section.get("config") if isinstance(section, dict) else None
    if not isinstance(model_config, dict):
        raise ToreidError(f"{config_path}: field 'model.config' missing or not an object "
                          "(an incomplete run config)")
    try:
        model = build_model_from_config(model_config, load_pretrained=False)
    except TypeError as exc:  # a config field the model does not know
        raise ToreidError(f"{config_path}: field 'model.config': {exc}") from None
    best = results.checkpoint_dir(run) / "best.pt"
    checkpoint = load_checkpoint(best)
    require_keys(checkpoint, ("model",), best)
    load_model_weights(model, checkpoint["model"], best,
                       f"model '{section.get('name', '?')}' of {config_path}")
    return model, config


def recorded_dataset_root(run: Path, config: dict[str, Any]) -> Path:
    """The dataset root a run's ``config.json`` records (field ``dataset.root``)."""
    section = config.get("dataset")
    root = section.get("root") if isinstance(section, dict) else None
    if not isinstance(root, str):
        raise ToreidError(f"{Path(run) / 'config.json'}: field 'dataset.root' missing (an "
                          "imported checkpoint records no dataset): pass --dataset ROOT")
    return Path(root)


def _history_row(epoch: int, losses: dict[str, float], lr: float, seconds: float,
                 val: dict[str, float] | None, split: str = "val") -> dict[str, Any]:
    row: dict[str, Any] = {"epoch": epoch, "lr": lr}
    row.update({f"loss/{k}": v for k, v in losses.items()})
    row["seconds"] = round(seconds, 3)
    if val is not None:
        row.update({f"{split}/{k}": v for k, v in val.items() if k != "num_gallery"})
    return row


def run_training(spec: RunSpec, out: Path, *, resume: bool = False,
                 progress: bool = True, stop_after: int | None = None,
                 epoch_hook: Any = None) -> dict[str, Any] | None:
    """Train, select, evaluate and write one run folder; return the ``metrics.json`` record.

    Args:
        spec: what to train.
        out: the runs root (the run folder is ``out/<dataset>/<model>/seed<k>``).
        resume: continue from ``checkpoints/last.pt`` if present; a finished run (with a
            ``metrics.json``) is returned as it is.
        progress: show progress bars.
        stop_after: stop after this many epochs without evaluating on test (to simulate an
            interruption in tests); returns ``None`` then.
        epoch_hook: called on the main process as ``epoch_hook(run_folder, history_row)``
            after every epoch (live logging, e.g. ``bench run --log tensorboard``).
    """
    cfg = spec.train
    cfg.validate()
    world = dist.init_from_env(cfg.device if cfg.device != "auto" else
                               ("cuda" if torch.cuda.is_available() else "cpu"))
    device = resolve_device(cfg.device, world.local_rank)
    run = results.run_dir(out, spec.dataset, spec.model, cfg.seed)
    ckpt_dir = results.checkpoint_dir(run)
    dataset = apply_icfg_split(read_dataset(spec.dataset_root), cfg.icfg_split)
    flags = _occlusion_flags(spec.dataset_root)
    test_set = eval_set(dataset, "test", flags)  # fail early on a dataset without test
    val_set = eval_set(dataset, "val") if dataset.split("val") else None
    # the published protocol selects on test; ours on val (never test)
    select_set = test_set if cfg.select_on == "test" else val_set

    _seed_everything(stable_seed(cfg.seed, "init") % (1 << 63))
    options = model_options_for(spec.model, base_format_name(dataset.format),
                                spec.model_options)
    pairs_probe = dataset.split("train")
    if not pairs_probe:
        raise ToreidError(f"{dataset.annotation_path}: dataset has no 'train' split")
    num_classes = len({r.person_id for r in pairs_probe})
    train_captions = [c for r in pairs_probe for c in r.captions]
    options, parsing_dir = _parsing_option(spec, options)
    model = build_for_run(spec.model, num_classes, options, train_captions).to(device)
    if world.distributed and not model.batch_gathers:
        raise ToreidError(
            f"model '{spec.model}': its losses do not gather the batch across processes yet, "
            f"so a {world.size}-process run would be another experiment than the one-process "
            "run of its paper; train it with one process")
    per_process = per_process_batch(cfg.batch_size, world.size)
    pairs = TrainPairs(dataset, model.image_size, model.image_mean, model.image_std,
                       aug=cfg.augment, seed=cfg.seed, interpolation=model.image_interpolation,
                       parsing=ParsingMaps(parsing_dir, model.image_size) if parsing_dir else None,
                       person_caption=cfg.person_caption, weak_caption=cfg.weak_caption)
    optimizer = build_optimizer(model, cfg)
    steps_per_epoch = len(train_loader(pairs, batch_size=cfg.batch_size, epoch=0, seed=cfg.seed,
                                       rank=world.rank, world=world.size, sampler=cfg.sampler,
                                       ims_per_id=cfg.ims_per_id))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, steps_per_epoch))
    scaler = torch.amp.GradScaler("cuda", enabled=(cfg.amp == "fp16" and device.type == "cuda"))

    config_record = {
        "dataset": {"name": spec.dataset, "root": str(spec.dataset_root),
                    "format": dataset.format.name, "train_ids": num_classes,
                    "train_pairs": len(pairs), "test_ids": test_set.num_ids,
                    "has_val": val_set is not None, "has_manifest": flags is not None},
        "model": {"name": spec.model, "options": options,
                  "config": dataclasses.asdict(model.config)},
        "train": dataclasses.asdict(cfg),
        "preset": spec.preset,
        "world_size": world.size,
        "batch": {"global": cfg.batch_size, "world_size": world.size,
                  "per_process": per_process, "gathered": list(model.batch_gathers)},
    }
    existing = _existing_run(run, config_record)
    if existing == "finished":
        return read_json(run / "metrics.json", "run result")
    if existing == "started" and not resume:
        raise ToreidError(f"{run}: run folder already has checkpoints (pass --resume to continue "
                          "it, or choose another --out)")
    start_epoch, best_score, best_epoch, history = 1, -math.inf, 0, []
    if resume and (ckpt_dir / "last.pt").is_file():
        state = load_checkpoint(ckpt_dir / "last.pt")
        require_keys(state, _LAST_KEYS, ckpt_dir / "last.pt")
        load_model_weights(model, state["model"], ckpt_dir / "last.pt", f"model '{spec.model}'")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        start_epoch = state["epoch"] + 1
        best_score, best_epoch = state["best_score"], state["best_epoch"]
        history = state["history"]
    if world.is_main:
        atomic_write_json(run / "config.json", config_record)
        atomic_write_json(run / "env.json", results.environment(str(device)))

    train_model: torch.nn.Module = model
    if world.distributed:
        if device.type == "cuda":  # BatchNorm over the global batch, as one process computes it
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            # an extra graph traversal per step: only for models that leave parameters unused
            find_unused_parameters=model.ddp_find_unused_parameters)

    started = time.perf_counter()
    last_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    epochs_bar = tqdm(range(start_epoch, last_epoch + 1), desc=f"{spec.model}/{spec.dataset}",
                      unit="epoch", disable=not (progress and world.is_main),
                      initial=start_epoch - 1, total=cfg.epochs)
    for epoch in epochs_bar:
        epoch_started = time.perf_counter()
        torch.manual_seed(stable_seed(cfg.seed, f"torch/{epoch}") % (1 << 63))
        if hasattr(model, "set_epoch"):  # 1-based (docs/models.md): Dual-Path, SSAN
            model.set_epoch(epoch)
        losses = _train_epoch(train_model, model, pairs, optimizer, scheduler, scaler, cfg,
                              epoch, device, world, progress)
        val_metrics = None
        is_last = epoch == cfg.epochs
        if select_set is not None and (epoch % cfg.eval_every == 0 or is_last):
            val_metrics = evaluate(model, select_set, device=device, amp=cfg.amp,
                                   batch_size=cfg.eval_batch_size, query_chunk=cfg.query_chunk,
                                   workers=cfg.workers, progress=progress and world.is_main,
                                   compile_similarity=cfg.compile_similarity).t2i
            if val_metrics[cfg.select_metric] > best_score:
                best_score, best_epoch = val_metrics[cfg.select_metric], epoch
                if world.is_main:
                    save_checkpoint(ckpt_dir / "best.pt", {"model": model.state_dict(),
                                                           "epoch": epoch})
        elif select_set is None and is_last and world.is_main:
            best_epoch = epoch
            save_checkpoint(ckpt_dir / "best.pt", {"model": model.state_dict(), "epoch": epoch})
        history.append(_history_row(epoch, losses, scheduler.get_last_lr()[0],
                                    time.perf_counter() - epoch_started, val_metrics,
                                    cfg.select_on))
        if world.is_main:
            save_checkpoint(ckpt_dir / "last.pt", {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "rng": rng_state(), "epoch": epoch, "best_score": best_score,
                "best_epoch": best_epoch, "history": history,
            })
            results.write_history(run / "history.csv", history)
            if epoch_hook is not None:
                epoch_hook(run, history[-1])
        postfix = {k: f"{v:.3f}" for k, v in losses.items()}
        if val_metrics:
            postfix[f"{cfg.select_on} {cfg.select_metric}"] = (
                f"{val_metrics[cfg.select_metric]:.1f}")
        epochs_bar.set_postfix(postfix)
        dist.barrier()
    epochs_bar.close()
    if stop_after is not None and last_epoch < cfg.epochs:
        return None
    train_seconds = time.perf_counter() - started

    best = load_checkpoint(ckpt_dir / "best.pt")
    model.load_state_dict(best["model"])
    evaluation = evaluate(model, test_set, device=device, amp=cfg.amp,
                          batch_size=cfg.eval_batch_size, query_chunk=cfg.query_chunk,
                          i2t=cfg.i2t, workers=cfg.workers, progress=progress and world.is_main,
                          compile_similarity=cfg.compile_similarity)
    selection = selection_record(cfg.select_on, cfg.select_metric, val_set is not None,
                                 best_epoch, best_score)
    record = {
        "format": results.RESULT_FORMAT, "version": results.RESULT_VERSION,
        "dataset": spec.dataset, "dataset_root": str(spec.dataset_root),
        "dataset_format": dataset.format.name, "model": spec.model, "seed": cfg.seed,
        "preset": spec.preset, **evaluation.record(), "selection": selection,
        "protocol": {"select_on": cfg.select_on, "icfg_split": cfg.icfg_split,
                     "published": cfg.select_on == "test"},
        "epochs": cfg.epochs, "checkpoint": "checkpoints/best.pt",
        "train_seconds": round(train_seconds, 3), "eval_seconds": round(evaluation.seconds, 3),
        "num_test_ids": test_set.num_ids, "chance_r1": 100.0 / test_set.num_ids,
    }
    if world.is_main:
        results.write_result(run, record)
    dist.barrier()
    return record


def _existing_run(run: Path, config_record: dict[str, Any]) -> str:
    """What ``run`` already holds: "none", "started" (checkpoints) or "finished" (metrics.json).

    A run folder that holds work of another configuration is refused, so that neither a resume
    nor a rerun ever mixes two configurations in one result: rerunning the same command reuses
    a finished run instead of training it again.
    """
    started = (results.checkpoint_dir(run) / "last.pt").is_file()
    finished = (run / "metrics.json").is_file()
    if not (started or finished):
        return "none"
    config_file = run / "config.json"
    if config_file.is_file():
        recorded = read_json(config_file, "run config")
        if not isinstance(recorded, dict):
            raise ToreidError(f"{config_file}: not a run config (expected a JSON object)")
        wanted = json.loads(json.dumps(config_record))
        for key in wanted:
            if recorded.get(key) != wanted[key]:
                raise ToreidError(f"{config_file}: field '{key}': this run folder holds a run with "
                                  "another configuration (choose another --out, or delete the "
                                  "folder to train again)")
    return "finished" if finished else "started"


def _train_epoch(train_model, model, pairs, optimizer, scheduler, scaler, cfg: TrainConfig,
                 epoch: int, device: torch.device, world: dist.World,
                 progress: bool) -> dict[str, float]:
    """One epoch; returns the mean of each named loss (and the total) over its steps."""
    train_model.train()
    loader = train_loader(pairs, batch_size=cfg.batch_size, epoch=epoch, seed=cfg.seed,
                          workers=cfg.workers, rank=world.rank, world=world.size,
                          sampler=cfg.sampler, ims_per_id=cfg.ims_per_id)
    sums: dict[str, float] = {}
    steps = 0
    for batch in tqdm(loader, desc=f"epoch {epoch}", unit="step", leave=False,
                      disable=not (progress and world.is_main)):
        inputs = {"images": batch["images"].to(device, non_blocking=True),
                  "tokens": model.tokenize(batch["captions"]).to(device),
                  "pids": batch["pids"].to(device)}
        if "parsing" in batch:  # models that declare train_inputs = ("parsing",)
            inputs["parsing"] = batch["parsing"].to(device)
        if "weak_captions" in batch:  # weak_caption: another image's caption (SSAN)
            inputs["weak_tokens"] = model.tokenize(batch["weak_captions"]).to(device)
        with autocast(device, cfg.amp):
            named = train_model(inputs)
        total = sum(v.float() for v in named.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        if cfg.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        model.after_optimizer_step()  # e.g. clamp CLIP's stored logit scale, as open_clip
        scheduler.step()
        steps += 1
        for key, value in named.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach())
        sums["total"] = sums.get("total", 0.0) + float(total.detach())
    return {k: dist.all_reduce_mean(v / max(1, steps)) for k, v in sums.items()}


def _parsing_option(spec: RunSpec, options: dict[str, Any]) -> tuple[dict[str, Any], Path | None]:
    """For a model that trains against human-parsing masks (its class declares
    ``train_inputs = ("parsing",)``): the options with the resolved ``parsing_dir`` (recorded
    in ``config.json``) and that folder; others get ``(options, None)``. No masks: one-line
    refusal saying how to make them (:func:`benchmark.parsing.resolve_parsing_dir`)."""
    from models.registry import FAMILIES, MODELS

    model_cls = FAMILIES[MODELS[spec.model].family].model_cls
    if "parsing" not in getattr(model_cls, "train_inputs", ()):
        return options, None
    folder = resolve_parsing_dir(spec.model, options, spec.dataset_root)
    return {**options, "parsing_dir": str(folder)}, folder


def _occlusion_flags(root: Path) -> dict[str, bool] | None:
    """The dataset's occlusion flags (``ogor.generation.occlusion_flags``), or ``None``."""
    from ogor.generation import occlusion_flags

    return occlusion_flags(root)

