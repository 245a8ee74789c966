"""SSAN's compound ranking (CR) loss (Ding et al., 2021, Sec. 3.4; code: zifyloo/SSAN).

A bidirectional triplet loss on cosine similarities, computed twice:

* strong supervision: image ``i`` with its own caption ``i`` (margin ``alpha``, 0.2);
* weak supervision: image ``i`` with *another* caption of the same person (weight ``beta``,
  0.1): descriptions of one person by different annotators describe the same body, so they
  should also rank above other persons' captions, but by a smaller margin. The margin is
  ``alpha / 2`` for the first epochs, then adaptive per anchor:
  ``(min(|s_weak| / |s_strong|, 1) + 1) * alpha / 2`` (the weak pair's similarity relative to
  the strong one, detached), and anchors whose adaptive margin is below ``min_margin`` (0.16)
  are dropped: their other caption is too unlike their own to be a useful positive.

Negatives are semi-hard and one per anchor, as in SSAN's code: among the other persons' samples
whose hinge ``s_neg - s_pos + margin`` lies strictly between 0 and the margin (less similar than
the positive, but within the margin), one is drawn at random; an anchor with none contributes
nothing. The hinges are summed over anchors and both directions (SSAN sums too).

SSAN's code differs in two corner cases that we do not copy: its adaptive factor becomes 2
(not 1) when the two similarities are exactly equal, and when no anchor has a semi-hard
negative it adds one arbitrary triplet instead of returning zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def cosine_scores(image: Tensor, text: Tensor) -> Tensor:
    """``[B, B]`` cosine similarities of flattened features (parts concatenated), images as rows."""
    image = F.normalize(image.flatten(1).float(), dim=-1, eps=1e-8)
    text = F.normalize(text.flatten(1).float(), dim=-1, eps=1e-8)
    return image @ text.t()


def semi_hard_triplet_loss(scores: Tensor, pids: Tensor, margins: Tensor,
                           anchors: Tensor | None = None) -> Tensor:
    """Sum over anchors (rows, and then columns as anchors) of one random semi-hard hinge.

    Args:
        scores: ``[B, B]``, ``scores[i, i]`` the positive pair of anchor ``i``.
        pids: ``[B]``; samples of the anchor's person are never negatives.
        margins: ``[B]`` the margin of each anchor.
        anchors: ``[B]`` bool, the anchors that take part (default: all).
    """
    total = scores.new_zeros(())
    negative = pids.unsqueeze(0) != pids.unsqueeze(1)
    use = torch.ones_like(pids, dtype=torch.bool) if anchors is None else anchors
    for matrix in (scores, scores.t()):
        hinge = matrix - matrix.diagonal().unsqueeze(1) + margins.unsqueeze(1)
        with torch.no_grad():
            margin_col = margins.unsqueeze(1)
            candidates = negative & (hinge > 0) & (hinge < margin_col) & use.unsqueeze(1)
            rows = candidates.any(dim=1).nonzero().squeeze(1)
        if rows.numel() == 0:
            continue
        picked = torch.multinomial(candidates[rows].float(), 1).squeeze(1)
        total = total + hinge[rows, picked].clamp_min(0).sum()
    return total


def compound_ranking_terms(image: Tensor, text: Tensor, weak_text: Tensor, pids: Tensor,
                           has_weak: Tensor, margin: float = 0.2, beta: float = 0.1,
                           adaptive: bool = True,
                           min_margin: float = 0.16) -> tuple[Tensor, Tensor]:
    """SSAN's CR loss of one feature level as its two terms: ``(strong, beta * weak)`` (see the
    module docstring), apart so that a run can log the weak term.

    Args:
        image, text: ``[B, ...]`` matched features (row ``i`` of each is pair ``i``).
        weak_text: ``[B, ...]`` for each image, another caption of the same person.
        has_weak: ``[B]`` bool, False where there is no other caption of that person.
        adaptive: the adaptive weak margin (SSAN: after its first 5 epochs); False:
            ``margin / 2``.
    """
    strong = cosine_scores(image, text)
    margins = torch.full_like(pids, float(margin), dtype=strong.dtype)
    loss = semi_hard_triplet_loss(strong, pids, margins)
    if not bool(has_weak.any()) or beta == 0:
        return loss, loss.new_zeros(())
    weak = cosine_scores(image, weak_text)
    with torch.no_grad():
        if adaptive:
            ratio = weak.diagonal().abs() / strong.diagonal().abs().clamp_min(1e-12)
            weak_margins = (ratio.clamp(max=1.0) + 1.0) * margin / 2
            use = has_weak & (weak_margins >= min_margin)
        else:
            weak_margins, use = margins / 2, has_weak
    return loss, beta * semi_hard_triplet_loss(weak, pids, weak_margins, use)


def compound_ranking_loss(image: Tensor, text: Tensor, weak_text: Tensor, pids: Tensor,
                          has_weak: Tensor, margin: float = 0.2, beta: float = 0.1,
                          adaptive: bool = True, min_margin: float = 0.16) -> Tensor:
    """SSAN's CR loss of one feature level: the sum of :func:`compound_ranking_terms`."""
    strong, weak = compound_ranking_terms(image, text, weak_text, pids, has_weak, margin, beta,
                                          adaptive, min_margin)
    return strong + weak


def hard_triplet_loss(scores: Tensor, pids: Tensor, margin: float) -> Tensor:
    """The hard-negative form of SSAN's ``CRLoss`` (``semi=False``; CFine reuses it on its
    cross- and fine-grained similarities, ``utils/CRLoss.py`` of shuanglinyan/CFine).

    For each row anchor ``i`` (then each column anchor, on ``scores.T``) the positive is the
    matched pair ``scores[i, i]`` and the candidate negatives are the other persons' entries.
    The anchor takes part only when its hardest negative *outranks* its positive
    (``s_neg - s_pos + margin > margin``); it then adds ``margin - s_pos + max s_neg``. The hinges
    are summed over anchors and both directions. When no anchor of a direction takes part, that
    direction adds the hinge of its last anchor with its first negative, clamped at 0 (the
    code's fallback, which keeps its triplet list non-empty).

    Args:
        scores: ``[B, B]`` similarities, ``scores[i, i]`` the matched pair ``i``.
        pids: ``[B]`` person ids; same-id entries are never negatives.
        margin: the hinge margin (CFine: 0.2).
    """
    scores = scores.float()
    batch = scores.shape[0]
    if scores.shape != (batch, batch):
        raise ValueError(f"scores must be square, got {tuple(scores.shape)}")
    negative = pids.view(-1, 1) != pids.view(1, -1)
    total = scores.new_zeros(())
    for matrix in (scores, scores.t()):
        positive = matrix.diagonal()
        hardest = matrix.masked_fill(~negative, float("-inf")).max(dim=1)
        anchors = (hardest.values > positive).nonzero().squeeze(1)
        if anchors.numel() > 0:
            total = total + (margin - positive[anchors] + hardest.values[anchors]).sum()
            continue
        last = batch - 1
        negatives = negative[last].nonzero().squeeze(1)
        if negatives.numel() > 0:
            hinge = margin - positive[last] + matrix[last, negatives[0]]
            total = total + hinge.clamp(min=0)
    return total
