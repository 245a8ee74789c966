"""Optimiser parameter rules that reproduce a released recipe exactly.

The default rules (:func:`benchmark.train.build_optimizer`) give each model's ``encoder`` and
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

OPTIMIZER_RULES = ("groups", "irra")
SCHEDULE_UNITS = ("step", "epoch")


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
