"""GPU check, ready to run whenever a GPU machine is at hand (issue 21, item 8).

In under 8 minutes on one GPU, with random weights (nothing downloaded) at the paper presets'
resolutions, it measures what a multi-GPU user needs to know before a long run:

1. **training steps** of ``mgcc`` and ``irra`` at their paper batch (128 and 64) with
   ``--amp`` (bf16): the same step as ``bench run`` (forward, the model's losses, backward,
   optimiser step with the preset's parameter groups) on synthetic batches (random pixels at
   the model's input size, real captions, two samples per identity); step time, images/s and
   peak GPU memory;
2. **the exact evaluation** of ``mgcc`` at CUHK-PEDES test scale (3,074 images x 6,156
   captions, ratios (0.3, 0.4)) and ICFG-PEDES scale (19,848 x 19,848, ratios (0.4, 0.5)):
   random images and captions encoded in batches by the model's encoders, then the model's own
   exact similarity in blocks, every query ranked against the whole gallery (the path of
   ``bench run``'s test evaluation: :func:`benchmark.evaluation.evaluate.rank_all`, the
   similarity compiled on CUDA as the paper preset asks); encode and ranking times, peak memory;
3. **scaling efficiency** when several GPUs exist: the same training steps under ``torchrun``
   on every GPU at the same *global* batch (each GPU takes batch / N, the batch losses gather
   across processes), images/s over N x the one-GPU images/s.

``--dry-run`` is a tiny CPU mode (the tiny preset's models, a few dozen images and captions, two
CPU processes with gloo for the scaling part) that runs every code path in seconds; the test
suite runs it so that this script cannot rot. Its figures mean nothing.

Usage::

    python perf/gpu_check.py                         # the GPU check (all GPUs found)
    python perf/gpu_check.py --json-out gpu-check.json
    python perf/gpu_check.py --dry-run               # tiny CPU mode, seconds
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# This file is perf/gpu_check.py: run as a script, perf/ would shadow the `models` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import torch  # noqa: E402

from benchmark.evaluation.evaluate import autocast, compiled_similarity, rank_all  # noqa: E402
from benchmark.evaluation.metrics import summarize  # noqa: E402
from benchmark.pipeline.runner import make_train_config  # noqa: E402
from benchmark.records.spec import TrainConfig, model_options_for  # noqa: E402
from benchmark.training.loop import training_step  # noqa: E402
from benchmark.training.optim import build_optimizer  # noqa: E402
from perf.models import CAPTIONS  # noqa: E402  (the same paper-length captions)

TRAIN_MODELS = ("mgcc", "irra")
#: The ID classifier's width: CUHK-PEDES's 11,003 training identities.
TRAIN_IDS = 11003
#: label -> (dataset format: MGCC's ratios, images, captions, test identities).
EVAL_SCALES: dict[str, tuple[str, int, int, int]] = {
    "CUHK-PEDES test": ("cuhk-pedes", 3074, 6156, 1000),
    "ICFG-PEDES test": ("icfg-pedes", 19848, 19848, 1000),
}
DRY_EVAL_SCALES = {"CUHK-PEDES (dry)": ("cuhk-pedes", 24, 48, 8),
                   "ICFG-PEDES (dry)": ("icfg-pedes", 32, 32, 8)}
BUDGET_SECONDS = 8 * 60


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true",
                   help="tiny CPU mode: every code path in seconds, meaningless figures")
    p.add_argument("--amp-dtype", choices=["bf16", "fp16", "off"], default="bf16",
                   help="mixed precision of training and encoding on CUDA (bench run --amp)")
    p.add_argument("--steps", type=int, default=None, help="timed training steps (GPU: 20)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (GPU: 3)")
    p.add_argument("--skip-eval", action="store_true", help="no evaluation part")
    p.add_argument("--skip-scaling", action="store_true", help="no multi-GPU part")
    p.add_argument("--json-out", type=Path, default=None)
    p.add_argument("--scaling-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.steps = args.steps or (2 if args.dry_run else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.dry_run else 3)
    return args


def _device(args: argparse.Namespace, local_rank: int = 0) -> torch.device:
    if args.dry_run or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(f"cuda:{local_rank}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_bytes(device: torch.device) -> int:
    """CUDA: the allocator's peak since the last reset; CPU: the process's max RSS."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def build(name: str, dry: bool, dataset_format: str = "cuhk-pedes",
          ) -> tuple[torch.nn.Module, TrainConfig]:
    """``name`` as ``bench run --preset paper`` (``tiny`` in the dry run) builds it for
    ``dataset_format``, with random weights: every field that names a weights file is unset."""
    from models import build_model_from_config
    from models.registry import model_config, requires_vocabulary, with_vocabulary

    cfg, options = make_train_config("tiny" if dry else "paper", name, 1, {})
    options = model_options_for(name, dataset_format, options)
    if requires_vocabulary(name, options):
        options = with_vocabulary(name, options, CAPTIONS)
    torch.manual_seed(0)
    config = model_config(name, num_classes=TRAIN_IDS, **options)
    return build_model_from_config(config, load_pretrained=False), cfg


