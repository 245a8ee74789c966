"""CMPM, CMPC and the identity loss against naive loops and hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from models.losses import cmpc_loss, cmpm_loss, identity_loss


def _naive_cmpm(x: torch.Tensor, z: torch.Tensor, pids: list[int], eps: float = 1e-8) -> float:
    n = len(pids)

    def one_direction(a: torch.Tensor, b: torch.Tensor) -> float:
        total = 0.0
        for i in range(n):
            logits = [float(a[i] @ b[j]) / float(b[j].norm()) for j in range(n)]
            top = max(logits)
            denom = sum(math.exp(v - top) for v in logits)
            matches = sum(1 for k in range(n) if pids[k] == pids[i])
            for j in range(n):
                p = math.exp(logits[j] - top) / denom
                q = (1.0 if pids[j] == pids[i] else 0.0) / matches
                total += p * math.log(p / (q + eps))
        return total / n

    return one_direction(x, z) + one_direction(z, x)


def _naive_cross_entropy(logits: list[float], label: int) -> float:
    top = max(logits)
    return -(logits[label] - top - math.log(sum(math.exp(v - top) for v in logits)))


def _naive_cmpc(x: torch.Tensor, z: torch.Tensor, pids: list[int], w: torch.Tensor) -> float:
    n, classes = len(pids), w.shape[1]
    columns = [w[:, c] / w[:, c].norm() for c in range(classes)]

    def one_direction(a: torch.Tensor, b: torch.Tensor) -> float:
        total = 0.0
        for i in range(n):
            direction = b[i] / b[i].norm()
            projected = float(a[i] @ direction) * direction
            total += _naive_cross_entropy([float(projected @ c) for c in columns], pids[i])
        return total / n

    return one_direction(x, z) + one_direction(z, x)


@pytest.mark.parametrize("seed", [0, 1])
def test_cmpm_and_cmpc_equal_naive_loops(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x, z = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    pids = [0, 1, 0, 2, 1, 3]  # repeated ids: several matches per row
    w = torch.randn(5, 4, generator=gen)
    assert cmpm_loss(x, z, torch.tensor(pids)).item() == pytest.approx(
        _naive_cmpm(x, z, pids), abs=1e-5)
    assert cmpc_loss(x, z, torch.tensor(pids), w).item() == pytest.approx(
        _naive_cmpc(x, z, pids, w), abs=1e-5)


def test_cmpm_hand_computed() -> None:
    # x1 = (1, 0), x2 = (0, 1); z1 = (2, 0), z2 = (0, 3); two people.
    # image->text: logits x_i . z_bar_j = [[1, 0], [0, 1]]; row 1: p = (e/(e+1), 1/(e+1))
    #   = (0.731059, 0.268941), q = (1, 0):
    #   L = 0.731059 ln 0.731059 + 0.268941 ln(0.268941 / 1e-8) = -0.229013 + 4.600887
    #   = 4.371874; row 2 is the same, so L_i2t = 4.371874.
    # text->image: logits z_i . x_bar_j = [[2, 0], [0, 3]];
    #   row 1: p = (0.880797, 0.119203): -0.111798 + 0.119203 * 16.293753 = 1.830466;
    #   row 2: p = (0.047426, 0.952574): 0.047426 * 15.372094 - 0.046283 = 0.682754;
    #   L_t2i = (1.830466 + 0.682754) / 2 = 1.256610.
    # CMPM = 4.371874 + 1.256610 = 5.628484 (5.628490 in float32).
    x, z = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    assert cmpm_loss(x, z, torch.tensor([0, 1])).item() == pytest.approx(5.628484, abs=2e-5)
    # the same person twice: q = (1/2, 1/2) in both rows, so KL(p || q); i2t row 1 (and row 2):
    #   0.731059 ln 1.462117 + 0.268941 ln 0.537883 = 0.277718 - 0.166775 = 0.110943;
    # t2i row 1: 0.880797 ln 1.761594 + 0.119203 ln 0.238406 = 0.498724 - 0.170911 = 0.327813,
    #   row 2: 0.047426 ln 0.094852 + 0.952574 ln 1.905148 = -0.111708 + 0.614001 = 0.502293;
    #   mean 0.415053. CMPM = 0.110943 + 0.415053 = 0.525996
    assert cmpm_loss(x, z, torch.tensor([4, 4])).item() == pytest.approx(0.525996, abs=2e-5)


def test_cmpc_hand_computed() -> None:
    # Same x, z; W = identity (columns already unit). x_hat_1 = (x1 . z_bar_1) z_bar_1 = (1, 0):
    # logits (1, 0), class 0: -ln(e/(e+1)) = 0.313262; x_hat_2 = (0, 1), class 1: 0.313262.
    # z_hat_1 = (z1 . x_bar_1) x_bar_1 = (2, 0): -ln(e^2/(e^2+1)) = 0.126928;
    # z_hat_2 = (0, 3): -ln(e^3/(e^3+1)) = 0.048587; mean 0.087757.
    # CMPC = 0.313262 + 0.087757 = 0.401019. Scaling W's columns changes nothing (normalised).
    x, z = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    pids = torch.tensor([0, 1])
    assert cmpc_loss(x, z, pids, torch.eye(2)).item() == pytest.approx(0.401019, abs=2e-5)
    assert cmpc_loss(x, z, pids, 5 * torch.eye(2)).item() == pytest.approx(0.401019, abs=2e-5)


def test_identity_loss_naive_and_hand_computed() -> None:
    gen = torch.Generator().manual_seed(3)
    image, text = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    labels = [0, 3, 1, 1, 2]
    naive = sum(
        sum(_naive_cross_entropy(m[i].tolist(), labels[i]) for i in range(5)) / 5
        for m in (image, text)) / 2
    assert identity_loss(image, text, labels=torch.tensor(labels)).item() == pytest.approx(
        naive, abs=1e-5)
    # logits [[2, 0], [0, 0]], labels (0, 1): (-ln(e^2/(e^2+1)) + ln 2) / 2
    #   = (0.126928 + 0.693147) / 2 = 0.410038; a second modality of zeros: ln 2 = 0.693147;
    # mean over the two modalities: 0.551592.
    one = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    assert identity_loss(one, labels=torch.tensor([0, 1])).item() == pytest.approx(
        0.410038, abs=1e-5)
    assert identity_loss(one, torch.zeros(2, 2), labels=torch.tensor([0, 1])).item() == (
        pytest.approx(0.551592, abs=1e-5))


def test_cmpm_l2_matching_is_the_code_form_of_saf_and_cfine() -> None:
    """``match_norm="l2"``: ``q_ij = [y_i == y_j] / sqrt(n_i)`` (``labels_mask /
    labels_mask.norm(dim=1)``), a naive loop of that formula, and equal to the L1 form when
    every id appears once."""
    gen = torch.Generator().manual_seed(4)
    x, z = torch.randn(5, 6, generator=gen), torch.randn(5, 6, generator=gen)
    pids = [0, 1, 0, 2, 0]
    eps = 1e-8

    def one_direction(a: torch.Tensor, b: torch.Tensor) -> float:
        total = 0.0
        for i in range(5):
            logits = [float(a[i] @ b[j]) / float(b[j].norm()) for j in range(5)]
            top = max(logits)
            denom = sum(math.exp(v - top) for v in logits)
            matches = sum(1 for k in range(5) if pids[k] == pids[i])
            for j in range(5):
                p = math.exp(logits[j] - top) / denom
                q = (1.0 if pids[j] == pids[i] else 0.0) / math.sqrt(matches)
                total += p * (math.log(p) - math.log(q + eps))
        return total / 5

    got = cmpm_loss(x, z, torch.tensor(pids), match_norm="l2")
    assert float(got) == pytest.approx(one_direction(x, z) + one_direction(z, x), rel=1e-5)
    assert float(got) != pytest.approx(float(cmpm_loss(x, z, torch.tensor(pids))), rel=1e-3)
    distinct = torch.arange(5)
    torch.testing.assert_close(cmpm_loss(x, z, distinct, match_norm="l2"),
                               cmpm_loss(x, z, distinct))
    # hand case: two samples of one id, logits equal -> p = (1/2, 1/2), q = 1/sqrt(2):
    # each row sum_j p (log p - log q) = log(1/2) - log(1/sqrt 2) = -log(2) / 2
    same = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert float(cmpm_loss(same, same, torch.tensor([7, 7]), match_norm="l2")) == pytest.approx(
        -math.log(2), abs=1e-6)
    with pytest.raises(ValueError, match="match_norm"):
        cmpm_loss(x, z, distinct, match_norm="l3")
