"""Crossings: one training, several test datasets; the matrix equals separate ``bench eval``."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.evaluation.crossings import crossing_matrix
from benchmark.records.results import find_results
from ogor.generation import generate_dataset
from tests.benchmark.helpers import make_color_dataset

METRIC_KEYS = ("R@1", "R@5", "R@10", "mAP", "mINP", "Rsum", "num_queries")


@pytest.fixture(scope="module")
def crossed(tmp_path_factory):
    base = tmp_path_factory.mktemp("cross")
    clean = make_color_dataset(base / "clean", ids=16, views=2,
                               splits={"train": 8, "val": 4, "test": 4})
    generate_dataset(clean, base / "occluded", ratio=0.5, seed=0)
    other = make_color_dataset(base / "other", ids=12, views=2, seed=7,
                               splits={"train": 4, "val": 2, "test": 6})
    runs = base / "runs"
    result = CliRunner().invoke(main, [
        "run", "--models", "clip", "--preset", "tiny", "--epochs", "1", "--quiet",
        "--train-dataset", f"clean={clean}",
        "--eval-datasets", f"clean={clean},occluded={base / 'occluded'},other={other}",
        "--out", str(runs),
    ])
    assert result.exit_code == 0, result.output
    return {"runs": runs, "output": result.output, "roots": {
        "clean": clean, "occluded": base / "occluded", "other": other}}


def test_matrix_equals_separate_bench_eval(crossed, tmp_path):
    found = find_results(crossed["runs"])
    assert [(r.dataset, r.model) for r in found] == [("clean", "clip")]  # trained once
    matrix = crossing_matrix(found)
    run = crossed["runs"] / "clean" / "clip" / "seed1"
    for label, root in crossed["roots"].items():
        out = tmp_path / f"{label}.json"
        result = CliRunner().invoke(main, ["eval", "--run", str(run), "--dataset", str(root),
                                           "--json-out", str(out), "--quiet"])
        assert result.exit_code == 0, result.output
        alone = json.loads(out.read_text())["test"]
        assert matrix.loc[("clip", "clean"), (label, "mean")] == alone["R@1"], label
        if label != "clean":
            cell = json.loads((run / "crossings" / f"{label}.json").read_text())
            assert {k: cell["test"][k] for k in METRIC_KEYS} == {k: alone[k]
                                                                 for k in METRIC_KEYS}
            assert cell["num_test_ids"] == (6 if label == "other" else 4)
    # The generated dataset's crossing also has the occluded/clean query split.
    occluded = json.loads((run / "crossings" / "occluded.json").read_text())
    assert occluded["occlusion"]["occluded"]["num_queries"] > 0


def test_matrix_is_printed_by_run_and_table(crossed):
    assert "Train -> test matrix" in crossed["output"]
    table = CliRunner().invoke(main, ["table", str(crossed["runs"])])
    assert table.exit_code == 0, table.output
    assert "| clip | clean |" in table.output and "occluded" in table.output
    csv_out = CliRunner().invoke(main, ["table", str(crossed["runs"]), "--format", "csv"])
    assert "Train -> test" not in csv_out.output  # CSV stays one parseable table


@pytest.mark.parametrize("args, message", [
    (["--datasets", "a=.", "--train-dataset", "a=.", "--eval-datasets", "b=."], "one or the"),
    (["--train-dataset", "a=."], "go together"),
    (["--train-dataset", "a=.,b=.", "--eval-datasets", "c=."], "exactly one"),
])
def test_bad_crossing_options(args, message, tmp_path):
    result = CliRunner().invoke(main, ["run", "--models", "clip", "--out", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
