"""Exact MGCC evaluation at CUHK-PEDES test scale, with random features: time, memory, GFLOP/s.

What runs is the harness's own evaluation path (:func:`benchmark.evaluation.evaluate.rank_all`): the
MGCC model's ``similarity`` in query x gallery blocks, each block ranked exactly
(:func:`benchmark.evaluation.metrics.rank_chunk`) so that the full Q x G matrix is never
materialised. Only the encoders are skipped: the features are random, with the shapes ViT-B/16 at
384x128 gives at the paper's CUHK-PEDES ratios (FACTS.md section 5):

* gallery: 3,074 images, 24x8 = 192 patches, top round(0.3 x 192) = 58 kept, 512-d;
* queries: 6,156 captions; a full 77-token context has 75 word positions and rho_t = 0.4 keeps
  30 of them (the worst case: every caption as long as the context; real captions are shorter);
* all four similarities with AF fusion (tau 0.01).

FLOP count: the multiply-adds of the four similarities' matrix products,
``2 Q G d (1 + n + m + n m)``; the n x m token products (S_P-W) are 95% of it. The
elementwise work of the fusions (softmax-weighted sums over the token grid) is not counted as
FLOPs, so GFLOP/s here is "useful matmul work per second", compared against the machine's
fp32 matmul rate measured in the same run (a large ``torch.matmul``, TF32 off). Target: at
least 50% of that rate, with peak memory bounded by the block (``--chunk``), not by Q x G.

Usage::

    python perf/evaluate.py                          # CUHK-PEDES test scale, GPU if present
    python perf/evaluate.py --scale 0.05 --device cpu # a CPU smoke run
    python perf/evaluate.py --chunk 256 --chunk 1024 --json-out perf-evaluate.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.evaluation.evaluate import rank_all  # noqa: E402
from benchmark.evaluation.metrics import summarize  # noqa: E402
from models import ImageFeatures, TextFeatures, build_model  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--queries", type=int, default=6156)
    p.add_argument("--gallery", type=int, default=3074)
    p.add_argument("--ids", type=int, default=1000, help="test identities")
    p.add_argument("--patches", type=int, default=192, help="patch tokens per image (24x8)")
    p.add_argument("--rho-image", type=float, default=0.3)
    p.add_argument("--words", type=int, default=75, help="word positions per caption")
    p.add_argument("--rho-text", type=float, default=0.4)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply queries and gallery by this (CPU smoke runs)")
    p.add_argument("--chunk", type=int, action="append", default=None,
                   help="similarity block side (texts = images = CHUNK); repeat to compare; "
                        "default: the model's own choice")
    p.add_argument("--query-chunk", type=int, default=None,
                   help="queries per ranking block (default: 4 x chunk, at least 512)")
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model's pair_similarity (fuses the AF reductions)")
    p.add_argument("--repeat", type=int, default=1, help="timed repetitions (best is kept)")
    p.add_argument("--json-out", type=Path, default=None)
    return p.parse_args(argv)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device) -> float:
    """The machine's fp32 matmul rate in GFLOP/s: a large square product, TF32 off."""
    torch.backends.cuda.matmul.allow_tf32 = False
    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(2):
        torch.matmul(a, b)
    sync(device)
    reps = 10 if device.type == "cuda" else 3
    start = time.perf_counter()
    for _ in range(reps):
        torch.matmul(a, b)
    sync(device)
    seconds = (time.perf_counter() - start) / reps
    return 2 * n**3 / seconds / 1e9


