"""The first stage of gallery search: a faiss inner-product index over the search vectors.

Kinds (``bench index --faiss``):

* ``flat``: exact inner product (``IndexFlatIP``), the default: its top K is the exact
  first-stage top K, so a two-stage search over it equals the in-memory evaluation.
* ``ivf``: an inverted file (``IndexIVFFlat``, inner product) with ``nlist`` lists, trained by
  k-means on the stored vectors; a query visits ``nprobe`` lists. For galleries of millions.
* ``hnsw``: a graph index (``IndexHNSWFlat``, inner product) with ``M`` links per node,
  ``efConstruction`` when building and ``efSearch`` when searching.

The parameters are recorded in the index record; search-time ones (``nprobe``, ``efSearch``)
can be changed per query. The faiss file is derived data: it is rebuilt from ``vectors.f32``
whenever it is missing or behind the stored rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from toreid.errors import ToreidError

KINDS = ("flat", "ivf", "hnsw")


def default_params(kind: str, count_hint: int = 0) -> dict[str, Any]:
    """Parameters of an index kind; IVF's ``nlist`` grows as the square root of the gallery
    (faiss's guideline: between 4 sqrt(N) and 16 sqrt(N) for N vectors; 4 sqrt(N) here), and
    its k-means runs ``niter`` iterations on ``train_per_list`` x ``nlist`` sampled vectors
    (faiss warns below 39 per list; training on every vector of a million-image gallery would
    take most of an hour on a small CPU)."""
    if kind == "flat":
        return {}
    if kind == "ivf":
        nlist = max(1, int(4 * math.sqrt(max(count_hint, 1))))
        return {"nlist": nlist, "nprobe": max(1, min(nlist, 32)), "train_per_list": 64,
                "niter": 10}
    if kind == "hnsw":
        return {"M": 32, "efConstruction": 80, "efSearch": 128}
    raise ToreidError(f"--faiss: unknown index kind '{kind}'; valid: {', '.join(KINDS)}")


def parse_params(kind: str, text: str | None, count_hint: int = 0) -> dict[str, Any]:
    """``nlist=1024,nprobe=32`` over the kind's defaults; unknown or impossible values refused."""
    params = default_params(kind, count_hint)
    if not text:
        return params
    for item in text.split(","):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in params:
            raise ToreidError(f"--faiss-params: '{name}' is not a parameter of a {kind} index "
                              f"(valid: {', '.join(params) or 'none'})")
        try:
            number = int(value)
        except ValueError:
            raise ToreidError(f"--faiss-params: {name}={value!r} is not an integer") from None
        if number < 1:
            raise ToreidError(f"--faiss-params: {name} must be >= 1, got {number}")
        params[name] = number
    return params


def build(kind: str, params: dict[str, Any], vectors: np.ndarray) -> Any:
    """A faiss index of ``kind`` holding ``vectors`` (trained on them where it needs to be)."""
    import faiss

    dim = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "ivf":
        nlist = min(int(params["nlist"]), max(1, len(vectors)))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = int(params.get("niter", 10))
        sample = min(len(vectors), int(params.get("train_per_list", 64)) * nlist)
        chosen = np.sort(np.random.default_rng(0).choice(len(vectors), sample, replace=False))
        index.train(np.ascontiguousarray(vectors[chosen], dtype=np.float32))
        index.nprobe = int(params["nprobe"])
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, int(params["M"]), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(params["efConstruction"])
        index.hnsw.efSearch = int(params["efSearch"])
    else:
        raise ToreidError(f"unknown faiss index kind '{kind}'")
    add(index, vectors)
    return index


def add(index: Any, vectors: np.ndarray, block: int = 65536) -> None:
    """Append vectors (an IVF index keeps the lists it was trained with), a block at a time,
    so a memory-mapped gallery is not copied into memory whole."""
    for start in range(0, len(vectors), block):
        index.add(np.ascontiguousarray(vectors[start:start + block], dtype=np.float32))


def set_search_params(index: Any, kind: str, params: dict[str, Any]) -> None:
    """Apply the search-time parameters (``nprobe``, ``efSearch``) to a loaded index."""
    import faiss

    if kind == "ivf":
        faiss.extract_index_ivf(index).nprobe = int(params["nprobe"])
    elif kind == "hnsw":
        index.hnsw.efSearch = int(params["efSearch"])


def search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and gallery rows ``[Q, k]`` of the best ``k``, best first. An approximate index
    may return fewer than ``k`` (row -1): those slots are dropped by the caller."""
    k = min(int(k), int(index.ntotal))
    scores, rows = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, rows


def write(index: Any, path: str) -> None:
    import faiss

    faiss.write_index(index, path)


def read(path: str) -> Any:
    import faiss

    try:
        return faiss.read_index(path)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise ToreidError(f"{path}: not a readable faiss index ({first})") from None
