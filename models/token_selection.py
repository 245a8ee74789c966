"""MGCC's fine-granularity token selection: keep the tokens the global token attends to most.

Rounding rule: a sample with ``n`` valid tokens keeps ``Z = ceil(rho * n)`` of them (at least one
whenever ``n >= 1``; the issue asks for round-up, so e.g. 49 patches at rho = 0.3 keep 15, a
10-word caption at rho = 0.4 keeps 4). ``rho * n`` is rounded to 9 decimals before the ceiling so
that floating-point noise (0.3 * 10 = 3.0000000000000004) does not add a token. ``rho = 1`` keeps
every valid token. ``n`` is per sample: for text it is that caption's own word count, and padding
(``mask`` False) is never selected.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from models.errors import ModelError
from models.features import _Features


def keep_count(rho: float, n: int) -> int:
    """How many of ``n`` tokens a ratio keeps: ``ceil(rho * n)`` (0 only when ``n`` is 0)."""
    if not 0.0 < rho <= 1.0:
        raise ModelError(f"token selection ratio must be in (0, 1], got {rho}")
    return min(n, math.ceil(round(rho * n, 9)))


def keep_counts(rho: float, valid: Tensor) -> Tensor:
    """Vectorised :func:`keep_count` over a tensor of per-sample valid-token counts."""
    if not 0.0 < rho <= 1.0:
        raise ModelError(f"token selection ratio must be in (0, 1], got {rho}")
    scaled = torch.round(valid.double() * rho * 1e9) / 1e9
    return torch.minimum(torch.ceil(scaled).long(), valid.long())


def select_tokens(features: _Features, rho: float) -> _Features:
    """Keep the top ``ceil(rho * n_b)`` valid tokens of each sample by ``features.attention``.

    Returns features of the same type whose token dimension is the largest kept count in the
    batch; each sample's kept tokens come first in descending attention order, followed by
    masked-out filler. ``pooled`` is unchanged. With ``rho == 1`` the input is returned as is.
    """
    counts = keep_counts(rho, features.mask.sum(dim=1))
    if rho >= 1.0:
        return features
    return keep_top(features, counts)


def keep_top(features: _Features, counts: Tensor) -> _Features:
    """Keep the ``counts[b]`` valid tokens of sample ``b`` with the highest attention, in
    descending attention order, followed by masked-out filler."""
    width = max(int(counts.max().item()), 1) if counts.numel() else 1
    width = min(width, features.num_tokens)
    score = features.attention.float().masked_fill(~features.mask, float("-inf"))
    order = score.topk(width, dim=1).indices  # [B, width], highest attention first
    mask = torch.arange(width, device=order.device).unsqueeze(0) < counts.unsqueeze(1)
    tokens = torch.gather(
        features.tokens, 1, order.unsqueeze(-1).expand(-1, -1, features.tokens.shape[-1]))
    attention = torch.gather(features.attention, 1, order) * mask
    return type(features)(pooled=features.pooled, tokens=tokens, mask=mask, attention=attention)
