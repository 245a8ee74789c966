"""Exact text-to-image evaluation: encode once, score in chunks, rank exactly.

1. Encode every gallery image and every query caption once (batched, no grad, optional AMP on
   CUDA). Under DDP each rank encodes every ``world``-th item and the features are gathered.
2. For each chunk of ``query_chunk`` queries: ``model.similarity(texts[chunk], gallery,
   chunk=gallery_chunk)`` gives a ``[q, G]`` block, which
   :func:`benchmark.evaluation.metrics.rank_chunk` turns into per-query statistics straight away.

Memory rule: the full ``Q x G`` matrix is never held; peak extra memory is one ``[q, G]`` block
plus the ranking's temporaries (about 30 bytes per element), i.e. it is bounded by the chunk
size, whatever the test set. Features are compared in float32 even when encoded under AMP, so
the ranking does not depend on the autocast dtype's rounding of the scores.

The per-query statistics make the occluded/clean split free: the metrics of the queries whose
own image is occluded and of those whose image is clean are averages over disjoint subsets of
the same statistics, so, weighted by their query counts, they sum back to the whole.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmark.data.sets import EvalSet, GalleryImages
from benchmark.evaluation.metrics import QueryStats, rank_chunk, summarize
from benchmark.runtime import dist


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``amp`` in ``bf16``/``fp16`` on CUDA; a no-op otherwise."""
    if amp == "off" or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def _shard(n: int) -> np.ndarray:
    world = dist.current()
    return np.arange(world.rank, n, world.size)


def _unshard(parts: list[Any], n: int, cat: Callable[[list[Any]], Any]) -> Any:
    """Re-interleave rank-strided shards (rank r holds items r, r+W, ...) into item order."""
    if len(parts) == 1:
        return parts[0]
    world = len(parts)
    whole = cat([p.to("cpu") for p in parts])
    order = np.concatenate([np.arange(r, n, world) for r in range(world)])
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    return whole[torch.as_tensor(inverse)]


@torch.no_grad()
def encode_images(
    model: torch.nn.Module,
    paths: Sequence,
    *,
    batch_size: int = 128,
    device: torch.device,
    amp: str = "off",
    workers: int = 0,
    progress: bool = True,
) -> Any:
    """``ImageFeatures`` of every image in ``paths`` (order kept), on the CPU."""
    shard = _shard(len(paths))
    images = GalleryImages([paths[i] for i in shard], model.image_size, model.image_mean,
                           model.image_std, getattr(model, "image_interpolation", "bicubic"))
    loader = torch.utils.data.DataLoader(images, batch_size=batch_size, num_workers=workers)
    batches = (pixels.to(device, non_blocking=True) for pixels in loader)
    return _encode_all(model.encode_images, batches, len(loader), len(paths), "encode images",
                       device, amp, progress)


@torch.no_grad()
def encode_texts(
    model: torch.nn.Module,
    captions: Sequence[str],
    *,
    batch_size: int = 256,
    device: torch.device,
    amp: str = "off",
    progress: bool = True,
) -> Any:
    """``TextFeatures`` of every caption (order kept), on the CPU."""
    shard = _shard(len(captions))
    texts = [captions[i] for i in shard]
    starts = range(0, len(texts), batch_size)
    batches = (model.tokenize(texts[i : i + batch_size]).to(device) for i in starts)
    return _encode_all(model.encode_texts, batches, len(starts), len(captions), "encode texts",
                       device, amp, progress)


def _encode_all(encode: Any, batches: Any, num_batches: int, total: int, desc: str,
                device: torch.device, amp: str, progress: bool) -> Any:
    """Encode this rank's batches, move the features to the CPU in float32, concatenate, and
    gather every rank's share back into the original order of ``total`` items."""
    parts = []
    for batch in tqdm(batches, desc=desc, unit="batch", total=num_batches,
                      disable=not progress, leave=False):
        with autocast(device, amp):
            feats = encode(batch)
        parts.append(feats.to("cpu", dtype=torch.float32))
    local = type(parts[0]).cat(parts)
    return _unshard(dist.gather_objects(local), total, type(local).cat)


@torch.no_grad()
def rank_all(
    model: torch.nn.Module,
    text_feats: Any,
    image_feats: Any,
    query_pids: torch.Tensor,
    gallery_pids: torch.Tensor,
    *,
    device: torch.device,
    query_chunk: int = 512,
    gallery_chunk: int | None = None,
    keep_topk: int = 0,
    progress: bool = True,
    desc: str = "rank t2i",
) -> QueryStats:
    """Per-query statistics of every query, one ``[query_chunk, G]`` block at a time."""
    gallery = image_feats.to(device)
    parts = []
    for start in tqdm(range(0, len(text_feats), query_chunk), desc=desc, unit="chunk",
                      disable=not progress, leave=False):
        stop = min(start + query_chunk, len(text_feats))
        block = model.similarity(text_feats[start:stop].to(device), gallery, chunk=gallery_chunk)
        parts.append(rank_chunk(block.float(), query_pids[start:stop], gallery_pids,
                                keep_topk=keep_topk))
        del block
    return QueryStats.cat(parts)


