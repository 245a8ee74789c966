"""Token selection: the rounding rule, the hand-made case, padding never selected."""

from __future__ import annotations

import pytest
import torch

from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.token_selection import keep_count, keep_counts, select_tokens


@pytest.mark.parametrize(
    ("rho", "n", "expected"),
    [(0.3, 49, 15), (0.4, 10, 4), (0.3, 10, 3), (0.5, 25, 13), (0.1, 3, 1), (1.0, 7, 7),
     (0.5, 0, 0), (0.2, 192, 39)],
)
def test_keep_count_rounds_up(rho: float, n: int, expected: int) -> None:
    assert keep_count(rho, n) == expected
    assert keep_counts(rho, torch.tensor([n])).item() == expected


@pytest.mark.parametrize("rho", [0.0, -0.1, 1.5])
def test_impossible_ratio_is_a_model_error(rho: float) -> None:
    with pytest.raises(ModelError, match="ratio"):
        keep_count(rho, 10)


def _features(cls, attention: list[list[float]], mask: list[list[bool]]):
    attention_t = torch.tensor(attention)
    batch, n = attention_t.shape
    # token i of sample b is the constant vector 10 * b + i, to see which ones were kept
    ids = (10 * torch.arange(batch).view(-1, 1) + torch.arange(n).view(1, -1)).float()
    return cls(pooled=torch.zeros(batch, 2), tokens=ids.unsqueeze(-1).expand(-1, -1, 2).clone(),
               mask=torch.tensor(mask), attention=attention_t)


def test_selects_highest_attention_tokens_by_hand() -> None:
    image = _features(
        ImageFeatures,
        [[0.05, 0.40, 0.10, 0.30, 0.15], [0.50, 0.10, 0.20, 0.05, 0.15]],
        [[True] * 5, [True] * 5],
    )
    selected = select_tokens(image, 0.4)  # ceil(0.4 * 5) = 2 per image
    kept = [set(selected.tokens[b, selected.mask[b], 0].int().tolist()) for b in range(2)]
    assert kept == [{1, 3}, {10, 12}]
    assert selected.tokens.shape == (2, 2, 2)
    assert torch.equal(selected.pooled, image.pooled)


def test_text_selection_is_per_caption_and_never_picks_padding() -> None:
    # padding positions carry the HIGHEST raw attention: they must still never be chosen
    text = _features(
        TextFeatures,
        [[0.1, 0.5, 0.2, 0.9, 0.9, 0.9], [0.3, 0.1, 0.6, 0.2, 0.1, 0.4]],
        [[True, True, True, False, False, False], [True] * 6],
    )
    selected = select_tokens(text, 0.5)  # caption 0: ceil(1.5) = 2 of 3; caption 1: 3 of 6
    assert selected.mask.sum(dim=1).tolist() == [2, 3]
    kept0 = set(selected.tokens[0, selected.mask[0], 0].int().tolist())
    kept1 = set(selected.tokens[1, selected.mask[1], 0].int().tolist())
    assert kept0 == {1, 2}
    assert kept1 == {10, 12, 15}
    assert (selected.attention[~selected.mask] == 0).all()


def test_rho_one_keeps_every_valid_token() -> None:
    text = _features(TextFeatures, [[0.2, 0.3, 0.5, 0.0]], [[True, True, True, False]])
    assert select_tokens(text, 1.0).mask.sum().item() == 3


def test_random_selection_never_selects_padding() -> None:
    gen = torch.Generator().manual_seed(3)
    lengths = torch.randint(0, 12, (50,), generator=gen)
    mask = torch.arange(12).view(1, -1) < lengths.view(-1, 1)
    attention = torch.rand(50, 12, generator=gen)  # padding has attention too
    ids = torch.arange(12).view(1, -1, 1).expand(50, -1, 1).float()
    text = TextFeatures(torch.zeros(50, 1), ids.clone(), mask, attention)
    selected = select_tokens(text, 0.3)
    for b in range(50):
        chosen = selected.tokens[b, selected.mask[b], 0].long()
        assert (chosen < lengths[b]).all()
        assert len(chosen) == keep_count(0.3, int(lengths[b]))
        assert len(set(chosen.tolist())) == len(chosen)
