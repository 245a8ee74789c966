"""The corruption sweep of ``bench robustness --corruptions``: every run on every (corruption,
severity, seed) derived from each base test set (the clean copy, or an occluded version when
crossed with occlusion ratios).

Per (run, ratio) the record holds the clean point (severity 0: the base itself, the same numbers
as the occlusion sweep at that ratio, and at ratio 0 the same as ``bench eval`` on the clean
split), then one cell per (corruption, severity): mean ± sample std over seeds, each seed's
metrics, and ``relative`` = 100 x cell mean / clean mean per metric (its drop is
100 - relative).

The summary number, **mRR@1** (mean relative R@1), per (run, ratio)::

    mRR@1 = mean over corruptions c and severities s >= 1 of  100 * R@1(c, s) / R@1(clean)

where R@1(c, s) and R@1(clean) are means over the seeds. 100 means untouched by every
corruption; 50 means that, on average over the cells, half of the clean R@1 survives. It is
``None`` when the clean R@1 is 0.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

SUMMARY = "mRR@1"
SUMMARY_DEFINITION = ("mRR@1 = mean over the (corruption, severity >= 1) cells of "
                      "100 * R@1(cell) / R@1(clean), R@1 being means over seeds")


def corruption_header(corruptions: Sequence[str], severities: Sequence[int]) -> dict[str, Any]:
    """The record's top-level fields of a corruption sweep: what ran, from which table."""
    from benchmark.evaluation.corruptions.derive import _library_version
    from benchmark.evaluation.corruptions.table import TABLE_FILE, table_sha256

    return {"corruptions": list(corruptions), "severities": list(severities),
            "corruption_table": {"file": TABLE_FILE.name, "sha256": table_sha256(),
                                 "albumentations": _library_version("albumentations")},
            "summary": {"name": SUMMARY, "definition": SUMMARY_DEFINITION}}


def relative(mean: dict[str, float], clean: dict[str, float]) -> dict[str, float | None]:
    """100 x mean / clean, per metric (``None`` where the clean value is 0)."""
    return {m: (100.0 * mean[m] / clean[m] if clean[m] else None) for m in mean}


def mean_relative_r1(cells: Sequence[dict[str, Any]], clean_r1: float) -> float | None:
    """mRR@1 of a table of cells (each with ``mean["R@1"]``) against the clean R@1."""
    if not cells or not clean_r1:
        return None
    return sum(100.0 * c["mean"]["R@1"] / clean_r1 for c in cells) / len(cells)


def evaluate_problem(model: Any, base: Path, corruption: str, severity: int, seed: int,
                     split: str, cache: Path, run_eval: Callable[[Any], dict[str, Any]]
                     ) -> tuple[dict[str, Any], str]:
    """Metrics of one derived set and where it lies (image folder or caption file)."""
    from benchmark.data.sets import eval_set
    from benchmark.evaluation.corruptions.derive import corrupted_images, perturbed_captions
    from ogor.datasets import read_dataset

    if corruption.startswith("image:"):
        root = corrupted_images(base, split, corruption, severity, seed, cache)
        return run_eval(eval_set(read_dataset(root), split)), str(root)
    problem = eval_set(read_dataset(base), split)
    captions, path = perturbed_captions(base, split, corruption, severity, seed, cache)
    return run_eval(dataclasses.replace(problem, captions=captions)), str(path)


def corruption_sweep(model: Any, label: str, bases: dict[tuple[float, int], Path],
                     sweep: Sequence[dict[str, Any]], corruptions: Sequence[str],
                     severities: Sequence[int], split: str, cache: Path,
                     run_eval: Callable[[Any], dict[str, Any]],
                     log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """One block per ratio of ``sweep`` (the run's occlusion sweep points, the clean anchors)."""
    from benchmark.evaluation.metrics import mean_std_over_seeds

    blocks = []
    for point in sweep:
        ratio = point["ratio"]
        seeds = [int(s) for s in point["per_seed"]]
        started = time.perf_counter()
        cells = []
        for corruption in corruptions:
            for severity in severities:
                per_seed, derived = {}, {}
                for seed in seeds:
                    per_seed[str(seed)], derived[str(seed)] = evaluate_problem(
                        model, bases[(ratio, seed)], corruption, severity, seed, split, cache,
                        run_eval)
                mean, std = mean_std_over_seeds(list(per_seed.values()))
                cells.append({"corruption": corruption, "severity": severity, "mean": mean,
                              "std": std, "relative": relative(mean, point["mean"]),
                              "per_seed": per_seed, "derived": derived})
                log(f"   {label}: ratio {ratio:g}  {corruption} s{severity}  "
                    f"R@1 {mean['R@1']:.2f}  ({cells[-1]['relative']['R@1'] or 0:.0f}% of clean)")
        summary = mean_relative_r1(cells, point["mean"]["R@1"])
        blocks.append({"ratio": ratio,
                       "clean": {"mean": point["mean"], "std": point["std"],
                                 "per_seed": point["per_seed"]},
                       "cells": cells, SUMMARY: summary,
                       "wall_s": round(time.perf_counter() - started, 2)})
        shown = "-" if summary is None else f"{summary:.2f}"
        log(f"   {label}: ratio {ratio:g}  {SUMMARY} {shown}")
    return blocks


def csv_rows(record: dict[str, Any], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of kind ``corruption`` (group ``<corruption>@<severity>``) and ``mRR@1``."""
    rows = []
    for run in record["runs"]:
        for block in run.get("corruptions", ()):
            for cell in block["cells"]:
                rows.append({"label": run["label"], "run": run["run"], "kind": "corruption",
                             "ratio": block["ratio"],
                             "group": f"{cell['corruption']}@{cell['severity']}",
                             "num_queries": next(iter(cell["per_seed"].values()))["num_queries"]
                             * len(cell["per_seed"]),
                             **{m: cell["mean"][m] for m in metrics},
                             **{f"{m}_std": cell["std"][m] for m in metrics}})
            rows.append({**{m: None for m in metrics}, **{f"{m}_std": None for m in metrics},
                         "label": run["label"], "run": run["run"], "kind": SUMMARY,
                         "ratio": block["ratio"], "group": "all", "num_queries": None,
                         "R@1": block[SUMMARY]})
    return rows


def worst_cells(block: dict[str, Any], n: int = 5) -> list[dict[str, Any]]:
    """The ``n`` cells of lowest R@1 (ties: table order)."""
    return sorted(block["cells"], key=lambda c: c["mean"]["R@1"])[:n]