@torch.no_grad()
def rank_i2t(
    model: torch.nn.Module,
    text_feats: Any,
    image_feats: Any,
    query_pids: torch.Tensor,
    gallery_pids: torch.Tensor,
    *,
    device: torch.device,
    image_chunk: int = 256,
    progress: bool = True,
) -> QueryStats:
    """Image-to-text statistics: each image ranks every caption (same chunked rule)."""
    texts = text_feats.to(device)
    parts = []
    for start in tqdm(range(0, len(image_feats), image_chunk), desc="rank i2t", unit="chunk",
                      disable=not progress, leave=False):
        stop = min(start + image_chunk, len(image_feats))
        block = model.similarity(texts, image_feats[start:stop].to(device)).T
        parts.append(rank_chunk(block.float(), gallery_pids[start:stop], query_pids))
    return QueryStats.cat(parts)


@contextlib.contextmanager
def compiled_similarity(model: torch.nn.Module, device: torch.device, enabled: bool):
    """Temporarily ``torch.compile`` the model's ``pair_similarity`` (CUDA only).

    MGCC's attention-based fusion is a chain of elementwise passes over a [q, g, n, m] token
    grid; eager mode runs each as its own kernel and is bound by memory traffic (about 20% of
    the fp32 matmul rate on an H100), compiled they fuse (about 65%: ``perf/evaluate.py``).
    The model's ``similarity`` calls ``self.pair_similarity`` per block, so an instance
    attribute is enough; it is removed afterwards so that checkpoints and pickling are unchanged.
    """
    if not (enabled and device.type == "cuda" and hasattr(model, "pair_similarity")):
        yield model
        return
    model.pair_similarity = torch.compile(model.pair_similarity, dynamic=False)
    try:
        yield model
    finally:
        del model.pair_similarity


@dataclass
class Evaluation:
    """Everything one evaluation produced."""

    t2i: dict[str, float]
    stats: QueryStats
    i2t: dict[str, float] | None
    occlusion: dict[str, dict[str, float]] | None
    seconds: float

    def record(self) -> dict[str, Any]:
        """The parts of ``metrics.json`` that describe this evaluation."""
        return {"test": self.t2i, "test_i2t": self.i2t, "occlusion": self.occlusion}


def occlusion_split(stats: QueryStats, query_image: torch.Tensor,
                    occluded: torch.Tensor) -> dict[str, dict[str, float]]:
    """Metrics of the queries whose own image is occluded vs clean."""
    flags = occluded[query_image].numpy().astype(bool)
    parts = {}
    for name, mask in (("occluded", flags), ("clean", ~flags)):
        parts[name] = summarize(stats.subset(mask)) if mask.any() else {"num_queries": 0}
    return parts


def evaluate(
    model: torch.nn.Module,
    problem: EvalSet,
    *,
    device: torch.device | str = "cpu",
    amp: str = "off",
    batch_size: int = 128,
    query_chunk: int = 512,
    gallery_chunk: int | None = None,
    i2t: bool = False,
    workers: int = 0,
    progress: bool = True,
    compile_similarity: bool = False,
) -> Evaluation:
    """Evaluate ``model`` on ``problem`` (t2i always; i2t on request; occluded/clean split
    when the problem carries occlusion flags; ``compile_similarity`` on CUDA only)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    try:
        image_feats = encode_images(model, problem.image_paths(), batch_size=batch_size,
                                    device=device, amp=amp, workers=workers, progress=progress)
        text_feats = encode_texts(model, problem.captions, batch_size=2 * batch_size,
                                  device=device, amp=amp, progress=progress)
        with compiled_similarity(model, device, compile_similarity):
            stats = rank_all(model, text_feats, image_feats, problem.query_pids,
                             problem.gallery_pids, device=device, query_chunk=query_chunk,
                             gallery_chunk=gallery_chunk, progress=progress)
        t2i = summarize(stats)
        t2i["num_gallery"] = len(problem.gallery)
        i2t_metrics = None
        if i2t:
            i2t_stats = rank_i2t(model, text_feats, image_feats, problem.query_pids,
                                 problem.gallery_pids, device=device, progress=progress)
            i2t_metrics = summarize(i2t_stats)
            i2t_metrics["num_gallery"] = len(problem.captions)
        occlusion = None
        if problem.occluded is not None:
            occlusion = occlusion_split(stats, problem.query_image, problem.occluded)
            for part in occlusion.values():
                if part["num_queries"]:
                    part["num_gallery"] = len(problem.gallery)
    finally:
        model.train(was_training)
    return Evaluation(t2i=t2i, stats=stats, i2t=i2t_metrics, occlusion=occlusion,
                      seconds=time.perf_counter() - started)
