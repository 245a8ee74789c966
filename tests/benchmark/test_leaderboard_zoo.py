"""`bench table --with-paper`: each zoo model's measured row right after its published row."""

from __future__ import annotations

from benchmark.records.results import find_results, run_dir, write_result
from benchmark.reporting.leaderboard import MEASURED, PUBLISHED, build_table, render


def test_measured_rows_follow_their_published_rows(tmp_path) -> None:
    for model in ("clip", "cmpm", "baseline1"):
        test = {"R@1": 50.0, "R@5": 60.0, "R@10": 70.0, "mAP": 40.0, "mINP": 10.0,
                "Rsum": 180.0, "num_queries": 10}
        write_result(run_dir(tmp_path, "Occluded-CUHK-PEDES", model, 1), {
            "format": "toreid-run-result", "version": 1, "dataset": "Occluded-CUHK-PEDES",
            "model": model, "seed": 1, "test": test, "occlusion": None,
            "selection": {"split": "val", "rule": "best val R@1", "epoch": 1}})
    keys = list(build_table(find_results(tmp_path), with_paper=True).index)
    assert keys[0] == (MEASURED, "clip")  # no published row of its own: first
    assert keys[keys.index((PUBLISHED, "CMPM")) + 1] == (MEASURED, "cmpm")
    assert keys[keys.index((PUBLISHED, "Baseline1")) + 1] == (MEASURED, "baseline1")
    markdown = render(build_table(find_results(tmp_path), with_paper=True), "md")
    lines = markdown.splitlines()
    cmpm_line = next(i for i, line in enumerate(lines) if line.startswith("| CMPM [published]"))
    assert lines[cmpm_line + 1].startswith("| cmpm |")
