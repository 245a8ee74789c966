"""``bench robustness``: the ratio sweep, its ratio-0 anchor, and breakdowns that sum back."""

from __future__ import annotations

import csv
import json
import math

import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.evaluation.metrics import METRICS
from benchmark.evaluation.robustness import SETS
from ogor.library import load_taxonomy


@pytest.fixture(scope="module")
def record(demo_robustness):
    return json.loads((demo_robustness / "robustness.json").read_text())


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_writes_json_csv_and_plots(demo_robustness, record):
    for stem in ("sweep", "set", "class", "fraction"):
        for fmt in ("png", "svg"):
            path = demo_robustness / f"robustness_{stem}.{fmt}"
            assert path.stat().st_size > 1000, path
    assert (demo_robustness / "robustness_sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((demo_robustness / "robustness.csv").open()))
    sweep = [r for r in rows if r["kind"] == "sweep"]
    assert [float(r["ratio"]) for r in sweep] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for row, point in zip(sweep, record["runs"][0]["sweep"], strict=True):
        assert float(row["R@1"]) == point["mean"]["R@1"]
        assert float(row["mAP_std"]) == point["std"]["mAP"]


def test_occlusion_hurts_and_ratio_zero_equals_bench_eval(demo_run, record, tmp_path):
    sweep = {p["ratio"]: p for p in record["runs"][0]["sweep"]}
    assert sweep[1.0]["mean"]["R@1"] <= sweep[0.0]["mean"]["R@1"]
    assert sweep[1.0]["mean"]["mAP"] < sweep[0.0]["mean"]["mAP"]
    before = _snapshot(demo_run["clean"])
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["eval", "--run", str(demo_run["run"]), "--dataset",
                                       str(demo_run["clean"]), "--json-out", str(out),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    clean = json.loads(out.read_text())["test"]
    for seed, metrics in sweep[0.0]["per_seed"].items():
        for key in (*METRICS, "num_queries", "num_gallery"):
            assert metrics[key] == clean[key], (seed, key)
    # Nothing was written inside the source; the occluded versions live in the cache.
    assert _snapshot(demo_run["clean"]) == before
    assert record["cache"].startswith(str(demo_run["cache"]))


def test_breakdowns_sum_back_to_the_whole(record):
    """The whole of (run, ratio) = every test query of every seed's version, pooled."""
    taxonomy = load_taxonomy()
    seeds = len(record["seeds"])
    for run in record["runs"]:
        sweep = {p["ratio"]: p for p in run["sweep"]}
        for part in run["breakdown"]:
            whole = part["whole"]
            point = sweep[part["ratio"]]
            assert whole["num_queries"] == seeds * point["num_queries"]
            for metric in METRICS:  # the pool's mean is the mean over seeds of the sweep
                assert math.isclose(whole[metric], point["mean"][metric], abs_tol=1e-9)
            for kind in ("set", "class", "fraction"):
                groups = part[f"by_{kind}"]
                n = sum(g["num_queries"] for g in groups.values())
                assert n == whole["num_queries"], (part["ratio"], kind)
                for metric in METRICS:
                    back = sum(g["num_queries"] * g[metric] for g in groups.values()) / n
                    assert math.isclose(back, whole[metric], abs_tol=1e-9), (kind, metric)
            # Classes nest in their position sets (the grouping reads the manifest right).
            per_set = {s: 0 for s in (*SETS, "clean")}
            for name, group in part["by_class"].items():
                where = "clean" if name == "clean" else taxonomy.classes[name].position_set
                per_set[where] += group["num_queries"]
            assert {k: v for k, v in per_set.items() if v} == {
                k: g["num_queries"] for k, g in part["by_set"].items()}
        by_ratio = {p["ratio"]: p for p in run["breakdown"]}
        assert list(by_ratio[0.0]["by_set"]) == ["clean"]  # ratio 0: nothing occluded
        assert "clean" not in by_ratio[1.0]["by_set"]  # ratio 1: every image occluded
        assert set(by_ratio[1.0]["by_set"]) <= set(SETS)


@pytest.mark.parametrize("args, message", [
    (["--ratios", "0,1.5"], "outside [0, 1]"),
    (["--seeds", "a"], "--seeds"),
    (["--source", "EMPTY"], "no annotation file found"),
])
def test_bad_options_are_one_line_errors(demo_run, args, message, tmp_path):
    (tmp_path / "empty").mkdir()
    args = [str(tmp_path / "empty") if a == "EMPTY" else a for a in args]
    result = CliRunner().invoke(main, [
        "robustness", "--run", str(demo_run["run"]), "--source", str(demo_run["clean"]),
        "--out", str(tmp_path / "out"), *args,
    ], env={"TOREID_CACHE": str(tmp_path / "cache")})
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
