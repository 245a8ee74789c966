"""SAF's semantic-aligned feature aggregation: learnable part queries attending over tokens."""

from __future__ import annotations

import pytest
import torch

from models import build_model, tiny_options
from models.methods.saf import SAF, part_diversity


@pytest.fixture(scope="module")
def saf() -> SAF:
    torch.manual_seed(0)
    model = build_model("saf", num_classes=3, **tiny_options("saf")).eval()
    assert isinstance(model, SAF)
    return model


def test_part_queries_attend_over_the_patch_tokens(saf: SAF) -> None:
    pixels = torch.randn(2, 3, *saf.image_size)
    with torch.no_grad():
        projected = saf.project_images(pixels)
        parts, weights = saf.aggregation(projected.tokens, projected.mask)
        features = saf.encode_images(pixels)
    num_patches = projected.tokens.shape[1]
    assert num_patches == 8 and weights.shape == (2, 3, num_patches)  # 3 queries x 8 patches
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(2, 3))
    torch.testing.assert_close(features.tokens, parts)
    # each part is a mixture of the patches: changing one patch token changes every part
    changed = projected.tokens.clone()
    changed[:, 5] += 3.0
    with torch.no_grad():
        moved, _ = saf.aggregation(changed, projected.mask)
    assert (moved - parts).abs().amax(dim=-1).min() > 1e-4
    # and the global feature is not what the parts are made of
    torch.testing.assert_close(features.pooled, projected.pooled)


def test_padding_words_get_no_attention_and_do_not_change_the_parts(saf: SAF) -> None:
    tokens = saf.tokenize(["a man in a red shirt", "a woman"])
    with torch.no_grad():
        projected = saf.project_texts(tokens)
        parts, weights = saf.aggregation(projected.tokens, projected.mask)
        noisy = projected.tokens.masked_fill(~projected.mask.unsqueeze(-1), 7.0)
        again, _ = saf.aggregation(noisy, projected.mask)
    assert not projected.mask[1].all()
    assert torch.all(weights[1][:, ~projected.mask[1]] == 0)
    torch.testing.assert_close(again, parts)


def test_queries_are_trained_and_shared_by_both_modalities(saf: SAF) -> None:
    saf.train()
    batch = {"images": torch.randn(4, 3, *saf.image_size),
             "tokens": saf.tokenize(["a man", "a woman in red", "a man in blue", "a child"]),
             "pids": torch.tensor([0, 1, 0, 2])}
    losses = saf(batch)
    assert set(losses) == {"global", "part", "diversity", "id"}
    saf.zero_grad()
    losses["part"].backward()
    assert saf.aggregation.queries.grad is not None
    assert saf.aggregation.queries.grad.abs().sum() > 0
    saf.eval()


def test_diversity_is_zero_for_orthogonal_parts_and_one_for_identical_ones() -> None:
    assert part_diversity(torch.eye(3).unsqueeze(0)) == 0
    torch.testing.assert_close(part_diversity(torch.ones(1, 3, 4)), torch.tensor(1.0))
