"""Run folders for models that were not trained here: zero-shot CLIP and released checkpoints.

A run folder is what every command that takes a run reads (``bench eval``, ``bench query``,
``bench table``): ``config.json`` with the model's config (so
:func:`benchmark.records.rebuild.rebuild_from_run` rebuilds the architecture),
``checkpoints/best.pt`` with the weights, ``env.json``, and, once evaluated on a dataset's test
split, ``metrics.json``. This module writes such a folder for a model that already has its weights,
with ``selection.split = "none"`` and a rule that says where the weights came from (a file and
its sha256, or "zero-shot"), so a table never mistakes such a row for one trained here.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from benchmark.data.sets import eval_set
from benchmark.evaluation.evaluate import evaluate
from benchmark.records import results
from benchmark.records.checkpoints import save_checkpoint
from benchmark.records.rebuild import dataset_occlusion_flags
from benchmark.records.spec import RunSpec
from benchmark.runtime.device import resolve_device
from ogor.datasets import read_dataset
from ogor.io import atomic_write_json
from toreid.errors import ToreidError

#: The label that marks a released checkpoint's row in tables.
RELEASED_MARK = "released checkpoint"


def refuse_existing(run: Path) -> None:
    """A run folder is written once: refuse one that already holds a run."""
    for name in ("config.json", "metrics.json"):
        if (Path(run) / name).exists():
            raise ToreidError(f"{Path(run) / name}: the run folder already holds a run (choose "
                              "another --out, or delete it)")


def write_run(
    run: Path,
    model: torch.nn.Module,
    *,
    model_label: str,
    source: dict[str, Any],
    dataset: tuple[str, Path] | None,
    seed: int = 0,
    preset: str = "released",
    device: str = "auto",
    batch_size: int = 128,
    query_chunk: int = 512,
    progress: bool = False,
) -> dict[str, Any] | None:
    """Write a run folder for ``model`` as it is; evaluate it on ``dataset``'s test split.

    Args:
        run: the run folder to create.
        model: a registry model holding the weights to record.
        model_label: the row label in tables (e.g. ``"irra [released checkpoint]"``).
        source: where the weights came from (format, file, sha256, ...), kept in
            ``config.json`` and ``metrics.json``.
        dataset: (label, root) to evaluate on, or ``None`` to write the folder without
            ``metrics.json`` (``bench eval --dataset`` can evaluate it later).

    Returns:
        The ``metrics.json`` record, or ``None`` without a dataset.
    """
    run = Path(run)
    refuse_existing(run)
    dev = resolve_device(device)
    config_record: dict[str, Any] = {
        "dataset": None,
        "model": {"name": model_label, "options": {},
                  "config": dataclasses.asdict(model.config)},
        "train": None,
        "preset": preset,
        "source": source,
        "world_size": 1,
    }
    problem = None
    if dataset is not None:
        label, root = dataset
        data = read_dataset(root)
        flags = dataset_occlusion_flags(root)
        problem = eval_set(data, "test", flags)
        config_record["dataset"] = {"name": label, "root": str(root), "format": data.format.name,
                                    "test_ids": problem.num_ids, "has_manifest": flags is not None}
    save_checkpoint(results.checkpoint_dir(run) / "best.pt",
                    {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                     "epoch": 0})
    atomic_write_json(run / "config.json", config_record)
    atomic_write_json(run / "env.json", results.environment(str(dev)))
    if problem is None:
        return None
    model.to(dev)
    evaluation = evaluate(model, problem, device=dev, batch_size=batch_size,
                          query_chunk=query_chunk, progress=progress)
    label, root = dataset  # type: ignore[misc]
    record = {
        "format": results.RESULT_FORMAT, "version": results.RESULT_VERSION,
        "dataset": label, "dataset_root": str(root),
        "dataset_format": config_record["dataset"]["format"], "model": model_label,
        "seed": seed, "preset": preset, **evaluation.record(),
        "selection": {"split": "none", "rule": source.get("rule", RELEASED_MARK),
                      "metric": None, "epoch": 0, "score": None},
        "epochs": 0, "checkpoint": "checkpoints/best.pt", "train_seconds": 0.0,
        "eval_seconds": round(evaluation.seconds, 3), "num_test_ids": problem.num_ids,
        "chance_r1": 100.0 / problem.num_ids, "source": source,
    }
    results.write_result(run, record)
    return record


def evaluate_untrained(spec: RunSpec, out: Path, *, progress: bool = True) -> dict[str, Any]:
    """``bench run`` for a model that needs no training (``clip-zeroshot``): build it from its
    weights, record them and evaluate on test. A finished run is reused as it is."""
    from models import build_model

    run = results.run_dir(out, spec.dataset, spec.model, spec.train.seed)
    if (run / "metrics.json").is_file():
        return results.read_result(run / "metrics.json").record
    started = time.perf_counter()
    torch.manual_seed(spec.train.seed)
    model = build_model(spec.model, **spec.model_options)
    source = {"format": "zero-shot", "weights": spec.model_options.get("pretrained"),
              "rule": "zero-shot: the pretrained weights, no training and no selection"}
    record = write_run(run, model, model_label=spec.model, source=source,
                       dataset=(spec.dataset, spec.dataset_root), seed=spec.train.seed,
                       preset=spec.preset, device=spec.train.device,
                       batch_size=spec.train.eval_batch_size,
                       query_chunk=spec.train.query_chunk, progress=progress)
    assert record is not None
    record["eval_seconds"] = round(time.perf_counter() - started, 3)
    return record
