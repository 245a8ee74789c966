"""The hard-negative triplet loss of SSAN's ``CRLoss`` (``semi=False``), as CFine trains with it:
against the code's own loop (numpy, per anchor) and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.losses import hard_triplet_loss


def _naive(scores: torch.Tensor, pids: list[int], margin: float) -> float:
    """``utils/CRLoss.py``'s ``get_triplets`` + ``calculate_loss``, one anchor at a time."""
    labels = np.array(pids)

    def direction(sim: np.ndarray) -> float:
        triplets = []
        for idx, label in enumerate(labels):
            negative = np.where(labels != label)[0]
            loss = sim[idx, negative] - sim[idx, idx] + margin
            if np.any(np.logical_and(loss > margin, loss > 0)):
                triplets.append((idx, negative[int(np.argmax(loss))]))
        if not triplets:
            triplets.append((idx, negative[0]))
        return sum(max(0.0, margin - sim[a, a] + sim[a, n]) for a, n in triplets)

    matrix = scores.double().numpy()
    return direction(matrix) + direction(matrix.T)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hard_triplet_equals_the_code_loop(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(6, 6, generator=gen)
    pids = [0, 1, 1, 2, 3, 0]
    got = hard_triplet_loss(scores, torch.tensor(pids), margin=0.2)
    assert float(got) == pytest.approx(_naive(scores, pids, 0.2), abs=1e-5)
    # a strongly matched batch: no anchor qualifies, the fallback triplet decides
    calm = torch.eye(6) * 5 + scores * 0.01
    got = hard_triplet_loss(calm, torch.tensor(pids), margin=5.1)
    assert float(got) == pytest.approx(_naive(calm, pids, 5.1), abs=1e-5)
    assert float(got) > 0


def test_hard_triplet_hand_cases() -> None:
    pids = torch.tensor([0, 1])
    # rows: anchor 0's negative 0.9 outranks its positive 0.5 -> 0.2 - 0.5 + 0.9 = 0.6; anchor 1
    # (0.1 < 0.2) does not take part. Columns: anchor 1's negative 0.9 > 0.2 -> 0.9
    scores = torch.tensor([[0.5, 0.9], [0.1, 0.2]], requires_grad=True)
    loss = hard_triplet_loss(scores, pids, margin=0.2)
    assert float(loss.detach()) == pytest.approx(1.5)
    loss.backward()
    assert scores.grad.tolist() == [[-1.0, 2.0], [0.0, -1.0]]
    # a negative inside the margin but below the positive takes no part (semi-hard is not hard);
    # with no anchor left, each direction adds its last anchor's first negative, clamped at 0:
    # rows 0.3 - 0.6 + 0.1 < 0 -> 0; columns 0.3 - 0.6 + 0.4 = 0.1
    calm = torch.tensor([[0.5, 0.4], [0.1, 0.6]])
    assert float(hard_triplet_loss(calm, pids, margin=0.3)) == pytest.approx(0.1)
    # same-id entries are never negatives
    assert float(hard_triplet_loss(scores.detach(), torch.tensor([3, 3]), margin=0.2)) == 0.0
