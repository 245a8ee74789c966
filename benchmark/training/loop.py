"""The training loop: parameter groups, warm-up + cosine, AMP, DDP, checkpoints, exact resume.

One call of :func:`run_training` trains one (model, dataset, seed), selects a checkpoint on the
validation split (never on test), evaluates it on test and writes the run folder
(:mod:`benchmark.records.results`).

Exact resume: a checkpoint is written atomically at the end of every epoch with the model,
optimiser, scheduler, grad scaler, RNG states (python, numpy, torch, CUDA), epoch, best score and
history. On top of that every epoch re-seeds torch from (seed, epoch) and draws its sample order
and augmentations from (seed, epoch, index) (:mod:`benchmark.data.sets`), so an epoch's random
numbers do not depend on how the process got there. A run stopped after epoch k and resumed
therefore reaches the same final metrics as an uninterrupted one, exactly (tested on the CPU).

Model selection: with a ``val`` split, the checkpoint of the epoch with the best val
``select_metric`` (default R@1; ties keep the earlier epoch) is ``best.pt``; without one
(ICFG-PEDES) the last epoch is used, as IRRA's schedule runs to its end anyway. ``metrics.json``
records the rule, the split and the epoch. ``select_on="test"`` selects on test instead, as the
published releases do (:mod:`benchmark.records.protocol`); it is recorded and marked in every table.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmark.data.parsing import ParsingMaps, resolve_parsing_dir
from benchmark.data.sets import TrainPairs, eval_set, per_process_batch, train_loader
from benchmark.evaluation.evaluate import autocast, evaluate
from benchmark.records import results
from benchmark.records.checkpoints import (
    load_checkpoint,
    load_model_weights,
    require_keys,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from benchmark.records.protocol import apply_icfg_split, selection_record
from benchmark.records.rebuild import build_for_run, dataset_occlusion_flags
from benchmark.records.spec import RunSpec, TrainConfig, model_options_for
from benchmark.runtime import dist
from benchmark.runtime.device import resolve_device
from benchmark.training.optim import build_optimizer, lr_lambda
from ogor.datasets import base_format_name, read_dataset
from toreid.errors import ToreidError
from toreid.io import atomic_write_json, read_json, stable_seed

#: What ``last.pt`` holds (all of it plain data: see ``benchmark.records.checkpoints``).
_LAST_KEYS = ("model", "optimizer", "scheduler", "scaler", "rng", "epoch", "best_score",
              "best_epoch", "history")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


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
    flags = dataset_occlusion_flags(spec.dataset_root)
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
        named, total = training_step(train_model, model, inputs, optimizer, scaler,
                                     amp=cfg.amp, grad_clip=cfg.grad_clip, device=device)
        scheduler.step()
        steps += 1
        for key, value in named.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach())
        sums["total"] = sums.get("total", 0.0) + float(total.detach())
    return {k: dist.all_reduce_mean(v / max(1, steps)) for k, v in sums.items()}


def training_step(train_model: torch.nn.Module, model: Any, inputs: dict[str, torch.Tensor],
                  optimizer: torch.optim.Optimizer, scaler: Any, *, amp: str,
                  grad_clip: float | None, device: torch.device
                  ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One optimiser step of ``bench run`` (``perf/gpu_check.py`` times this same step):
    the named losses under autocast, their sum backward through the scaler, the gradient
    clipped, the step, then the model's own after-step hook (e.g. CLIP's logit-scale clamp,
    as open_clip does)."""
    with autocast(device, amp):
        named = train_model(inputs)
    total = sum(v.float() for v in named.values())
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    if grad_clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    model.after_optimizer_step()
    return named, total


def _parsing_option(spec: RunSpec, options: dict[str, Any]) -> tuple[dict[str, Any], Path | None]:
    """For a model that trains against human-parsing masks (its class declares
    ``train_inputs = ("parsing",)``): the options with the resolved ``parsing_dir`` (recorded
    in ``config.json``) and that folder; others get ``(options, None)``. No masks: one-line
    refusal saying how to make them (:func:`benchmark.data.parsing.resolve_parsing_dir`)."""
    from models.registry import FAMILIES, MODELS

    model_cls = FAMILIES[MODELS[spec.model].family].model_cls
    if "parsing" not in getattr(model_cls, "train_inputs", ()):
        return options, None
    folder = resolve_parsing_dir(spec.model, options, spec.dataset_root)
    return {**options, "parsing_dir": str(folder)}, folder


