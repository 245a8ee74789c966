"""The bidirectional ranking (triplet) loss with hardest negatives (VSE++; Dual-Path stage II).

For a batch of matched image/text pairs with similarity ``s(i, j)`` of image ``i`` and text ``j``,
each pair ``i`` is an anchor twice:

* image anchor: ``[margin - s(i, i) + s(i, j)]_+`` over the texts ``j`` of other persons;
* text anchor:  ``[margin - s(i, i) + s(j, i)]_+`` over the images ``j`` of other persons.

``hardest=True`` keeps, per anchor, only the largest hinge (the hardest negative of the batch,
Faghri et al., VSE++, 2018), which is the form Dual-Path's journal version uses (Zheng et al.,
TOMM 2020, Eq. for L_rank, margin alpha = 1); ``hardest=False`` averages the hinges over all
negatives instead (the "sum of hinges" form, scaled so that the loss does not grow with the
batch). Pairs of the same person are never negatives: a person-search batch often holds two
captions or two images of one identity, and pushing those apart would fight the instance loss.

Reduction: the two directions are added and averaged over the anchors of the batch. VSE++ and
Dual-Path's released code sum over the batch, but MatConvNet (Dual-Path's framework) divides
the gradients by the batch size, so the mean is what it optimises; the mean also keeps the loss
weight independent of the batch size.

:func:`semi_hard_ranking_loss_from_scores` is LGUR's variant: one randomly drawn semi-hard
negative per anchor, hinges summed (see its docstring).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def ranking_loss_from_scores(
    scores: Tensor, pids: Tensor | None = None, margin: float = 1.0, hardest: bool = True,
) -> Tensor:
    """The ranking loss of a square score matrix.

    Args:
        scores: ``[B, B]`` similarities, rows images, columns texts; ``scores[i, i]`` is the
            matched pair ``i``.
        pids: ``[B]`` person ids; same-id pairs are excluded from the negatives. ``None``: only
            the diagonal is positive (each pair its own class).
        margin: the hinge margin (Dual-Path: 1 on cosine similarities).
        hardest: max over negatives (VSE++) or mean over negatives.
    """
    scores = scores.float()
    batch = scores.shape[0]
    if scores.shape != (batch, batch):
        raise ValueError(f"scores must be square, got {tuple(scores.shape)}")
    if pids is None:
        same = torch.eye(batch, dtype=torch.bool, device=scores.device)
    else:
        same = pids.view(-1, 1) == pids.view(1, -1)
    positive = scores.diagonal()
    # image anchor i against text j (row i); text anchor j against image i (column j)
    cost_texts = (margin - positive.view(-1, 1) + scores).clamp(min=0).masked_fill(same, 0.0)
    cost_images = (margin - positive.view(1, -1) + scores).clamp(min=0).masked_fill(same, 0.0)
    if hardest:
        per_image = cost_texts.max(dim=1).values
        per_text = cost_images.max(dim=0).values
    else:
        negatives = (~same).sum(dim=1).clamp(min=1)
        per_image = cost_texts.sum(dim=1) / negatives
        per_text = cost_images.sum(dim=0) / negatives  # ``same`` is symmetric
    return per_image.mean() + per_text.mean()


def ranking_loss(
    image: Tensor, text: Tensor, pids: Tensor | None = None, margin: float = 1.0,
    hardest: bool = True,
) -> Tensor:
    """The ranking loss on the cosine similarity of ``[B, D]`` image and text features of
    matched pairs (row ``i`` with row ``i``); see :func:`ranking_loss_from_scores`."""
    scores = F.normalize(image.float(), dim=-1) @ F.normalize(text.float(), dim=-1).t()
    return ranking_loss_from_scores(scores, pids, margin=margin, hardest=hardest)



def _semi_hard_direction(scores: Tensor, pids: Tensor, margin: float,
                         generator: torch.Generator | None) -> Tensor:
    """Sum over the row anchors of ``scores`` of one sampled semi-hard triplet each (see
    :func:`semi_hard_ranking_loss_from_scores`)."""
    batch = scores.shape[0]
    with torch.no_grad():
        negative = pids.view(-1, 1) != pids.view(1, -1)
        cost = scores - scores.diagonal().view(-1, 1) + margin
        candidate = negative & (cost > 0) & (cost < margin)
        count = candidate.sum(dim=1)
        draw = torch.rand(batch, generator=generator, device="cpu").to(scores.device)
        pick = (draw * count).floor().long().clamp(max=(count - 1).clamp(min=0))
        rank = candidate.long().cumsum(dim=1) - 1
        chosen = (candidate & (rank == pick.view(-1, 1))).float().argmax(dim=1)
        anchors = torch.nonzero(count > 0).flatten()
        if anchors.numel() == 0:  # no semi-hard negative at all: the last anchor's first negative
            last = batch - 1
            negatives = torch.nonzero(negative[last]).flatten()
            if negatives.numel() == 0:
                return scores.sum() * 0.0
            anchors, chosen = torch.tensor([last], device=scores.device), negatives[:1]
        else:
            chosen = chosen[anchors]
    hinge = margin - scores[anchors, anchors] + scores[anchors, chosen]
    return hinge.clamp(min=0).sum()


def semi_hard_ranking_loss_from_scores(
    scores: Tensor, pids: Tensor, margin: float = 0.3,
    generator: torch.Generator | None = None,
) -> Tensor:
    """LGUR's bidirectional ranking loss with one random semi-hard negative per anchor
    (``loss/RankingLoss.py`` of ZhiyinShao-H/LGUR, read to learn).

    For each row anchor ``i`` (and, on ``scores.T``, each column anchor), the positive is the
    matched pair ``scores[i, i]`` and the candidates are the other persons' columns whose hinge
    ``s(i, j) - s(i, i) + margin`` lies strictly between 0 and ``margin`` (semi-hard: ranked below
    the positive but inside the margin); one is drawn uniformly (``floor(u * count)``-th in
    column order, ``u ~ U[0, 1)`` from ``generator``, one draw per anchor, rows then columns).
    Anchors without a candidate add nothing; if no anchor of a direction has one, that direction
    adds the hinge of its last anchor with its first negative (the release's fallback). The
    hinges are summed, not averaged, as the release does.

    Args:
        scores: ``[B, B]`` similarities of matched rows and columns (row ``i`` pairs with
            column ``i``); gradients flow through the chosen entries.
        pids: ``[B]`` person ids; same-id entries are never negatives.
        margin: the hinge margin (LGUR: 0.3).
        generator: the random source of the draws (``None``: torch's global one).
    """
    scores = scores.float()
    batch = scores.shape[0]
    if scores.shape != (batch, batch):
        raise ValueError(f"scores must be square, got {tuple(scores.shape)}")
    return (_semi_hard_direction(scores, pids, margin, generator)
            + _semi_hard_direction(scores.t(), pids, margin, generator))
