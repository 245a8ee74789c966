"""``bench run --dry-run``: resolve and show what every (model, dataset, seed) would train.

Nothing is trained, built or downloaded and no dataset is read beyond detecting its format (the
format decides MGCC's token-selection ratios). Each record holds the resolved model config,
what it builds (image size, patches, feature width, word cap; :func:`models.registry.
describe_architecture`), the resolved training config and the learning rates it gives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.records.spec import TrainConfig, model_options_for

#: The demo dataset's format (it is synthesised as CUHK-PEDES).
DEMO_FORMAT = "cuhk-pedes"


def learning_rates(cfg: TrainConfig) -> dict[str, Any]:
    """The learning rates and weight decays ``cfg`` gives, in the words of its rules."""
    bias_wd = cfg.weight_decay if cfg.bias_weight_decay is None else cfg.bias_weight_decay
    new, bias = f"x{cfg.lr_new_mult:g}", f"x{cfg.bias_lr_mult:g}"
    if cfg.optimizer_rules == "irra":
        rules = (f"IRRA's name rules, each overriding the previous: all lr x1 wd "
                 f"{cfg.weight_decay:g}; 'cross' lr {new}; 'bias' lr {bias} wd {bias_wd:g}; "
                 f"'classifier'/'mlm_head' lr {new}")
    else:
        rules = f"encoders lr x1, new modules lr {new}; 1-d tensors lr {bias} wd {bias_wd:g}"
    decay = (f"x{cfg.lr_gamma:g} at epochs {', '.join(str(m) for m in cfg.lr_milestones)}"
             if cfg.lr_milestones and cfg.schedule_unit == "step" else "cosine to 0")
    schedule = (f"linear warm-up {cfg.warmup_epochs} epochs from x{cfg.warmup_factor:g}, then "
                f"{decay}, per {cfg.schedule_unit}") if cfg.warmup_epochs else (
                f"{decay}, per {cfg.schedule_unit}")
    scale = ("the preset's lr, unscaled" if cfg.lr_scale == "none" else
             f"the preset's lr x {cfg.lr_scale} of global batch {cfg.batch_size} / preset batch "
             f"{cfg.lr_reference_batch}")
    return {"optimizer": cfg.optimizer, "adam_eps": cfg.adam_eps, "lr_encoder": cfg.lr,
            "lr_new": cfg.lr * cfg.lr_new_mult, "lr_scale": scale,
            "weight_decay": cfg.weight_decay, "bias_weight_decay": bias_wd, "rules": rules,
            "schedule": schedule}


def describe_run(model: str, dataset: str, dataset_format: str, cfg: TrainConfig,
                 options: dict[str, Any], preset: str) -> dict[str, Any]:
    """One resolved (model, dataset, seed) as a JSON-able record."""
    from models.registry import describe_architecture, model_config

    resolved = model_options_for(model, dataset_format, options)
    config = model_config(model, **resolved)
    return {"model": model, "dataset": dataset, "dataset_format": dataset_format,
            "seed": cfg.seed, "preset": preset, "architecture": describe_architecture(config),
            "model_config": dataclasses.asdict(config), "optimizer": learning_rates(cfg),
            "train": dataclasses.asdict(cfg)}


def describe_runs(models: Sequence[str], datasets: Sequence[tuple[str, Path | None]],
                  seeds: Sequence[int], *, preset: str,
                  overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (model, dataset, seed) of a ``bench run``, resolved; ``None`` roots are the demo."""
    from benchmark.pipeline.runner import check_models, make_train_config
    from ogor.datasets import base_format_name, detect_format

    check_models(models)
    records = []
    for label, root in datasets:
        # per-dataset settings follow the dataset, whichever layout its copy is in
        dataset_format = DEMO_FORMAT if root is None else base_format_name(detect_format(root))
        for model in models:
            for seed in seeds:
                cfg, options = make_train_config(preset, model, seed, overrides)
                cfg.validate()
                records.append(describe_run(model, label, dataset_format, cfg, options,
                                            preset))
    return records
