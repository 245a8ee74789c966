"""Stripe pooling: each part feature is its own rows' maximum (or mean), top stripe first."""

from __future__ import annotations

import pytest
import torch

from models.encoders.parts import stripe_pool, stripe_rows
from models.errors import ModelError


def test_stripes_are_disjoint_rows_top_first_when_parts_divide_the_height() -> None:
    assert stripe_rows(24, 6) == [(0, 4), (4, 8), (8, 12), (12, 16), (16, 20), (20, 24)]
    fmap = torch.randn(2, 5, 24, 8)
    parts = stripe_pool(fmap, 6)
    assert parts.shape == (2, 6, 5)
    assert torch.equal(parts[:, 0], fmap[:, :, 0:4].amax(dim=(2, 3)))
    assert torch.equal(parts[:, 5], fmap[:, :, 20:24].amax(dim=(2, 3)))
    assert torch.allclose(stripe_pool(fmap, 6, "mean")[:, 2], fmap[:, :, 8:12].mean(dim=(2, 3)))


def test_a_map_with_fewer_rows_than_parts_is_refused_in_one_line() -> None:
    with pytest.raises(ModelError, match="4 rows cannot be cut into 6 stripes"):
        stripe_pool(torch.zeros(1, 3, 4, 2), 6)
