"""Gallery search at 10k, 100k and 1M images, and two-stage against exact evaluation at
ICFG-PEDES scale, with random features of MGCC's paper shapes.

What runs is the toolkit's own code: :class:`benchmark.search.store.GalleryIndex` (the index
folder, memory-mapped), :mod:`benchmark.search.first_stage` (faiss), and
:meth:`benchmark.search.search.Searcher.rank_features` (faiss, then MGCC's fused similarity
on the candidates' stored token features), and for the evaluation
:func:`benchmark.evaluation.evaluate.rank_all` (exact) against
:func:`benchmark.evaluation.two_stage.rank_two_stage`. Only the encoders are skipped.

Shapes: MGCC as the paper (ViT-B/32 at 224x224 in the 768-d vision space) with its
ICFG-PEDES ratios: ceil(0.4 x 49) = 20 patches per image, ceil(0.5 x 25) = 13 words per
caption, 768-d, the four similarities with AF fusion. Token features are stored in fp16.

Features have the structure of a person gallery rather than of white noise: people come in
groups of about 50 who look alike (a person's centre is about 0.6 in cosine from the group's),
each image is its person's centre plus noise (about 0.8), a query is another noisy copy of one
person's centre (about 0.7). (On white noise in 768 dimensions every image is
nearly as far as every other, and no approximate index can work; real features are not so.)

A 1M-image token store at these shapes is 31 GB of fp16: where the stored tokens would exceed
``--max-token-gb`` the token file is sparse (allocated on disk only where written: the
re-ranked rows are read as zeros, so the compute is at full shape but the disk read is not
measured there); the read cost of real rows is measured at the largest size that fits. The
table says which.

Each gallery size runs in its own process, so its peak memory (max RSS) is its own.

Usage::

    python perf/search.py                    # 10k, 100k, 1M and ICFG scale (about 15 min, 2 cores)
    python perf/search.py --quick            # a smoke run (seconds): what the test runs
    python perf/search.py --sizes 10000 --no-icfg
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.search import first_stage  # noqa: E402
from benchmark.search.build import update_faiss  # noqa: E402
from benchmark.search.search import Searcher  # noqa: E402
from benchmark.search.store import FAISS_FILE, GalleryIndex, Shapes  # noqa: E402
from models import ImageFeatures, TextFeatures, build_model  # noqa: E402

PATCHES, WORDS, DIM = 20, 13, 768
TOPK = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--queries", type=int, default=100, help="timed queries per gallery")
    p.add_argument("--rerank", type=int, default=100)
    p.add_argument("--nlist", type=int, default=0,
                   help="IVF lists (default: bench index's own, 4 sqrt(gallery); with fewer "
                        "lists than the gallery's groups of look-alike people, about 1 per "
                        "200 images here, recall falls: 0.52 at 1M with 1024 lists, nprobe 32)")
    p.add_argument("--nprobe", type=int, default=32, help="IVF lists visited per query")
    p.add_argument("--hnsw-max", type=int, default=100000,
                   help="largest gallery that also gets an HNSW index (its build is slow)")
    p.add_argument("--max-token-gb", type=float, default=8.0)
    p.add_argument("--icfg-queries", type=int, default=128,
                   help="queries of the measured ICFG-scale slice (extrapolated to 19,848)")
    p.add_argument("--no-icfg", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where the index folders are written (default: a temporary folder, "
                        "removed at the end)")
    p.add_argument("--json-out", type=Path, default=None)
    p.add_argument("--one-size", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.queries, args.nlist, args.nprobe = "2000", 5, 16, 16
        args.icfg_queries, args.hnsw_max = 4, 2000
    return args


def mgcc() -> torch.nn.Module:
    """MGCC's similarity at the paper's ICFG ratios (the fusion does not depend on the
    encoders, so a tiny backbone carries the config, as in ``perf/evaluate.py``)."""
    return build_model("mgcc", backbone="tiny", rho_image=0.4, rho_text=0.5).eval()


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def centres(persons: int, seed: int) -> np.ndarray:
    """Unit person centres in groups of about 50 similar-looking people (cosine about 0.6 to
    their group's centre, as people dressed alike are), so that beyond a query's own person
    its nearest images are its group's, as in a real gallery."""
    rng = np.random.default_rng(seed)
    groups = unit(rng.standard_normal((max(1, persons // 50), DIM), dtype=np.float32))
    return noisy(groups[np.arange(persons) % len(groups)], rng, scale=0.048)


def noisy(base: np.ndarray, rng: np.random.Generator, scale: float = 0.036) -> np.ndarray:
    """Unit vectors near ``base``: noise of norm ``scale`` x sqrt(768) (0.036: cosine about
    0.7; 0.027: about 0.8; 0.048: about 0.6)."""
    return unit(base + scale * rng.standard_normal(base.shape, dtype=np.float32))


def build_gallery(folder: Path, size: int, max_token_bytes: float) -> dict:
    """An index folder of ``size`` images with real vectors, pooled features, masks and
    attention; token rows real where they fit, else a sparse file."""
    shapes = Shapes(vector_dim=DIM, pooled_dim=DIM, num_tokens=PATCHES, token_dim=DIM,
                    token_dtype="float16")
    index = GalleryIndex.create(folder, {
        "run": "perf", "model": "mgcc (random features)", "weights_sha256": "perf",
        "shapes": dataclasses.asdict(shapes), "faiss": {"kind": "flat", "params": {},
                                              "metric": "inner product"},
        "second_stage": True, "sources": [], "skipped": []})
    persons = max(1, size // 4)
    person_centres = centres(persons, seed=1)
    token_bytes = size * PATCHES * DIM * 2
    sparse = token_bytes > max_token_bytes
    rng = np.random.default_rng(2)
    started = time.perf_counter()
    block = 20000
    for start in range(0, size, block):
        n = min(block, size - start)
        pooled = noisy(person_centres[np.arange(start, start + n) % persons], rng, scale=0.027)
        arrays = {"vectors": pooled, "pooled": pooled,
                  "mask": np.ones((n, PATCHES), np.uint8),
                  "attention": np.full((n, PATCHES), 1.0 / PATCHES, np.float32)}
        entries = [{"key": f"img{i}", "path": f"img{i}.jpg", "width": 64, "height": 128,
                    "sha256": ""} for i in range(start, start + n)]
        if sparse:  # the token rows are never written: the file only grows (a hole)
            _append_sparse_tokens(index, arrays, entries)
        else:
            arrays["tokens"] = pooled[:, None, :] + 0.05 * rng.standard_normal(
                (n, PATCHES, DIM), dtype=np.float32)
            index.append(arrays, entries)
    write_seconds = time.perf_counter() - started
    started = time.perf_counter()
    update_faiss(index)  # the flat (exact) index
    flat_seconds = time.perf_counter() - started
    return {"index": index, "persons": persons, "sparse_tokens": sparse,
            "write_seconds": write_seconds, "flat_seconds": flat_seconds}


def _append_sparse_tokens(index: GalleryIndex, arrays: dict, entries: list) -> None:
    """``GalleryIndex.append`` for every array but the tokens, which are extended as a hole."""
    tokens_path = index.folder / Shapes.file_name("tokens", np.dtype(np.float16))
    size = tokens_path.stat().st_size + len(entries) * PATCHES * DIM * 2
    for name, (dtype, _) in index.shapes.files().items():
        if name in arrays:
            with open(index.folder / Shapes.file_name(name, dtype), "ab") as handle:
                handle.write(np.ascontiguousarray(arrays[name], dtype=dtype).tobytes())
    os.truncate(tokens_path, size)
    with open(index.folder / "images.jsonl", "a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(e) + "\n" for e in entries)
    index.record["count"] = index.count + len(entries)
    index.save_record()


def queries(count: int, persons: int, seed: int) -> tuple[TextFeatures, np.ndarray]:
    """Text features of ``count`` queries of random persons (pooled + word tokens)."""
    rng = np.random.default_rng(seed)
    who = rng.integers(0, persons, count)
    pooled = noisy(centres(persons, seed=1)[who], rng)
    words = pooled[:, None, :] + 0.05 * rng.standard_normal((count, WORDS, DIM),
                                                            dtype=np.float32)
    feats = TextFeatures(pooled=torch.from_numpy(pooled), tokens=torch.from_numpy(words),
                         mask=torch.ones(count, WORDS, dtype=torch.bool),
                         attention=torch.full((count, WORDS), 1.0 / WORDS))
    return feats, who


def percentiles(values: list[float]) -> tuple[float, float]:
    return (1000 * float(np.percentile(values, 50)), 1000 * float(np.percentile(values, 95)))


def overlap(found: list[set[int]], exact: list[set[int]]) -> float:
    """Mean share of each query's exact top 10 that ``found`` holds (recall@10 against exact)."""
    return float(np.mean([len(a & b) / TOPK for a, b in zip(found, exact, strict=True)]))


def drop_page_cache(folder: Path) -> None:
    """Evict the index folder's stored arrays from the page cache (clean pages, no root
    needed), so that the first re-rank of a query reads its candidates' rows from disk, as
    in a gallery larger than memory, and no index kind inherits the rows another one read.
    Written pages are flushed first: only clean pages can be dropped, and a write-back of the
    gallery just built must not run during the first kind's timing."""
    os.sync()
    for path in folder.iterdir():
        if path.is_file() and path.suffix in (".f16", ".f32", ".u8"):
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(descriptor)


def reset_peak_rss() -> None:
    """Reset this process's peak resident size to its current one (Linux: ``clear_refs`` 5),
    so that each index kind's search peak is its own, not the gallery build's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss() -> int | None:
    """Peak resident bytes since the last :func:`reset_peak_rss` (``VmHWM``), if known."""
    try:
        status = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:")),
                None)


def disk_bytes(folder: Path) -> tuple[int, int]:
    """(apparent size, allocated size) of the files of a folder."""
    files = [p for p in folder.iterdir() if p.is_file()]
    return sum(p.stat().st_size for p in files), sum(p.stat().st_blocks * 512 for p in files)


def time_searches(searcher: Searcher, texts: TextFeatures, rerank: int) -> dict:
    """Per-query latency of stage 1 alone and of stage 1 + re-rank, and the top 10s."""
    stage1, both, warm, tops, final_tops = [], [], [], [], []
    for _ in range(3):  # warm-up (torch's first calls at these shapes), not timed
        searcher.rank_features(texts[:1], topk=TOPK, rerank=rerank)
    drop_page_cache(searcher.index.folder)  # every kind's re-rank reads its rows from disk
    for i in range(len(texts)):
        one = texts[i:i + 1]
        started = time.perf_counter()
        alone = searcher.rank_features(one, topk=TOPK, rerank=0)
        stage1.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = searcher.rank_features(one, topk=TOPK, rerank=rerank)
        both.append(time.perf_counter() - started)
        started = time.perf_counter()  # again: the candidates' rows now in the page cache
        searcher.rank_features(one, topk=TOPK, rerank=rerank)
        warm.append(time.perf_counter() - started)
        tops.append({hit.row for hit in alone.hits})  # the stage-1 top 10 (no re-rank)
        final_tops.append({hit.row for hit in result.hits})  # after the re-rank of the top K
    return {"stage1": percentiles(stage1), "both": percentiles(both),
            "warm": percentiles(warm), "tops": tops,
            "final_tops": final_tops}


def one_size(args: argparse.Namespace, size: int, workdir: Path) -> dict:
    """Everything measured for one gallery size (run in its own process)."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    folder = workdir / f"gallery-{size}"
    built = build_gallery(folder, size, args.max_token_gb * 2**30)
    index, model = built["index"], mgcc()
    texts, _ = queries(args.queries, built["persons"], seed=3)
    build_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # before any reset
    flat_path = folder / FAISS_FILE
    rows = []
    exact_tops = exact_final = None
    kinds = [("flat", {})]
    nlist = args.nlist or first_stage.default_params("ivf", size)["nlist"]
    kinds.append(("ivf", {"nlist": min(nlist, size // 39 or 1), "nprobe": args.nprobe,
                          "train_per_list": 64, "niter": 10}))
    if size <= args.hnsw_max:
        kinds.append(("hnsw", {"M": 32, "efConstruction": 80, "efSearch": 128}))
    for kind, params in kinds:
        seconds = built["flat_seconds"]
        if kind != "flat":
            started = time.perf_counter()
            faiss_index = first_stage.build(kind, params, index.vectors())
            seconds = time.perf_counter() - started
            first_stage.write(faiss_index, str(folder / f"{kind}.faiss"))
            del faiss_index  # the searcher reads its own copy: one index in memory, not two
            shutil.copyfile(folder / f"{kind}.faiss", flat_path)
            index.record["faiss"] = {"kind": kind, "params": params}
        probes = [params.get("nprobe")] if kind != "ivf" else sorted(
            {args.nprobe, *(p for p in (64, 128, 256, 512, 1024) if p <= params["nlist"])})
        for nprobe in probes:
            searcher = None  # the previous kind's index freed before this one is loaded
            reset_peak_rss()
            searcher = Searcher(index, model, torch.device("cpu"),
                                nprobe=nprobe if kind == "ivf" else None)
            timed = time_searches(searcher, texts, args.rerank)
            search_peak = peak_rss()
            if kind == "flat":
                exact_tops, exact_final = timed["tops"], timed["final_tops"]
            recall = overlap(timed["tops"], exact_tops)
            final_recall = overlap(timed["final_tops"], exact_final)
            rows.append({"kind": kind, "params": {**params, **({"nprobe": nprobe}
                                                               if kind == "ivf" else {})},
                         "build_seconds": seconds,
                         "faiss_bytes": (folder / f"{kind}.faiss").stat().st_size
                         if kind != "flat" else flat_path.stat().st_size,
                         "stage1_ms": timed["stage1"], "rerank_ms": timed["both"],
                         "rerank_warm_ms": timed["warm"],
                         "recall_at_10": recall,
                         "final_top10_agreement": final_recall,
                         "search_peak_rss_bytes": search_peak})
    apparent, allocated = disk_bytes(folder)
    return {"size": size, "write_seconds": built["write_seconds"],
            "sparse_tokens": built["sparse_tokens"], "apparent_bytes": apparent,
            "allocated_bytes": allocated, "rows": rows,
            "build_peak_rss_bytes": build_peak,
            "peak_rss_bytes": max([build_peak, *(row["search_peak_rss_bytes"] or 0
                                                 for row in rows)])}


def icfg(args: argparse.Namespace) -> dict:
    """Exact against two-stage evaluation at 19,848 x 19,848: a measured slice of queries."""
    from benchmark.evaluation.evaluate import rank_all
    from benchmark.evaluation.two_stage import rank_two_stage

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    gallery = 2000 if args.quick else 19848
    persons = gallery // 5
    rng = np.random.default_rng(4)
    pooled = noisy(centres(persons, seed=5)[np.arange(gallery) % persons], rng, scale=0.027)
    tokens = torch.from_numpy(pooled[:, None, :] + 0.05 * rng.standard_normal(
        (gallery, PATCHES, DIM), dtype=np.float32))
    images = ImageFeatures(pooled=torch.from_numpy(pooled), tokens=tokens,
                           mask=torch.ones(gallery, PATCHES, dtype=torch.bool),
                           attention=torch.full((gallery, PATCHES), 1.0 / PATCHES))
    gallery_pids = torch.arange(gallery) % persons
    texts, who = queries(args.icfg_queries, persons, seed=6)
    query_pids = torch.from_numpy(who)
    model = mgcc()
    device = torch.device("cpu")
    started = time.perf_counter()
    rank_all(model, texts, images, query_pids, gallery_pids, device=device, progress=False)
    exact = time.perf_counter() - started
    started = time.perf_counter()
    rank_two_stage(model, texts, images, query_pids, gallery_pids, k=args.rerank,
                   device=device, progress=False)
    two = time.perf_counter() - started
    scale = gallery / args.icfg_queries  # ICFG-PEDES: as many captions as images
    return {"gallery": gallery, "queries_measured": args.icfg_queries, "exact_slice": exact,
            "two_stage_slice": two, "exact_total": exact * scale, "two_stage_total": two * scale,
            "speedup": exact / two}


def gib(value: int | None) -> str:
    return "?" if value is None else f"{value / 2**30:.2f}"


def print_table(results: list[dict], evaluation: dict | None) -> None:
    print(f"{'gallery':>9} {'index':<5} {'params':<46} {'build s':>8} {'faiss MiB':>9} "
          f"{'s1 p50':>7} {'s1 p95':>7} {'+rr p50':>8} {'+rr p95':>8} {'warm p50':>8} "
          f"{'R@10/ex':>7} {'rr@10/ex':>8} {'RSS GiB':>7}")
    for result in results:
        for row in result["rows"]:
            params = ",".join(f"{k}={v}" for k, v in row["params"].items()) or "exact"
            print(f"{result['size']:>9,} {row['kind']:<5} {params:<46} "
                  f"{row['build_seconds']:8.1f} {row['faiss_bytes'] / 2**20:9.0f} "
                  f"{row['stage1_ms'][0]:7.2f} {row['stage1_ms'][1]:7.2f} "
                  f"{row['rerank_ms'][0]:8.2f} {row['rerank_ms'][1]:8.2f} "
                  f"{row['rerank_warm_ms'][0]:8.2f} "
                  f"{row['recall_at_10']:7.3f} {row['final_top10_agreement']:8.3f} "
                  f"{gib(row['search_peak_rss_bytes']):>7}")
        tokens = "sparse: re-ranked rows read as zeros" if result["sparse_tokens"] else "real"
        print(f"{'':>9} index folder {result['apparent_bytes'] / 2**30:.2f} GiB "
              f"({result['allocated_bytes'] / 2**30:.2f} GiB on disk), arrays written in "
              f"{result['write_seconds']:.1f} s, tokens {tokens}; peak RSS of the gallery's "
              f"writing {result['build_peak_rss_bytes'] / 2**30:.2f} GiB, of the whole run "
              f"{result['peak_rss_bytes'] / 2**30:.2f} GiB")
    print("latencies in ms per query; +rr: stage 1 + MGCC re-rank of the top K, its rows "
          "read from disk (page cache dropped before each index kind; sparse rows are holes);"
          "\nwarm: the same query again, rows cached; R@10/ex: "
          "stage-1 top-10 overlap with the exact (flat) stage-1 top 10; rr@10/ex: the same\n"
          "after the re-rank of the top K (approximate candidates against exact candidates);\n"
          "RSS GiB: peak resident memory while that index was loaded and searched "
          "(the whole process's peak on the line below)")
    if evaluation:
        e = evaluation
        print(f"ICFG-PEDES scale ({e['gallery']:,} x {e['gallery']:,}), MGCC: "
              f"{e['queries_measured']} queries measured: exact {e['exact_slice']:.1f} s, "
              f"two-stage {e['two_stage_slice']:.2f} s; extrapolated to every query: exact "
              f"{e['exact_total'] / 60:.1f} min, two-stage {e['two_stage_total'] / 60:.2f} min;"
              f" speed-up {e['speedup']:.1f}x")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    own = args.workdir is None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="perf-search-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.one_size is not None:
        print(json.dumps(one_size(args, args.one_size, workdir)))
        return {}
    try:
        print(f"CPU threads: {os.environ.get('OMP_NUM_THREADS', 'default')}, "
              f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
        results = []
        for size in (int(s) for s in args.sizes.split(",")):
            command = [sys.executable, __file__, "--one-size", str(size), "--workdir",
                       str(workdir), "--queries", str(args.queries), "--rerank", str(args.rerank),
                       "--nlist", str(args.nlist), "--nprobe", str(args.nprobe),
                       "--hnsw-max", str(args.hnsw_max), "--max-token-gb",
                       str(args.max_token_gb)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"gallery {size}: {done.stderr.strip()[-2000:]}")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            shutil.rmtree(workdir / f"gallery-{size}", ignore_errors=True)
        evaluation = None if args.no_icfg else icfg(args)
        print_table(results, evaluation)
        summary = {"galleries": results, "icfg": evaluation,
                   "threads": os.environ.get("OMP_NUM_THREADS")}
        if args.json_out:
            args.json_out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return summary
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
