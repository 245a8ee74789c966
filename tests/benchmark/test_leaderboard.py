"""Leaderboard: CSV round trip, mean/std over seeds, and the published Table 2 rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmark.records.results import find_results, run_dir, write_result
from benchmark.reporting.leaderboard import (
    MEASURED,
    PUBLISHED,
    TABLE_METRICS,
    build_table,
    read_csv,
    render,
    to_csv,
)


def _metrics(rng: np.random.Generator) -> dict:
    r1, r5, r10 = sorted(rng.uniform(0, 100, 3))
    return {"R@1": r1, "R@5": r5, "R@10": r10, "mAP": rng.uniform(0, 100),
            "mINP": rng.uniform(0, 100), "Rsum": r1 + r5 + r10, "num_queries": 10}


def _write_runs(root, rng):
    values = {}
    for dataset in ("demo", "Occluded-RSTPReid"):
        for model in ("mgcc", "irra"):
            for seed in (1, 2, 3):
                test = _metrics(rng)
                values[(dataset, model, seed)] = test
                result = {
                    "format": "toreid-run-result", "version": 1, "dataset": dataset,
                    "model": model, "seed": seed, "test": test, "occlusion": None,
                    "selection": {"split": "val", "rule": "best val R@1", "epoch": 1},
                }
                write_result(run_dir(root, dataset, model, seed), result)
    return values


def test_csv_parses_back_to_the_same_numbers(tmp_path):
    values = _write_runs(tmp_path, np.random.default_rng(0))
    results = find_results(tmp_path)
    assert len(results) == 12
    frame = build_table(results)
    back = read_csv(to_csv(frame))
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    # The cells are the mean and the sample std over seeds.
    for metric in TABLE_METRICS:
        seeds = [values[("demo", "irra", s)][metric] for s in (1, 2, 3)]
        assert back.loc[(MEASURED, "irra"), ("demo", metric, "mean")] == pytest.approx(
            np.mean(seeds), abs=1e-12)
        assert back.loc[(MEASURED, "irra"), ("demo", metric, "std")] == pytest.approx(
            np.std(seeds, ddof=1), abs=1e-12)
        assert back.loc[(MEASURED, "irra"), ("demo", metric, "n")] == 3
    markdown = render(frame, "md")
    assert "| mgcc (paper's design: vision-width space, m=25) |" in markdown and "±" in markdown
    latex = render(frame, "latex")
    assert r"\begin{tabular}" in latex and r"$\pm$" in latex


def test_with_paper_rows_match_the_paper(tmp_path):
    _write_runs(tmp_path, np.random.default_rng(1))
    frame = build_table(find_results(tmp_path), with_paper=True)
    back = read_csv(to_csv(frame))
    mgcc = (PUBLISHED, "MGCC")
    expected = {  # Table 2, MGCC row, as printed in the paper
        "Occluded-CUHK-PEDES": (62.44, 82.44, 88.52, 54.18, 233.40),
        "Occluded-ICFG-PEDES": (59.28, 78.32, 84.75, 33.30, 222.35),
        "Occluded-RSTPReid": (49.85, 74.95, 83.45, 38.48, 208.25),
    }
    for dataset, numbers in expected.items():
        for metric, value in zip(TABLE_METRICS, numbers, strict=True):
            assert back.loc[mgcc, (dataset, metric, "mean")] == value
    irra = (PUBLISHED, "IRRA")
    assert back.loc[irra, ("Occluded-CUHK-PEDES", "R@1", "mean")] == 64.41
    assert back.loc[irra, ("Occluded-ICFG-PEDES", "Rsum", "mean")] == 219.16
    assert math.isnan(back.loc[(PUBLISHED, "CMPM"), ("Occluded-ICFG-PEDES", "mAP", "mean")])
    # 14 published rows, each measured model right under the row it reproduces.
    keys = list(back.index)
    assert [k for k in keys if k[0] == PUBLISHED][0] == (PUBLISHED, "DPath") and len(keys) == 16
    assert keys[keys.index(irra) + 1] == (MEASURED, "irra")
    assert keys[keys.index(mgcc) + 1] == (MEASURED, "mgcc")
    markdown = render(frame, "md")
    assert "| MGCC [published] | " in markdown
    # The paper's Rsum is R@1 + R@5 + R@10 for every complete row (a transcription check).
    for key in [k for k in keys if k[0] == PUBLISHED]:
        for dataset in expected:
            r = [back.loc[key, (dataset, m, "mean")] for m in ("R@1", "R@5", "R@10", "Rsum")]
            if not any(math.isnan(v) for v in r):
                assert r[0] + r[1] + r[2] == pytest.approx(r[3], abs=0.011), (key, dataset)


def test_a_measured_model_sits_under_its_published_row_and_unmatched_ones_lead(tmp_path):
    rng = np.random.default_rng(2)
    for model in ("clip", "dpath"):
        result = {"format": "toreid-run-result", "version": 1, "dataset": "demo",
                  "model": model, "seed": 1, "test": _metrics(rng), "occlusion": None,
                  "selection": {"split": "val", "rule": "best val R@1", "epoch": 1}}
        write_result(run_dir(tmp_path, "demo", model, 1), result)
    keys = list(build_table(find_results(tmp_path), with_paper=True).index)
    assert keys[:3] == [(MEASURED, "clip"), (PUBLISHED, "DPath"), (MEASURED, "dpath")]
    markdown = render(build_table(find_results(tmp_path), with_paper=True), "md")
    assert markdown.index("| DPath [published] |") < markdown.index("| dpath |")