def _batch(model: torch.nn.Module, size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """A synthetic training batch: random pixels, real captions, two samples per identity."""
    gen = torch.Generator().manual_seed(size)
    return {"images": torch.randn(size, 3, *model.image_size, generator=gen).to(device),
            "tokens": model.tokenize([CAPTIONS[i % len(CAPTIONS)] for i in range(size)]
                                     ).to(device),
            "pids": (torch.arange(size) // 2 % TRAIN_IDS).to(device)}


def time_training(model: torch.nn.Module, train_model: torch.nn.Module, cfg: TrainConfig,
                  per_process: int, device: torch.device, amp: str, steps: int,
                  warmup: int) -> dict[str, float]:
    """``bench run``'s training step (``benchmark.training.loop._train_epoch``) repeated on
    one synthetic batch: seconds per step and peak memory of this process."""
    optimizer = build_optimizer(model, cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=(amp == "fp16" and device.type == "cuda"))
    inputs = _batch(model, per_process, device)
    train_model.train()

    def step() -> None:
        training_step(train_model, model, inputs, optimizer, scaler, amp=amp,
                      grad_clip=cfg.grad_clip, device=device)

    for _ in range(warmup):
        step()
    _sync(device)
    _reset_peak(device)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = (time.perf_counter() - started) / steps
    return {"step_seconds": seconds, "peak_bytes": _peak_bytes(device)}


def training_rows(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    rows = []
    for name in TRAIN_MODELS:
        model, cfg = build(name, args.dry_run)
        model = model.to(device)
        timing = time_training(model, model, cfg, cfg.batch_size, device, args.amp_dtype,
                               args.steps, args.warmup)
        rows.append({"model": name, "batch": cfg.batch_size, "processes": 1,
                     "image_size": list(model.image_size), **timing,
                     "images_per_second": cfg.batch_size / timing["step_seconds"]})
        del model
        _reset_peak(device)
    return rows


def _random_image_features(model: torch.nn.Module, count: int, batch: int,
                           device: torch.device, amp: str) -> Any:
    gen = torch.Generator(device=device).manual_seed(count)  # drawn where they are encoded
    parts = []
    for start in range(0, count, batch):
        pixels = torch.randn(min(batch, count - start), 3, *model.image_size, generator=gen,
                             device=device)
        with autocast(device, amp):
            feats = model.encode_images(pixels)
        parts.append(feats.to("cpu", dtype=torch.float32))
    return type(parts[0]).cat(parts)


def _text_features(model: torch.nn.Module, count: int, batch: int, device: torch.device,
                   amp: str) -> Any:
    captions = [f"{CAPTIONS[i % len(CAPTIONS)]} Person {i}." for i in range(count)]
    parts = []
    for start in range(0, count, batch):
        tokens = model.tokenize(captions[start:start + batch]).to(device)
        with autocast(device, amp):
            feats = model.encode_texts(tokens)
        parts.append(feats.to("cpu", dtype=torch.float32))
    return type(parts[0]).cat(parts)


@torch.no_grad()
def evaluation_rows(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """The exact t2i evaluation of ``mgcc`` at each test scale, random images and captions."""
    rows = []
    scales = DRY_EVAL_SCALES if args.dry_run else EVAL_SCALES
    for label, (fmt, gallery, queries, ids) in scales.items():
        model, cfg = build("mgcc", args.dry_run, fmt)
        model = model.to(device).eval()
        _reset_peak(device)
        started = time.perf_counter()
        images = _random_image_features(model, gallery, cfg.eval_batch_size, device,
                                        args.amp_dtype)
        texts = _text_features(model, queries, 2 * cfg.eval_batch_size, device, args.amp_dtype)
        _sync(device)
        encoded = time.perf_counter()
        gallery_pids = torch.arange(gallery) % ids
        query_pids = gallery_pids[torch.arange(queries) % gallery]  # caption i: image i % G
        compiled = cfg.compile_similarity and device.type == "cuda"
        with compiled_similarity(model, device, compiled):
            if compiled or args.dry_run:  # compile the block shapes outside the timing
                rank_all(model, texts[:cfg.query_chunk], images, query_pids[:cfg.query_chunk],
                         gallery_pids, device=device, query_chunk=cfg.query_chunk,
                         progress=False)
                _sync(device)
            ranking = time.perf_counter()
            stats = rank_all(model, texts, images, query_pids, gallery_pids, device=device,
                             query_chunk=cfg.query_chunk, progress=False)
            _sync(device)
        done = time.perf_counter()
        rows.append({"scale": label, "gallery": gallery, "queries": queries,
                     "ratios": [model.config.rho_image, model.config.rho_text],
                     "compiled": compiled, "encode_seconds": encoded - started,
                     "compile_seconds": ranking - encoded, "rank_seconds": done - ranking,
                     "peak_bytes": _peak_bytes(device), "R@1": summarize(stats)["R@1"]})
        del model, images, texts
    return rows


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scaling_rows(args: argparse.Namespace, single: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Images/s of every GPU together (torchrun, one process each, the same global batch)
    against one GPU; two CPU processes in the dry run; nothing with a single GPU."""
    count = 2 if args.dry_run else (torch.cuda.device_count() if torch.cuda.is_available()
                                    else 0)
    if count < 2 or args.skip_scaling:
        return []
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the GPU 0 process of the run below needs the memory
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "scaling.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                   str(count), "--master_addr", "127.0.0.1", "--master_port",
                   str(_free_port()), str(Path(__file__).resolve()), "--scaling-worker",
                   "--amp-dtype", args.amp_dtype, "--steps", str(args.steps), "--warmup",
                   str(args.warmup), "--json-out", str(report)]
        if args.dry_run:
            command.append("--dry-run")
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"error: the {count}-process scaling run failed:\n"
                             f"{done.stderr[-3000:]}")
        measured = json.loads(report.read_text(encoding="utf-8"))
    one = {r["model"]: r["images_per_second"] for r in single}
    return [{**row, "efficiency": row["images_per_second"] / (count * one[row["model"]])}
            for row in measured]


def scaling_worker(args: argparse.Namespace) -> None:
    """One ``torchrun`` process: the training steps of each model under DDP as ``bench run``
    wraps them (SyncBatchNorm on CUDA, the model's own ``find_unused_parameters``)."""
    from benchmark.data.sets import per_process_batch
    from benchmark.runtime import dist

    probe = _device(args)
    world = dist.init_from_env(probe.type)
    device = _device(args, world.local_rank)
    rows = []
    for name in TRAIN_MODELS:
        model, cfg = build(name, args.dry_run)
        model = model.to(device)
        if not model.batch_gathers:
            raise SystemExit(f"error: model '{name}' does not gather its batch losses")
        if device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=model.ddp_find_unused_parameters)
        share = per_process_batch(cfg.batch_size, world.size)
        timing = time_training(model, wrapped, cfg, share, device, args.amp_dtype, args.steps,
                               args.warmup)
        seconds = max(dist.gather_objects(timing["step_seconds"]))
        peak = max(dist.gather_objects(timing["peak_bytes"]))
        rows.append({"model": name, "batch": cfg.batch_size, "processes": world.size,
                     "per_process": share, "step_seconds": seconds, "peak_bytes": peak,
                     "images_per_second": cfg.batch_size / seconds})
        del wrapped, model
    if world.is_main:
        args.json_out.write_text(json.dumps(rows), encoding="utf-8")
    torch.distributed.destroy_process_group()


def _mib(value: int) -> str:
    return f"{value / 2**20:,.0f}"


def print_tables(result: dict[str, Any]) -> None:
    memory = "peak GPU MiB" if result["device_type"] == "cuda" else "max RSS MiB"
    print(f"\ndevice: {result['device']}; torch {result['torch']}; amp {result['amp']}"
          + ("; DRY RUN (tiny CPU models: the figures mean nothing)" if result["dry_run"]
             else ""))
    print(f"\n{'training':<10} {'batch':>6} {'input':>9} {'ms/step':>9} {'images/s':>10} "
          f"{memory:>13}")
    for r in result["training"]:
        size = "x".join(str(v) for v in r["image_size"])
        print(f"{r['model']:<10} {r['batch']:>6} {size:>9} {1000 * r['step_seconds']:9.1f} "
              f"{r['images_per_second']:10,.1f} {_mib(r['peak_bytes']):>13}")
    if result["evaluation"]:
        print(f"\n{'mgcc exact evaluation':<22} {'images x captions':>18} {'encode s':>9} "
              f"{'compile s':>10} {'rank s':>8} {memory:>13}")
        for r in result["evaluation"]:
            shape = f"{r['gallery']:,} x {r['queries']:,}"
            print(f"{r['scale']:<22} {shape:>18} {r['encode_seconds']:9.1f} "
                  f"{r['compile_seconds']:10.1f} {r['rank_seconds']:8.1f} "
                  f"{_mib(r['peak_bytes']):>13}")
    if result["scaling"]:
        print(f"\n{'scaling':<10} {'processes':>9} {'global':>7} {'each':>5} {'images/s':>10} "
              f"{'efficiency':>10} {memory:>13}")
        for r in result["scaling"]:
            print(f"{r['model']:<10} {r['processes']:>9} {r['batch']:>7} {r['per_process']:>5} "
                  f"{r['images_per_second']:10,.1f} {100 * r['efficiency']:9.1f}% "
                  f"{_mib(r['peak_bytes']):>13}")
    else:
        print(f"\nscaling: {result['scaling_note']}")
    print(f"\ntotal {result['seconds']:.0f} s (budget {BUDGET_SECONDS} s on one GPU)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.scaling_worker:
        scaling_worker(args)
        return {}
    started = time.perf_counter()
    device = _device(args)
    if device.type == "cuda":
        name = f"{torch.cuda.get_device_name(device)} x {torch.cuda.device_count()}"
    else:
        name = f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"
    amp = args.amp_dtype if device.type == "cuda" else "off"
    training = training_rows(args, device)
    evaluation = [] if args.skip_eval else evaluation_rows(args, device)
    scaling = scaling_rows(args, training)
    note = ("skipped (--skip-scaling)" if args.skip_scaling else
            "one GPU only: not measured" if not scaling else "")
    result = {"device": name, "device_type": device.type, "torch": torch.__version__,
              "amp": amp, "dry_run": args.dry_run, "training": training,
              "evaluation": evaluation, "scaling": scaling, "scaling_note": note,
              "seconds": time.perf_counter() - started}
    print_tables(result)
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
