"""Horizontal stripes of a CNN feature map: the part features of the part-based T-ReID models.

A pedestrian image is tall and roughly aligned (head at the top, feet at the bottom), so the
part-based methods (SSAN, TIPCB, NAFS, ...) cut the last feature map ``[B, C, H, W]`` into ``K``
horizontal stripes, top to bottom, and pool each one into a ``C``-d part feature. Both SSAN and
TIPCB pool by the maximum (SSAN: ``AdaptiveMaxPool2d((K, 1))``; TIPCB: a max-pool per 4-row
slice of its 24-row map); the mean is here for methods that average.

Stripe ``k`` covers rows ``floor(k * H / K)`` to ``ceil((k + 1) * H / K)`` (exclusive), the bins of
PyTorch's adaptive pooling: when ``K`` divides ``H`` (6 stripes of a 24x8 or 12x4 map) the stripes
are disjoint and of equal height, which is how the papers use them; otherwise neighbouring
stripes share a row. A map with fewer rows than stripes is refused: some part would then be a
copy of its neighbour, not a region of its own.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from models.errors import ModelError

STRIPE_POOLINGS = ("max", "mean")


def stripe_rows(height: int, num_parts: int) -> list[tuple[int, int]]:
    """``(first, stop)`` rows of each of the ``num_parts`` stripes of a map ``height`` rows tall."""
    if num_parts < 1:
        raise ModelError(f"num_parts must be positive, got {num_parts}")
    if height < num_parts:
        raise ModelError(f"a feature map of {height} rows cannot be cut into {num_parts} "
                         "stripes: use a taller image or fewer parts")
    return [(k * height // num_parts, math.ceil((k + 1) * height / num_parts))
            for k in range(num_parts)]


def stripe_pool(feature_map: Tensor, num_parts: int, pooling: str = "max") -> Tensor:
    """Part features ``[B, K, C]`` of a feature map ``[B, C, H, W]``: stripe ``k`` (top first)
    pooled over its rows and all columns (see :func:`stripe_rows` for which rows)."""
    if pooling not in STRIPE_POOLINGS:
        raise ModelError(f"unknown stripe pooling '{pooling}'; valid: "
                         f"{', '.join(STRIPE_POOLINGS)}")
    if feature_map.ndim != 4:
        raise ModelError(f"stripe pooling needs a [B, C, H, W] map, got shape "
                         f"{tuple(feature_map.shape)}")
    stripe_rows(int(feature_map.shape[2]), num_parts)  # validates the sizes
    pool = F.adaptive_max_pool2d if pooling == "max" else F.adaptive_avg_pool2d
    return pool(feature_map, (num_parts, 1)).squeeze(-1).transpose(1, 2)
