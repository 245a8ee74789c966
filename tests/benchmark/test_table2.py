"""Table 2's systems: `--models all / table2`, `bench ls`, the leaderboard in Table 2 order."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.records.results import find_results, run_dir, write_result
from benchmark.reporting.leaderboard import MEASURED, PUBLISHED, build_table, load_paper_table
from benchmark.reporting.table2 import (
    expand_model_names,
    missing_table2_models,
    order_by_table2,
    table2_models,
)
from models import list_models
from toreid.errors import ToreidError

PAPER_ORDER = ["DPath", "CMPM", "TBPS", "TIPCB", "ViTAA", "NAFS", "SAF", "SSAN", "CFine", "LGUR",
               "IRRA", "Baseline1", "Baseline2", "MGCC"]
TABLE2 = ["dpath", "cmpm", "tbps", "tipcb", "vitaa", "nafs", "saf", "ssan", "cfine", "lgur",
          "irra", "baseline1", "baseline2", "mgcc"]


def test_table2_is_the_papers_fourteen_rows_in_order() -> None:
    assert [row["method"] for row in load_paper_table()["rows"]] == PAPER_ORDER
    assert table2_models() == TABLE2


def test_keywords_expand_and_missing_table2_models_are_named() -> None:
    registered = list_models()
    assert expand_model_names(["all"], registered) == registered
    assert expand_model_names(["clip", "all", "clip"], registered) == registered[
        registered.index("clip"):registered.index("clip") + 1] + [
        m for m in registered if m != "clip"]
    assert expand_model_names(["table2"], [*TABLE2, "clip"]) == TABLE2
    with pytest.raises(ToreidError, match=r"not registered in this checkout: tipcb, saf \("):
        expand_model_names(["table2"], [m for m in TABLE2 if m not in ("tipcb", "saf")])
    # whatever this checkout registers comes out in Table 2's order
    here = [m for m in TABLE2 if m in registered]
    assert order_by_table2(list(reversed(here)) + ["clip"]) == here + ["clip"]
    assert missing_table2_models(registered) == [m for m in TABLE2 if m not in registered]


def test_bench_run_table2_refuses_in_one_line_or_runs_them_all(tmp_path) -> None:
    missing = missing_table2_models(list_models())
    result = CliRunner().invoke(main, ["run", "--models", "table2", "--dry-run", "--out",
                                       str(tmp_path / "runs")])
    if missing:
        assert result.exit_code == 2
        line = result.output.strip()
        assert "\n" not in line and "Traceback" not in line
        assert all(name in line for name in missing)
    else:
        assert result.exit_code == 0, result.output
        runs = re.findall(r'^    "model": "([^"]+)"', result.output, flags=re.M)
        assert runs == TABLE2
    listing = CliRunner().invoke(main, ["ls"])
    assert listing.exit_code == 0
    assert "table2 (Table 2's rows in order: " + ", ".join(TABLE2) in listing.output


def _write_run(root, model: str, r1: float) -> None:
    test = {"R@1": r1, "R@5": r1 + 10, "R@10": r1 + 20, "mAP": r1 - 5, "mINP": 1.0,
            "Rsum": 3 * r1 + 30, "num_queries": 10}
    write_result(run_dir(root, "Occluded-CUHK-PEDES", model, 1), {
        "format": "toreid-run-result", "version": 1, "dataset": "Occluded-CUHK-PEDES",
        "model": model, "seed": 1, "test": test, "occlusion": None,
        "selection": {"split": "val", "rule": "best val R@1", "epoch": 1}})


def test_table_with_paper_over_all_fourteen_systems_follows_table2(tmp_path) -> None:
    for offset, model in enumerate(reversed(TABLE2)):  # written in the reverse order
        _write_run(tmp_path, model, 20.0 + offset)
    keys = list(build_table(find_results(tmp_path), with_paper=True).index)
    expected = [key for method, model in zip(PAPER_ORDER, TABLE2, strict=True)
                for key in ((PUBLISHED, method), (MEASURED, model))]
    assert keys == expected
    assert list(build_table(find_results(tmp_path)).index) == [(MEASURED, m) for m in TABLE2]

    result = CliRunner().invoke(main, ["table", str(tmp_path), "--with-paper"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("| ")][1:]
    labels = [line.split("|")[1].strip() for line in rows if not line.startswith("| ---")]
    published = [label for label in labels if label.endswith("[published]")]
    assert [label.split(" [")[0] for label in published] == PAPER_ORDER
    for method, model in zip(PAPER_ORDER, TABLE2, strict=True):
        after = labels[labels.index(f"{method} [published]") + 1]
        assert after.split(" ")[0] == model  # measured right under its published number
