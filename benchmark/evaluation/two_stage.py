"""Two-stage evaluation (``bench eval --rerank-k K``): rank the whole gallery by the model's
global first stage, re-score each query's top K with its full similarity, and report both
stages beside the exact evaluation.

Why: the exact evaluation of a fine-grained model (MGCC's fused similarity, NAFS, SAF, ...)
compares every caption with every image through token-level similarities, a cost of
``captions x images x tokens^2``; the first stage is one inner product per pair, and only
``captions x K`` pairs reach the costly second stage. This is what gallery search does
(:mod:`benchmark.search`), measured on a split whose truth is known.

How a truncated ranking is scored (recorded in every result as :data:`RANKING_RULE`): the K
candidates come first, in the second stage's order; every other gallery image follows in the
exact first-stage order (:func:`models.two_stage.place_below`). The ranking is therefore
complete, and mAP and mINP are computed on it as on the exact one. (RaSa's and APTM's code
give every non-candidate one constant score, so a positive below K is ranked wherever the sort
puts ties; keeping the first-stage order there is what a user searching a gallery sees.) Ties
go to the lower gallery index, as in :mod:`benchmark.evaluation.metrics`. With K equal to the
gallery size the ranking is the exact one, bit for bit: the candidates of a query are then
the whole gallery in its own order, scored by the same call as the exact evaluation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from benchmark.evaluation.metrics import QueryStats, rank_chunk, summarize
from models.two_stage import place_below

RANKING_RULE = ("top K by the full similarity (second stage); every other gallery image "
                "below them in exact first-stage order; R@k, mAP and mINP on that complete "
                "ranking; ties to the lower gallery index")


@torch.no_grad()
def rerank(model: torch.nn.Module, texts: Any, image_feats: Any, first: torch.Tensor,
           top: torch.Tensor, gallery_chunk: int | None = None) -> torch.Tensor:
    """Complete two-stage score rows ``[q, G]`` of a chunk of queries: each query's
    candidates ``top`` ``[q, K]`` (its first-stage best K, in any order) re-scored by
    ``model.similarity``, the rest placed below in first-stage order.

    Candidates are scored in ascending gallery order, one query at a time, except that
    consecutive queries with the same candidate set share one call (nothing outside a
    query's top K is scored either way); with K = G every query's candidates are the gallery
    in its own order, and the call is the exact evaluation's, bit for bit."""
    if top.shape[1] == 0 or not model.has_second_stage(image_feats[:1]):
        return first
    tops = torch.sort(top.to(first.device), dim=1).values
    out = torch.empty_like(first)
    start = 0
    while start < len(tops):
        stop = start + 1
        while stop < len(tops) and torch.equal(tops[stop], tops[start]):
            stop += 1
        chosen = tops[start]
        second = model.similarity(texts[start:stop], image_feats[chosen], chunk=gallery_chunk)
        index = chosen[None].expand(stop - start, -1).to(first.device)
        out[start:stop] = place_below(first[start:stop], index, second.to(first.device))
        start = stop
    return out


@dataclass
class TwoStageEvaluation:
    """Metrics of the first stage, of the two stages, and of the exact ranking (if run)."""

    k: int
    stage1: dict[str, float]
    two_stage: dict[str, float]
    exact: dict[str, float] | None
    seconds: dict[str, float]
    second_stage: bool

    def record(self) -> dict[str, Any]:
        """The JSON record: every block, the difference to exact, and the ranking rule."""
        difference = None
        if self.exact is not None:
            difference = {name: self.two_stage[name] - self.exact[name]
                          for name in self.exact if name not in ("num_queries", "num_gallery")}
        return {"rerank_k": self.k, "second_stage": self.second_stage, "rule": RANKING_RULE,
                "stage1": self.stage1, "two_stage": self.two_stage, "exact": self.exact,
                "two_stage_minus_exact": difference, "seconds": self.seconds}


@torch.no_grad()
def rank_two_stage(model: torch.nn.Module, text_feats: Any, image_feats: Any,
                   query_pids: torch.Tensor, gallery_pids: torch.Tensor, *, k: int,
                   device: torch.device, query_chunk: int = 512,
                   gallery_chunk: int | None = None, progress: bool = True
                   ) -> tuple[QueryStats, QueryStats, float, float]:
    """Statistics of the first stage and of the two stages, and the seconds each took.

    The first stage of a chunk of queries is one matrix product; the second stage then
    scores each query's K candidates (per query, so no pair outside a query's top K is ever
    scored)."""
    gallery = image_feats.to(device)
    gallery_vectors = model.search_vectors(gallery)
    second_stage = model.has_second_stage(gallery[:1])
    stage1_parts, final_parts = [], []
    stage1_seconds = stage2_seconds = 0.0
    for start in tqdm(range(0, len(text_feats), query_chunk), desc=f"two-stage K={k}",
                      unit="chunk", disable=not progress, leave=False):
        stop = min(start + query_chunk, len(text_feats))
        texts = text_feats[start:stop].to(device)
        started = time.perf_counter()
        first = (model.search_vectors(texts) @ gallery_vectors.t()).float()
        stage1_seconds += time.perf_counter() - started
        pids = query_pids[start:stop]
        # the stage-1 ranking's stable order gives the candidates (ties to the lower index)
        stage1_parts.append(rank_chunk(first, pids, gallery_pids, keep_topk=max(k, 0)))
        if not second_stage or k <= 0:
            final_parts.append(stage1_parts[-1])
            continue
        started = time.perf_counter()
        rows = rerank(model, texts, gallery, first, torch.from_numpy(stage1_parts[-1].topk),
                      gallery_chunk)
        stage2_seconds += time.perf_counter() - started
        final_parts.append(rank_chunk(rows, pids, gallery_pids))
    return (QueryStats.cat(stage1_parts), QueryStats.cat(final_parts), stage1_seconds,
            stage2_seconds)


def two_stage_metrics(stage1: QueryStats, final: QueryStats, *, k: int, second_stage: bool,
                      exact: dict[str, float] | None, seconds: dict[str, float],
                      num_gallery: int) -> TwoStageEvaluation:
    """The record of a two-stage evaluation from its statistics."""
    first, both = summarize(stage1), summarize(final)
    first["num_gallery"] = both["num_gallery"] = num_gallery
    return TwoStageEvaluation(k=k, stage1=first, two_stage=both, exact=exact,
                              seconds={name: round(value, 4) for name, value in seconds.items()},
                              second_stage=second_stage)


def evaluate_two_stage(model: torch.nn.Module, problem: Any, *, k: int, exact: bool = True,
                       device: torch.device | str = "cpu", amp: str = "off",
                       batch_size: int = 128, query_chunk: int = 512,
                       gallery_chunk: int | None = None, progress: bool = True
                       ) -> TwoStageEvaluation:
    """Encode ``problem``'s split once; rank it in two stages with K = ``k`` and, when
    ``exact``, exactly too (same features), so the difference is the re-ranker's alone."""
    from benchmark.evaluation.evaluate import encode_images, encode_texts, rank_all

    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        started = time.perf_counter()
        image_feats = encode_images(model, problem.image_paths(), batch_size=batch_size,
                                    device=device, amp=amp, progress=progress)
        text_feats = encode_texts(model, problem.captions, batch_size=2 * batch_size,
                                  device=device, amp=amp, progress=progress)
        seconds = {"encode": time.perf_counter() - started}
        stage1, final, seconds["stage1"], seconds["stage2"] = rank_two_stage(
            model, text_feats, image_feats, problem.query_pids, problem.gallery_pids, k=k,
            device=device, query_chunk=query_chunk, gallery_chunk=gallery_chunk,
            progress=progress)
        exact_metrics = None
        if exact:
            started = time.perf_counter()
            stats = rank_all(model, text_feats, image_feats, problem.query_pids,
                             problem.gallery_pids, device=device, query_chunk=query_chunk,
                             gallery_chunk=gallery_chunk, progress=progress)
            seconds["exact"] = time.perf_counter() - started
            exact_metrics = summarize(stats)
            exact_metrics["num_gallery"] = len(problem.gallery)
        second_stage = model.has_second_stage(image_feats[:1])
    finally:
        model.train(was_training)
    return two_stage_metrics(stage1, final, k=k, second_stage=second_stage,
                             exact=exact_metrics, seconds=seconds,
                             num_gallery=len(problem.gallery))


def two_stage_for_run(run: Any, k: int, *, device: str = "auto", batch_size: int = 128,
                      query_chunk: int = 512, progress: bool = True) -> dict[str, Any]:
    """``bench run --rerank-k``: the two-stage evaluation of a finished run on its own test
    split, beside the exact metrics its ``metrics.json`` holds; written to
    ``two_stage.json`` in the run folder (by the main process)."""
    from pathlib import Path

    from benchmark.data.sets import eval_set
    from benchmark.records.rebuild import rebuild_from_run, recorded_dataset_root
    from benchmark.runtime import dist
    from benchmark.runtime.device import resolve_device
    from ogor.datasets import read_dataset
    from toreid.io import atomic_write_json, read_json

    run = Path(run)
    model, config = rebuild_from_run(run)
    dev = resolve_device(device)
    problem = eval_set(read_dataset(recorded_dataset_root(run, config)), "test")
    result = evaluate_two_stage(model.to(dev), problem, k=k, exact=False, device=dev,
                                batch_size=batch_size, query_chunk=query_chunk,
                                progress=progress)
    result.exact = read_json(run / "metrics.json", "run metrics").get("test")
    record = result.record()
    if dist.current().is_main:
        atomic_write_json(run / "two_stage.json", record)
    return record
