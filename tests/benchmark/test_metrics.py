"""Metrics: the worked example of FACTS.md section 2 and a naive reference with ties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.evaluation.metrics import rank_chunk, rank_queries, retrieval_metrics, summarize


def naive_metrics(sim: np.ndarray, qpids: np.ndarray, gpids: np.ndarray) -> dict[str, float]:
    """One query at a time, straight from the definitions; ties broken by gallery index."""
    r1 = r5 = r10 = 0
    aps, inps = [], []
    for i in range(sim.shape[0]):
        # Python's sort is stable: equal scores keep gallery index order.
        order = sorted(range(sim.shape[1]), key=lambda j: -sim[i, j])
        hits = [gpids[j] == qpids[i] for j in order]
        first = hits.index(True) + 1
        r1 += first <= 1
        r5 += first <= 5
        r10 += first <= 10
        precisions, seen = [], 0
        for rank, hit in enumerate(hits, start=1):
            if hit:
                seen += 1
                precisions.append(seen / rank)
        aps.append(sum(precisions) / len(precisions))
        last = max(rank for rank, hit in enumerate(hits, start=1) if hit)
        inps.append(sum(hits) / last)
    n = sim.shape[0]
    return {
        "R@1": 100 * r1 / n, "R@5": 100 * r5 / n, "R@10": 100 * r10 / n,
        "mAP": 100 * float(np.mean(aps)), "mINP": 100 * float(np.mean(inps)),
        "Rsum": 100 * (r1 + r5 + r10) / n,
    }


def test_worked_example_of_facts():
    # q1 (pid A), q2 (pid B); gallery pids [A, B, A].
    sim = torch.tensor([[0.9, 0.8, 0.1], [0.7, 0.2, 0.6]])
    m = retrieval_metrics(sim, [0, 1], [0, 1, 0])
    assert m["R@1"] == 50.0
    assert m["R@5"] == 100.0
    assert m["R@10"] == 100.0
    assert m["mAP"] == pytest.approx(58.3333333, abs=1e-6)  # (1 + 2/3)/2 and 1/3 -> 58.33
    assert m["mINP"] == 50.0  # q1: 2/3 ... q2: 1/3 -> (2/3 + 1/3)/2
    assert m["Rsum"] == 250.0
    assert m["num_queries"] == 2


def test_ties_keep_gallery_index_order():
    # All scores equal: the ranking is the gallery order, so the positive at index 2 is rank 3.
    sim = torch.zeros(1, 4)
    stats = rank_chunk(sim, torch.tensor([7]), torch.tensor([1, 2, 7, 7]), keep_topk=4)
    assert stats.first_rank.tolist() == [3]
    assert stats.topk.tolist() == [[0, 1, 2, 3]]
    assert stats.ap[0] == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert stats.inp[0] == pytest.approx(2 / 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_naive_reference_on_random_scores_with_ties(seed):
    rng = np.random.default_rng(seed)
    q, g, ids = 37, 53, 9
    gpids = rng.integers(0, ids, g)
    qpids = rng.choice(gpids, q)  # every query has a positive
    sim = rng.integers(0, 6, (q, g)).astype(np.float32)  # few values: many ties
    expected = naive_metrics(sim, qpids, gpids)
    for chunk in (1, 5, 37, 100):
        got = retrieval_metrics(sim, qpids, gpids, chunk=chunk)
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, abs=1e-9), (key, chunk)


def test_subsets_weight_back_to_the_whole():
    rng = np.random.default_rng(3)
    gpids = rng.integers(0, 5, 40)
    qpids = rng.choice(gpids, 30)
    sim = torch.as_tensor(rng.normal(size=(30, 40)))
    stats = rank_queries(sim, torch.as_tensor(qpids), torch.as_tensor(gpids), chunk=7)
    mask = rng.random(30) < 0.4
    whole, a, b = summarize(stats), summarize(stats.subset(mask)), summarize(stats.subset(~mask))
    for key in ("R@1", "R@5", "R@10", "mAP", "mINP", "Rsum"):
        combined = (a[key] * a["num_queries"] + b[key] * b["num_queries"]) / 30
        assert combined == pytest.approx(whole[key], abs=1e-9)


def test_query_without_positive_is_refused():
    with pytest.raises(ValueError, match="no positive"):
        rank_chunk(torch.zeros(1, 2), torch.tensor([5]), torch.tensor([1, 2]))
