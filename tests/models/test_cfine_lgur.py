"""CFine's token refinement and correspondence (LGUR's tests: tests/models/test_lgur.py)."""

from __future__ import annotations

import pytest
import torch

from models.features import ImageFeatures, TextFeatures
from models.methods.cfine import (
    cross_grained_similarity,
    fine_grained_similarity,
    select_informative,
)


def _features(cls, tokens: torch.Tensor, attention: torch.Tensor, mask=None):
    mask = torch.ones(tokens.shape[:2], dtype=torch.bool) if mask is None else mask
    return cls(tokens.mean(1), tokens, mask, attention)


def test_cfr_keeps_the_most_attended_valid_tokens() -> None:
    tokens = torch.arange(2 * 4 * 3, dtype=torch.float).view(2, 4, 3)
    attention = torch.tensor([[0.1, 0.5, 0.3, 0.1], [0.7, 0.1, 0.1, 0.1]])
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    kept = select_informative(_features(TextFeatures, tokens, attention, mask), 0.5)
    assert kept.tokens.shape == (2, 2, 3)
    assert torch.equal(kept.tokens[0], tokens[0, [1, 2]])  # top-2 of 4 by attention
    assert kept.mask.tolist() == [[True, True], [True, False]]  # ceil(0.5 * 2) = 1 kept
    assert torch.equal(kept.tokens[1, 0], tokens[1, 0])


def test_fcd_is_the_mean_best_match_both_ways_and_ignores_filtered_tokens() -> None:
    torch.manual_seed(0)
    words = torch.randn(2, 3, 8)
    patches = torch.randn(3, 5, 8)
    text = _features(TextFeatures, words, torch.rand(2, 3))
    image = _features(ImageFeatures, patches, torch.rand(3, 5))
    got = fine_grained_similarity(text, image)
    cos = torch.nn.functional.cosine_similarity(
        words[:, None, :, None], patches[None, :, None, :], dim=-1)  # [Q, G, W, P]
    want = (cos.max(3).values.mean(2) + cos.max(2).values.mean(2)) / 2
    torch.testing.assert_close(got, want)
    # a patch that CFR filters out cannot create a correspondence, however well it matches
    attention = torch.tensor([[0.9, 0.05, 0.05, 0.0, 0.0]] * 3)
    planted = patches.clone()
    planted[0, 4] = words[0, 0] * 10
    before = fine_grained_similarity(text, select_informative(
        _features(ImageFeatures, patches, attention), 0.4))
    after = fine_grained_similarity(text, select_informative(
        _features(ImageFeatures, planted, attention), 0.4))
    torch.testing.assert_close(before, after)
    unfiltered = fine_grained_similarity(text, _features(ImageFeatures, planted, attention))
    assert unfiltered[0, 0] > fine_grained_similarity(text, image)[0, 0]


def test_cross_grained_matches_each_global_with_the_other_side_tokens() -> None:
    dim = 4
    basis = torch.eye(dim)
    # text 0's global is basis 0; image 0 has a patch equal to it, image 1 does not
    text = TextFeatures(basis[[0]], basis[[1, 2]].unsqueeze(0), torch.ones(1, 2, dtype=bool),
                        torch.full((1, 2), 0.5))
    patches = torch.stack([basis[[0, 3]], basis[[2, 3]]])
    image = ImageFeatures(torch.stack([basis[1], basis[1]]), patches,
                          torch.ones(2, 2, dtype=bool), torch.full((2, 2), 0.5))
    sim = cross_grained_similarity(text, image, temperature=0.01)
    # image globals (basis 1) match the word basis 1 in both; only image 0 has the text's patch
    assert sim[0, 0] == pytest.approx(1.0, abs=1e-3)
    assert sim[0, 1] == pytest.approx(0.5, abs=1e-3)