def random_features(q: int, g: int, n: int, m: int, d: int, ids: int,
                    device: torch.device, seed: int = 0):
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def feats(cls, b: int, t: int):
        tokens = torch.randn(b, t, d, generator=gen)
        return cls(pooled=torch.randn(b, d, generator=gen), tokens=tokens,
                   mask=torch.ones(b, t, dtype=torch.bool),
                   attention=torch.full((b, t), 1.0 / t)).to(device)

    images = feats(ImageFeatures, g, n)
    texts = feats(TextFeatures, q, m)
    gallery_pids = torch.arange(g) % ids
    query_pids = gallery_pids[torch.randint(0, g, (q,), generator=gen)]
    return texts, images, query_pids, gallery_pids


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    q = max(1, round(args.queries * args.scale))
    g = max(1, round(args.gallery * args.scale))
    ids = max(1, min(args.ids, g))
    n = max(1, round(args.rho_image * args.patches))
    m = max(1, round(args.rho_text * args.words))
    d = args.dim
    flops = 2.0 * q * g * d * (1 + n + m + n * m)

    # The similarity does not depend on the encoders, so a tiny backbone carries MGCC's config.
    model = build_model("mgcc", backbone="tiny", rho_image=args.rho_image,
                        rho_text=args.rho_text).to(device).eval()
    if args.compile:
        model.pair_similarity = torch.compile(model.pair_similarity, dynamic=False)
    texts, images, qpids, gpids = random_features(q, g, n, m, d, ids, device)
    peak_rate = matmul_rate(device)
    device_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"{platform.processor() or platform.machine()} "
                        f"({torch.get_num_threads()} threads)")
    print(f"device: {device_name}; fp32 matmul rate: {peak_rate:,.0f} GFLOP/s")
    print(f"problem: {q} queries x {g} gallery, {n} patches x {m} words kept, d={d}; "
          f"{flops / 1e12:.2f} TFLOP of similarity matmuls")

    rows = []
    for chunk in args.chunk or [None]:
        query_chunk = args.query_chunk or max(512, 4 * (chunk or 128))
        best = math.inf
        metrics = None
        peak_mem = 0
        if args.compile or device.type == "cuda":  # compile / warm up outside the timing
            rank_all(model, texts, images, qpids, gpids, device=device,
                     query_chunk=query_chunk, gallery_chunk=chunk, progress=False)
        for _ in range(max(1, args.repeat)):
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
                base_mem = torch.cuda.memory_allocated(device)
            sync(device)
            start = time.perf_counter()
            stats = rank_all(model, texts, images, qpids, gpids, device=device,
                             query_chunk=query_chunk, gallery_chunk=chunk, progress=False)
            sync(device)
            best = min(best, time.perf_counter() - start)
            metrics = summarize(stats)
            if device.type == "cuda":
                peak_mem = max(peak_mem, torch.cuda.max_memory_allocated(device) - base_mem)
            else:
                peak_mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        achieved = flops / best / 1e9
        row = {
            "chunk": chunk, "compiled": bool(args.compile), "query_chunk": query_chunk,
            "seconds": best,
            "ms_per_query": 1000 * best / q, "peak_memory_bytes": int(peak_mem),
            "peak_memory_kind": "cuda max_memory_allocated above the features"
            if device.type == "cuda" else "process max RSS",
            "gflops": achieved, "fraction_of_matmul_rate": achieved / peak_rate,
            "R@1": metrics["R@1"], "mAP": metrics["mAP"],
        }
        rows.append(row)

    print(f"{'chunk':>7} {'q-chunk':>8} {'seconds':>9} {'ms/query':>9} {'peak MiB':>9} "
          f"{'GFLOP/s':>10} {'of matmul':>9}")
    for r in rows:
        print(f"{str(r['chunk'] or 'auto'):>7} {r['query_chunk']:>8} {r['seconds']:9.3f} "
              f"{r['ms_per_query']:9.4f} {r['peak_memory_bytes'] / 2**20:9.1f} "
              f"{r['gflops']:10,.0f} {100 * r['fraction_of_matmul_rate']:8.1f}%")
    result = {
        "device": device_name, "torch": torch.__version__,
        "matmul_gflops": peak_rate, "queries": q, "gallery": g, "patches_kept": n,
        "words_kept": m, "dim": d, "flops": flops, "rows": rows,
        "features_bytes": sum(t.numel() * t.element_size() for f in (texts, images)
                              for t in (f.pooled, f.tokens, f.mask, f.attention)),
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
