"""Crossings: train once, evaluate on several datasets; the train -> test matrix.

``bench run --train-dataset A=ROOT --eval-datasets B=ROOT_B,C=ROOT_C`` trains every model on A
as usual (run folder ``runs/A/<model>/seed<k>``, whose ``metrics.json`` is A's own test split),
then evaluates the selected checkpoint (``best.pt``) on the test split of B and C exactly as
``bench eval`` does, writing ``crossings/<B>.json`` into the run folder. The matrix has one row
per (model, train dataset) and one column per test dataset; the diagonal cell comes from the
run's own ``metrics.json``. A cell is the mean over seeds (the std is kept beside it).

Typical use: clean CUHK-PEDES vs Occluded-CUHK-PEDES, both ways, to see whether training on
occluded data helps on clean data and the reverse.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.records.results import RunResult
from toreid.errors import ToreidError

CROSSINGS_DIR = "crossings"
CROSSING_FORMAT = "toreid-crossing"


def crossing_file(run: Path, label: str) -> Path:
    if "/" in label or label in ("", ".", ".."):
        raise ToreidError(f"--eval-datasets: label {label!r} cannot name a file")
    return Path(run) / CROSSINGS_DIR / f"{label}.json"


def evaluate_crossings(run: Path, datasets: Sequence[tuple[str, Path]], *,
                       device: str = "auto", batch_size: int = 128, query_chunk: int = 512,
                       progress: bool = False) -> dict[str, dict[str, Any]]:
    """Evaluate the run's ``best.pt`` on each dataset's test split; write and return records.

    The evaluation is the one of ``bench eval`` (same defaults), so a cell equals a separate
    ``bench eval --run RUN --dataset ROOT`` exactly.
    """
    from benchmark.data.sets import eval_set
    from benchmark.evaluation.evaluate import evaluate
    from benchmark.records.rebuild import dataset_occlusion_flags, rebuild_from_run
    from benchmark.runtime import dist
    from benchmark.runtime.device import resolve_device
    from ogor.datasets import read_dataset
    from ogor.io import atomic_write_json

    model, config = rebuild_from_run(Path(run))
    dev = resolve_device(device, dist.current().local_rank)
    model.to(dev)
    records = {}
    for label, root in datasets:
        if label == config["dataset"]["name"]:
            continue  # the diagonal: the run's own metrics.json
        problem = eval_set(read_dataset(root), "test", dataset_occlusion_flags(Path(root)))
        result = evaluate(model, problem, device=dev, batch_size=batch_size,
                          query_chunk=query_chunk, progress=progress)
        record = {"format": CROSSING_FORMAT, "version": 1,
                  "train_dataset": config["dataset"]["name"], "test_dataset": label,
                  "dataset": str(root), "split": "test", "model": config["model"]["name"],
                  "seed": config["train"]["seed"], "checkpoint": "checkpoints/best.pt",
                  "num_test_ids": problem.num_ids, **result.record()}
        if dist.current().is_main:
            atomic_write_json(crossing_file(run, label), record)
        records[label] = record
    return records


def cells(results: Iterable[RunResult]) -> list[tuple[str, str, str, dict[str, float]]]:
    """(model, train dataset, test dataset, test metrics) of every run and its crossings."""
    from ogor.io import read_json

    out = []
    for result in results:
        out.append((result.model, result.dataset, result.dataset, result.test))
        folder = Path(result.path) / CROSSINGS_DIR
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            record = read_json(path, "crossing record")
            if not isinstance(record, dict) or record.get("format") != CROSSING_FORMAT:
                raise ToreidError(f"{path}: field 'format': not a {CROSSING_FORMAT} record")
            out.append((result.model, result.dataset, record["test_dataset"], record["test"]))
    return out


def has_crossings(results: Iterable[RunResult]) -> bool:
    return any((Path(r.path) / CROSSINGS_DIR).is_dir() for r in results)


def crossing_matrix(results: Iterable[RunResult], metric: str = "R@1") -> pd.DataFrame:
    """Index (model, train dataset); columns (test dataset, ``mean`` / ``std`` / ``n``)."""
    grouped: dict[tuple[str, str], dict[str, list[float]]] = {}
    tests: list[str] = []
    for model, train, test, metrics in cells(results):
        grouped.setdefault((model, train), {}).setdefault(test, []).append(float(metrics[metric]))
        if test not in tests:
            tests.append(test)
    rows = {}
    for key, by_test in grouped.items():
        row = {}
        for test, values in by_test.items():
            n = len(values)
            mean = math.fsum(values) / n
            std = (math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1
                   else math.nan)
            row[(test, "mean")], row[(test, "std")], row[(test, "n")] = mean, std, float(n)
        rows[key] = row
    columns = pd.MultiIndex.from_tuples([(t, s) for t in tests for s in ("mean", "std", "n")],
                                        names=["test", "stat"])
    index = pd.MultiIndex.from_tuples(list(rows), names=["model", "train"])
    return pd.DataFrame([[rows[k].get(c, math.nan) for c in columns] for k in rows],
                        index=index, columns=columns, dtype="float64")


def to_markdown(frame: pd.DataFrame, metric: str = "R@1") -> str:
    """``| model | train | test A | test B |``; the diagonal is the run's own test split."""
    tests = list(dict.fromkeys(frame.columns.get_level_values("test")))
    lines = [f"Train -> test matrix ({metric}, test split of each column's dataset):", "",
             "| Model | Train \\ Test | " + " | ".join(tests) + " |",
             "|---|---|" + "---:|" * len(tests)]
    for model, train in frame.index:
        cells_ = []
        for test in tests:
            mean = frame.loc[(model, train), (test, "mean")]
            std = frame.loc[(model, train), (test, "std")]
            cells_.append("-" if math.isnan(mean) else
                          f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}")
        lines.append(f"| {model} | {train} | " + " | ".join(cells_) + " |")
    return "\n".join(lines) + "\n"
