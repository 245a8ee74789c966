"""Optimiser parameter rules that reproduce a released recipe exactly.

The default rules (:func:`build_optimizer`) give each model's ``encoder`` and
``new`` groups their learning rates. IRRA's code (``solver/build.py``, read to learn) decides
per parameter, by *name*, with rules that override each other in this order (they do not
stack):

1. every parameter: ``lr``, ``weight_decay``;
2. ``"cross"`` in the name (its cross-attention and cross-modal transformer): ``lr * 5``;
3. ``"bias"`` in the name: ``lr * 2`` and ``weight_decay_bias`` (0), replacing step 2's lr:
   a cross-modal bias gets x2, not x10;
4. ``"classifier"`` or ``"mlm_head"`` in the name: ``lr * 5``, replacing step 3's lr but
   keeping its weight decay (a head's bias: x5 with weight decay 0).

Only parameters *named* as biases are biases: LayerNorm weights, embeddings and the class token
get the full weight decay at 1x. IRRA's LayerNorms around the cross-modal transformer
(``ln_pre_t``, ``ln_pre_i``, ``ln_post``) do not contain "cross", so they train at 1x (biases
x2): reproduced, because the rules apply to IRRA's own names
(:meth:`models.base.RetrievalModel.reference_parameter_names`).
"""

from __future__ import annotations

import math
from typing import Any

import torch

# ``cfg`` below is a :class:`benchmark.records.spec.TrainConfig`; it is typed ``Any`` because
# train.py
# imports this module (no import cycle).

def irra_lr_and_decay(name: str, lr: float, weight_decay: float, new_mult: float,
                      bias_mult: float, bias_decay: float) -> tuple[float, float]:
    """IRRA's learning rate and weight decay of the parameter IRRA calls ``name``."""
    rate, decay = lr, weight_decay
    if "cross" in name:
        rate = lr * new_mult
    if "bias" in name:
        rate, decay = lr * bias_mult, bias_decay
    if "classifier" in name or "mlm_head" in name:
        rate = lr * new_mult
    return rate, decay


def irra_param_groups(model: torch.nn.Module, cfg: Any) -> list[dict[str, Any]]:
    """Parameter groups by IRRA's rules; parameters with equal (lr, weight decay) share a
    group (Adam treats every parameter alone, so merging changes nothing but the count).

    Each group carries ``name`` (its rule) and ``members`` (IRRA's names of its parameters).
    """
    reference = model.reference_parameter_names()
    bias_decay = cfg.weight_decay if cfg.bias_weight_decay is None else cfg.bias_weight_decay
    groups: dict[tuple[float, float], dict[str, Any]] = {}
    for ours, param in model.named_parameters():
        if not param.requires_grad:
            continue
        theirs = reference.get(ours, ours)
        rate, decay = irra_lr_and_decay(theirs, cfg.lr, cfg.weight_decay, cfg.lr_new_mult,
                                        cfg.bias_lr_mult, bias_decay)
        group = groups.setdefault((rate, decay), {
            "params": [], "lr": rate, "weight_decay": decay, "members": [],
            "name": f"irra lr x{rate / cfg.lr:g} wd {decay:g}"})
        group["params"].append(param)
        group["members"].append(theirs)
    return list(groups.values())


def irra_epoch_factor(epoch_index: int, epochs: int, warmup_epochs: int,
                      warmup_factor: float) -> float:
    """IRRA's ``LRSchedulerWithWarmup`` (linear warm-up, cosine, stepped once per epoch) for
    the 0-based ``epoch_index``: ``f + (1 - f) * k / W`` while ``k < W``, then
    ``0.5 * (1 + cos(pi * (k - W) / (E - W)))``."""
    if epoch_index < warmup_epochs:
        alpha = epoch_index / warmup_epochs
        return warmup_factor * (1 - alpha) + alpha
    ratio = (epoch_index - warmup_epochs) / max(1, epochs - warmup_epochs)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, ratio)))


def _is_bias_like(name: str, param: torch.nn.Parameter) -> bool:
    return param.ndim <= 1 or name.endswith(".bias")


def build_optimizer(model: torch.nn.Module, cfg: Any) -> torch.optim.Optimizer:
    """Adam/AdamW over the model's ``encoder`` and ``new`` groups, biases split off.

    The groups come from ``model.parameter_groups()``; each is split into weights and biases
    (1-d tensors: biases, norms, embeddings' scales). ``cfg.optimizer_rules == "irra"``
    replaces all of this with IRRA's per-name rules
    (:func:`benchmark.training.optim.irra_param_groups`).
    """
    if cfg.optimizer_rules == "irra":
        return _make_optimizer(irra_param_groups(model, cfg), cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    groups = []
    for group_name, params in model.parameter_groups().items():
        mult = cfg.lr_new_mult if group_name == "new" else 1.0
        weights = [p for p in params if p.requires_grad and not _is_bias_like(names[id(p)], p)]
        biases = [p for p in params if p.requires_grad and _is_bias_like(names[id(p)], p)]
        bias_wd = cfg.weight_decay if cfg.bias_weight_decay is None else cfg.bias_weight_decay
        if weights:
            groups.append({"params": weights, "lr": cfg.lr * mult,
                           "weight_decay": cfg.weight_decay, "name": f"{group_name}.weight"})
        if biases:
            groups.append({"params": biases, "lr": cfg.lr * mult * cfg.bias_lr_mult,
                           "weight_decay": bias_wd, "name": f"{group_name}.bias"})
    return _make_optimizer(groups, cfg)


def _make_optimizer(groups: list[dict[str, Any]], cfg: Any) -> torch.optim.Optimizer:
    """SGD (Nesterov when there is momentum), Adam or AdamW over ready parameter groups."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.momentum > 0)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=cfg.lr, eps=cfg.adam_eps)


def lr_lambda(cfg: Any, steps_per_epoch: int):
    """Per-step factor: linear warm-up from ``warmup_factor``, then cosine to 0 at the end (or,
    with ``lr_milestones``, ``lr_gamma`` to the power of the milestones passed).

    With ``schedule_unit == "epoch"`` the factor is constant within an epoch and follows IRRA's
    ``LRSchedulerWithWarmup`` stepped once per epoch: epoch ``e`` (1-based) of ``E`` with ``W``
    warm-up epochs uses ``k = e - 1``: ``f + (1 - f) * k / W`` while ``k < W``, then
    ``0.5 * (1 + cos(pi * (k - W) / (E - W)))`` (so the last epoch is not at 0).
    """
    warm = cfg.warmup_epochs * steps_per_epoch
    total = cfg.epochs * steps_per_epoch

    if cfg.schedule_unit == "epoch":
        return lambda step: irra_epoch_factor(step // max(1, steps_per_epoch), cfg.epochs,
                                              cfg.warmup_epochs, cfg.warmup_factor)

    def factor(step: int) -> float:
        if step < warm:
            alpha = step / max(1, warm)
            return cfg.warmup_factor * (1 - alpha) + alpha
        if cfg.lr_milestones:
            passed = sum(step >= m * steps_per_epoch for m in cfg.lr_milestones)
            return cfg.lr_gamma ** passed
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor
