"""Two-stage retrieval: a cheap first stage ranks the whole gallery, a costly second stage
re-scores each query's top K (RaSa, APTM: contrastive cosine, then a cross-encoder's ITM).

The seam a model declares (and that the gallery-search code can call on its own index):

* ``rerank_k`` (int, from the model config): how many first-stage candidates the second stage
  sees; 0 turns the second stage off.
* ``first_stage_similarity(text, image) -> [Q, G]``: the first stage on any chunk.
* ``second_stage_scores(text, image, first, top) -> [Q, K]``: the second stage's scores of
  the candidates ``top`` ``[Q, K]`` (gallery indices into ``image``), given the first
  stage's ``[Q, G]`` block (APTM adds a small share of it).

:func:`two_stage_similarity` puts them together into one ``[Q, G]`` matrix whose order is the
second stage's inside each query's top K and the first stage's below it: every candidate
scores above every non-candidate, and non-candidates keep their first-stage order. (RaSa's and
APTM's code give every non-candidate one constant, so their order there is whatever the sort
does with ties; R@K for K <= ``rerank_k`` is the same either way.) A model's ``similarity``
calls it on the whole gallery, so ``bench eval``, ``bench robustness``, ``bench query`` and the
report all rank in two stages with no code of their own.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from models.features import ImageFeatures, TextFeatures

#: the gap kept between the lowest candidate and the highest non-candidate
_GAP = 1.0


@runtime_checkable
class TwoStageModel(Protocol):
    """What a two-stage model offers besides :class:`models.base.RetrievalModel`."""

    @property
    def rerank_k(self) -> int: ...

    def first_stage_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor: ...

    def second_stage_scores(self, text: TextFeatures, image: ImageFeatures, first: Tensor,
                            top: Tensor) -> Tensor: ...


def place_below(first: Tensor, top: Tensor, second: Tensor) -> Tensor:
    """``[Q, G]`` scores: ``second`` at the ``top`` positions, every other gallery item below
    the row's lowest candidate in its first-stage order (a shift of ``first``)."""
    out = first.float().clone()
    lowest_candidate = second.float().min(dim=1, keepdim=True).values
    highest_other = out.max(dim=1, keepdim=True).values
    out = out - highest_other + lowest_candidate - _GAP
    out.scatter_(1, top, second.float())
    return out


def two_stage_similarity(model: TwoStageModel, text: TextFeatures,
                         image: ImageFeatures) -> Tensor:
    """First stage over ``image``; when ``rerank_k > 0``, the second stage on each row's top
    ``min(rerank_k, G)`` (ties in the first stage go to the lower gallery index)."""
    first = model.first_stage_similarity(text, image).float()
    k = min(int(model.rerank_k), first.shape[1])
    if k <= 0:
        return first
    top = torch.sort(first, dim=1, descending=True, stable=True).indices[:, :k]
    second = model.second_stage_scores(text, image, first, top)
    return place_below(first, top, second)
