"""``bench table --with-paper``: the measured baseline2 row sits under Table 2's Baseline2 row."""

from __future__ import annotations

from benchmark.records.results import find_results, run_dir, write_result
from benchmark.reporting.leaderboard import MEASURED, PUBLISHED, build_table, render


def test_measured_baseline2_sits_under_the_published_baseline2(tmp_path) -> None:
    test = {"R@1": 40.0, "R@5": 70.0, "R@10": 80.0, "mAP": 35.0, "mINP": 10.0, "Rsum": 190.0,
            "num_queries": 10}
    write_result(run_dir(tmp_path, "Occluded-CUHK-PEDES", "baseline2", 1), {
        "format": "toreid-run-result", "version": 1, "dataset": "Occluded-CUHK-PEDES",
        "model": "baseline2", "seed": 1, "test": test, "occlusion": None,
        "selection": {"split": "val", "rule": "best val R@1", "epoch": 1}})
    frame = build_table(find_results(tmp_path), with_paper=True)
    keys = list(frame.index)
    assert keys[keys.index((PUBLISHED, "Baseline2")) + 1] == (MEASURED, "baseline2")
    assert frame.loc[(MEASURED, "baseline2"), ("Occluded-CUHK-PEDES", "R@1", "mean")] == 40.0
    markdown = render(frame, "md")
    assert markdown.index("| Baseline2 [published] | 61.00") < markdown.index("| baseline2 | 40.00")
