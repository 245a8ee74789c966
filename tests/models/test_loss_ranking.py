"""The bidirectional ranking loss against a naive loop and a case worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from models.losses import ranking_loss, ranking_loss_from_scores

# rows images, columns texts; pids [0, 1, 0], so (0, 2) and (2, 0) are same-person pairs
SCORES = torch.tensor([[0.9, 0.6, 0.8],
                       [0.2, 0.7, 0.5],
                       [0.1, 0.3, 0.4]])
PIDS = torch.tensor([0, 1, 0])


def naive_ranking(scores: torch.Tensor, pids: list[int], margin: float, hardest: bool) -> float:
    """One anchor at a time, one negative at a time, in plain Python."""
    size = len(pids)
    per_image, per_text = [], []
    for anchor in range(size):
        image_hinges, text_hinges = [], []
        for other in range(size):
            if pids[other] == pids[anchor]:
                continue
            positive = float(scores[anchor, anchor])
            image_hinges.append(max(0.0, margin - positive + float(scores[anchor, other])))
            text_hinges.append(max(0.0, margin - positive + float(scores[other, anchor])))
        for hinges, out in ((image_hinges, per_image), (text_hinges, per_text)):
            if not hinges:
                out.append(0.0)
            else:
                out.append(max(hinges) if hardest else sum(hinges) / len(hinges))
    return sum(per_image) / size + sum(per_text) / size


def test_hand_computed_hardest_negatives() -> None:
    # margin 0.5. Image anchors (rows), negatives = texts of other persons:
    #   i0: pos .9, text 1 (.6): .5-.9+.6 = .2             (text 2 is the same person: skipped,
    #       it would have given .4)                         -> .2
    #   i1: pos .7, text 0: .5-.7+.2 = 0, text 2: .5-.7+.5 = .3 -> .3
    #   i2: pos .4, text 1: .5-.4+.3 = .4                   -> .4    mean .3
    # Text anchors (columns), negatives = images of other persons:
    #   t0: pos .9, image 1: .5-.9+.2 < 0                   -> 0
    #   t1: pos .7, image 0: .5-.7+.6 = .4, image 2: .1      -> .4
    #   t2: pos .4, image 1: .5-.4+.5 = .6                  -> .6    mean 1/3
    loss = ranking_loss_from_scores(SCORES, PIDS, margin=0.5, hardest=True)
    assert loss.item() == pytest.approx(0.3 + 1 / 3, abs=1e-6)


def test_hand_computed_mean_over_negatives() -> None:
    # the same hinges averaged per anchor: images (.2 + .15 + .4) / 3, texts (0 + .25 + .6) / 3
    loss = ranking_loss_from_scores(SCORES, PIDS, margin=0.5, hardest=False)
    assert loss.item() == pytest.approx(0.75 / 3 + 0.85 / 3, abs=1e-6)


def test_without_pids_every_other_pair_is_a_negative() -> None:
    # now i0 takes text 2 (.5-.9+.8 = .4), i2 text 1 (.4); t2 takes image 0 (.5-.4+.8 = .9):
    # images (.4 + .3 + .4) / 3, texts (0 + .4 + .9) / 3
    loss = ranking_loss_from_scores(SCORES, None, margin=0.5)
    assert loss.item() == pytest.approx(2.4 / 3, abs=1e-6)


@pytest.mark.parametrize("hardest", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_the_naive_loop_on_random_features(hardest: bool, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    image, text = torch.randn(7, 5, generator=gen), torch.randn(7, 5, generator=gen)
    pids = [0, 1, 0, 2, 3, 3, 1]
    scores = torch.nn.functional.normalize(image, dim=1) @ \
        torch.nn.functional.normalize(text, dim=1).t()
    expected = naive_ranking(scores, pids, margin=0.2, hardest=hardest)
    got = ranking_loss(image, text, torch.tensor(pids), margin=0.2, hardest=hardest)
    assert math.isclose(got.item(), expected, abs_tol=1e-5)


def test_gradient_pulls_the_positive_up_and_the_hardest_negative_down() -> None:
    scores = SCORES.clone().requires_grad_(True)
    ranking_loss_from_scores(scores, PIDS, margin=0.5).backward()
    grad = scores.grad
    assert grad[1, 1] < 0 and grad[1, 2] > 0  # anchor i1: positive up, text 2 down
    assert grad[0, 2] == 0 and grad[2, 0] == 0  # same person: never pushed apart
    assert grad[1, 0] == 0  # not the hardest negative of anything
