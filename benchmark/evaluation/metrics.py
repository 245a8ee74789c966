"""Retrieval metrics as pure functions of a similarity matrix: R@K, mAP, mINP and Rsum.

Definitions (``shared/design/FACTS.md`` section 2): per query the whole gallery is sorted by
similarity, descending; positives are the gallery items with the query's person id.

- R@K: percentage of queries with a positive among the top K.
- AP: mean over the positives of the precision at that positive's rank; mAP is the mean AP.
- INP: number of positives divided by the (1-based) rank of the last positive; mINP its mean.
- Rsum = R@1 + R@5 + R@10 (the MGCC paper).

Ties: items with equal similarity keep gallery index order (a *stable* descending sort), which is
what argsort-based T-ReID code does; a tie therefore never helps or hurts by chance, and the
result does not depend on the hardware.

The work is split in two so that the full query x gallery matrix is never needed:
:func:`rank_chunk` turns one chunk of queries into per-query statistics (first-hit rank, AP,
INP), and :func:`summarize` averages any subset of those per-query statistics into percentages.
Averages of disjoint subsets weighted by their sizes sum back to the whole (tested).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

#: The K of the R@K columns of Table 2.
DEFAULT_KS: tuple[int, ...] = (1, 5, 10)


@dataclass
class QueryStats:
    """Per-query results of ranking: enough to compute every metric of any subset of queries.

    Attributes:
        first_rank: 1-based rank of the first positive of each query (int64 [Q]).
        ap: average precision of each query in [0, 1] (float64 [Q]).
        inp: inverse negative penalty of each query in [0, 1] (float64 [Q]).
        topk: gallery indices of the best ``k`` items of each query (int64 [Q, k]), kept for
            displays such as ``bench query``; may have zero columns.
    """

    first_rank: np.ndarray
    ap: np.ndarray
    inp: np.ndarray
    topk: np.ndarray

    def __len__(self) -> int:
        return int(self.first_rank.shape[0])

    def subset(self, mask: np.ndarray) -> QueryStats:
        """The statistics of the queries where ``mask`` is true."""
        return QueryStats(self.first_rank[mask], self.ap[mask], self.inp[mask], self.topk[mask])

    @classmethod
    def cat(cls, parts: list[QueryStats]) -> QueryStats:
        """Concatenate chunks in query order."""
        if not parts:
            return cls(
                np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros((0, 0), np.int64)
            )
        return cls(
            np.concatenate([p.first_rank for p in parts]),
            np.concatenate([p.ap for p in parts]),
            np.concatenate([p.inp for p in parts]),
            np.concatenate([p.topk for p in parts]),
        )


def stable_descending_order(similarity: torch.Tensor) -> torch.Tensor:
    """Gallery indices sorted by similarity, descending, ties kept in gallery index order."""
    return torch.sort(similarity, dim=1, descending=True, stable=True).indices


def rank_chunk(
    similarity: torch.Tensor,
    query_pids: torch.Tensor,
    gallery_pids: torch.Tensor,
    *,
    keep_topk: int = 0,
) -> QueryStats:
    """Rank the whole gallery for a chunk of queries and return per-query statistics.

    Memory is a few times the chunk (``[q, G]``), so callers bound memory by the chunk size.

    Args:
        similarity: ``[q, G]`` scores, higher is more similar (any float dtype; compared in
            float32 or better so that fp16 ties are not invented).
        query_pids: ``[q]`` person id of each query.
        gallery_pids: ``[G]`` person id of each gallery item.
        keep_topk: how many top gallery indices to keep per query (for displays).

    Raises:
        ValueError: a query has no positive in the gallery (its AP and INP are undefined; the
            T-ReID protocol always has one, so this is a bug in the caller's split).
    """
    if similarity.dim() != 2:
        raise ValueError(f"similarity must be [Q, G], got shape {tuple(similarity.shape)}")
    q, g = similarity.shape
    if query_pids.shape[0] != q or gallery_pids.shape[0] != g:
        raise ValueError(
            f"pids do not match the similarity shape {tuple(similarity.shape)}: "
            f"{query_pids.shape[0]} query pids, {gallery_pids.shape[0]} gallery pids"
        )
    scores = similarity.detach()
    if scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()
    device = scores.device
    order = stable_descending_order(scores)
    matches = gallery_pids.to(device)[order] == query_pids.to(device)[:, None]  # [q, G] bool
    num_pos = matches.sum(dim=1)
    if bool((num_pos == 0).any()):
        bad = int(torch.nonzero(num_pos == 0)[0, 0])
        raise ValueError(f"query {bad} of the chunk has no positive in the gallery")
    ranks = torch.arange(1, g + 1, device=device, dtype=torch.float64)
    cum_hits = matches.cumsum(dim=1, dtype=torch.float64)
    precision_at_hits = torch.where(matches, cum_hits / ranks, torch.zeros((), dtype=torch.float64,
                                                                          device=device))
    ap = precision_at_hits.sum(dim=1) / num_pos
    first_rank = matches.to(torch.int8).argmax(dim=1) + 1
    last_rank = g - matches.flip(1).to(torch.int8).argmax(dim=1)
    inp = num_pos.double() / last_rank.double()
    topk = order[:, : min(keep_topk, g)]
    return QueryStats(
        first_rank=first_rank.cpu().numpy().astype(np.int64),
        ap=ap.cpu().numpy(),
        inp=inp.cpu().numpy(),
        topk=topk.cpu().numpy().astype(np.int64),
    )


def rank_queries(
    similarity: torch.Tensor,
    query_pids: torch.Tensor,
    gallery_pids: torch.Tensor,
    *,
    chunk: int = 1024,
    keep_topk: int = 0,
) -> QueryStats:
    """:func:`rank_chunk` over a full similarity matrix, ``chunk`` queries at a time."""
    parts = [
        rank_chunk(similarity[i : i + chunk], query_pids[i : i + chunk], gallery_pids,
                   keep_topk=keep_topk)
        for i in range(0, similarity.shape[0], chunk)
    ]
    return QueryStats.cat(parts)


def summarize(stats: QueryStats, ks: tuple[int, ...] = DEFAULT_KS) -> dict[str, float]:
    """Percentages of a set of queries: ``R@K`` for each K, ``mAP``, ``mINP``, ``Rsum``.

    ``Rsum`` is R@1 + R@5 + R@10 whatever ``ks`` is, as the MGCC paper defines it.
    ``num_queries`` is included so that subsets can be weighted back into the whole.
    """
    n = len(stats)
    out: dict[str, float] = {}
    if n == 0:
        for k in ks:
            out[f"R@{k}"] = float("nan")
        out.update({"mAP": float("nan"), "mINP": float("nan"), "Rsum": float("nan"),
                    "num_queries": 0})
        return out
    recall = {k: 100.0 * float(np.mean(stats.first_rank <= k)) for k in set(ks) | {1, 5, 10}}
    for k in ks:
        out[f"R@{k}"] = recall[k]
    out["mAP"] = 100.0 * float(np.mean(stats.ap))
    out["mINP"] = 100.0 * float(np.mean(stats.inp))
    out["Rsum"] = recall[1] + recall[5] + recall[10]
    out["num_queries"] = n
    return out


def retrieval_metrics(
    similarity: torch.Tensor | np.ndarray,
    query_pids: torch.Tensor | np.ndarray,
    gallery_pids: torch.Tensor | np.ndarray,
    *,
    ks: tuple[int, ...] = DEFAULT_KS,
    chunk: int = 1024,
) -> dict[str, float]:
    """All metrics of a full ``[Q, G]`` similarity matrix (convenience for small problems)."""
    sim = torch.as_tensor(similarity)
    qp = torch.as_tensor(np.asarray(query_pids))
    gp = torch.as_tensor(np.asarray(gallery_pids))
    return summarize(rank_queries(sim, qp, gp, chunk=chunk), ks)


#: The metrics a sweep reports, in table order.
METRICS: tuple[str, ...] = ("R@1", "R@5", "R@10", "mAP", "mINP", "Rsum")


def mean_std_over_seeds(values: Sequence[dict[str, float]]
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Mean and sample std (``None`` for one seed or a NaN) of each metric over seeds' results;
    shared by the occlusion and the corruption sweeps."""
    mean: dict[str, Any] = {}
    std: dict[str, Any] = {}
    for metric in METRICS:
        data = np.asarray([v[metric] for v in values], dtype=np.float64)
        mean[metric] = float(data.mean())
        spread = float(data.std(ddof=1)) if len(data) > 1 else None
        std[metric] = None if spread is None or math.isnan(spread) else spread
    return mean, std
