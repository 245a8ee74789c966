"""``bench search``: a description against an index, in two stages.

Stage 1 asks the faiss index for the best ``max(topk, rerank)`` images by the model's search
vectors (the global similarity). Stage 2 re-scores the best ``rerank`` of them with the model's
full similarity (:meth:`similarity`, read from the memory-mapped token features of those rows
only): MGCC's fused four similarities, a cross-encoder's ITM for RaSa and APTM, the global
cosine again for a model that has nothing more. The re-scored candidates come first in their
second-stage order, the other stage-1 results after them in stage-1 order (the rule of
:mod:`benchmark.evaluation.two_stage`); ties go to the lower gallery row.

With the exact (flat) index and ``rerank`` equal to the gallery size, the ranking is
``bench query``'s on the same split: the candidates are then the whole gallery in its own
order, scored by the same call.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.evaluation.evaluate import encode_texts
from benchmark.search import first_stage
from benchmark.search.store import FAISS_FILE, GalleryIndex, GalleryIndexError, check_same_weights
from toreid.errors import ToreidError


@dataclass
class Hit:
    """One ranked image."""

    rank: int
    row: int
    path: str
    score: float
    stage: int  # 2: re-scored by the full similarity; 1: first-stage score only
    width: int
    height: int


@dataclass
class SearchResult:
    """The ranking of one description and what it cost."""

    text: str
    hits: list[Hit]
    rerank: int
    seconds: dict[str, float] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {"text": self.text, "rerank": self.rerank, "seconds": self.seconds,
                "hits": [asdict(hit) for hit in self.hits]}


class Searcher:
    """An index and its run's model, loaded once (``bench serve`` answers many queries)."""

    def __init__(self, index: GalleryIndex, model: torch.nn.Module, device: torch.device,
                 *, nprobe: int | None = None, ef_search: int | None = None) -> None:
        self.index, self.model, self.device = index, model.eval(), device
        path = index.folder / FAISS_FILE
        if (not path.exists() or not index.record.get("complete")
                or int(index.record.get("indexed", 0)) != index.count):
            raise GalleryIndexError(
                f"{index.folder}: the index is incomplete ({index.count} images "
                f"stored, {index.record.get('indexed', 0)} searchable); run the "
                "same bench index command again to finish it")
        self.faiss = first_stage.read(str(path))
        spec = index.record["faiss"]
        params = dict(spec["params"])
        if nprobe is not None:
            params["nprobe"] = nprobe
        if ef_search is not None:
            params["efSearch"] = ef_search
        first_stage.set_search_params(self.faiss, spec["kind"], params)
        self.entries = index.image_table()

    @classmethod
    def from_index(cls, folder: Path, *, device: str = "auto",
                   nprobe: int | None = None, ef_search: int | None = None) -> Searcher:
        """Open an index and rebuild its run's model (weights checked against the record)."""
        from benchmark.records import results
        from benchmark.records.rebuild import rebuild_from_run
        from benchmark.runtime.device import resolve_device
        from benchmark.search.store import sha256_file

        index = GalleryIndex.open(folder)
        run = Path(index.record["run"])
        if not (run / "config.json").is_file():
            raise GalleryIndexError(
                f"{index.folder / 'index.json'}: field 'run': the run {run} the "
                "index was built with is not there any more")
        check_same_weights(index, run, sha256_file(results.checkpoint_dir(run) / "best.pt"))
        model, _ = rebuild_from_run(run)
        dev = resolve_device(device)
        return cls(index, model.to(dev), dev, nprobe=nprobe, ef_search=ef_search)

    @torch.no_grad()
    def search(self, text: str, *, topk: int = 10, rerank: int = 100) -> SearchResult:
        """The best ``topk`` images for ``text``; the best ``rerank`` of stage 1 re-scored."""
        if not text.strip():
            raise ToreidError("TEXT: the query is empty; give a description to search for")
        if topk < 1 or rerank < 0:
            raise ToreidError(f"--topk must be >= 1 and --rerank >= 0, got {topk}, {rerank}")
        started = time.perf_counter()
        text_feats = encode_texts(self.model, [text], device=self.device, progress=False)
        encode_seconds = time.perf_counter() - started
        result = self.rank_features(text_feats, topk=topk, rerank=rerank)
        result.text = text
        result.seconds = {"encode_text": round(encode_seconds, 5), **result.seconds}
        return result

    @torch.no_grad()
    def rank_features(self, text_feats: Any, *, topk: int, rerank: int) -> SearchResult:
        """The two stages for one encoded description (``perf/search.py`` times this)."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        query = self.model.search_vectors(text_feats).cpu().numpy()
        wanted = min(max(topk, rerank), self.index.count)
        scores, rows = first_stage.search(self.faiss, query, wanted)
        keep = rows[0] >= 0
        rows, scores = rows[0][keep].astype(np.int64), scores[0][keep].astype(np.float64)
        timings["stage1"] = time.perf_counter() - started
        started = time.perf_counter()
        order = self._rank(text_feats, rows, scores, min(rerank, len(rows)))
        timings["stage2"] = time.perf_counter() - started
        hits = []
        for rank, (row, score, stage) in enumerate(order[:topk], start=1):
            entry = self.entries[row]
            hits.append(Hit(rank=rank, row=int(row), path=entry["path"], score=float(score),
                            stage=stage, width=int(entry["width"]),
                            height=int(entry["height"])))
        return SearchResult(text="", hits=hits, rerank=min(rerank, len(rows)),
                            seconds={k: round(v, 5) for k, v in timings.items()})

    def _rank(self, text_feats: Any, rows: np.ndarray, scores: np.ndarray,
              k: int) -> list[tuple[int, float, int]]:
        """(row, score, stage) in final order: the first ``k`` stage-1 rows re-scored and
        sorted (ties to the lower row), then the remaining stage-1 rows in their order."""
        candidates = np.sort(rows[:k])
        rest = [(int(r), float(s), 1) for r, s in zip(rows[k:], scores[k:], strict=True)]
        if k == 0:
            return rest
        feats = self.index.features(candidates).to(self.device)
        second = self.model.similarity(text_feats.to(self.device), feats)[0].float().cpu()
        order = torch.sort(second, descending=True, stable=True).indices.tolist()
        return [(int(candidates[i]), float(second[i]), 2) for i in order] + rest
