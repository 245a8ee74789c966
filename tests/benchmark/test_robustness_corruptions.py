"""``bench robustness --corruptions``: severity 0 is ``bench eval``, derived sets are seeded and
cached by content, the summary number is its definition, and the report shows the heatmap."""

from __future__ import annotations

import csv
import html
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.evaluation.corruptions.derive import corrupted_images, perturbed_captions
from benchmark.evaluation.corruptions.sweep import SUMMARY, mean_relative_r1, worst_cells
from benchmark.evaluation.metrics import METRICS
from tests.benchmark.test_report import _browse, _chromium

CORRUPTIONS = "image:sensor_noise,image:jpeg,text:typos,text:forgotten_attribute"


def _sweep(demo_run, out, *args):
    return CliRunner().invoke(main, [
        "robustness", "--run", str(demo_run["run"]), "--source", str(demo_run["clean"]),
        "--out", str(out), "--quiet", *args,
    ], env={"TOREID_CACHE": str(demo_run["cache"])})


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def swept(demo_run, tmp_path_factory):
    before = _snapshot(demo_run["clean"])
    out = tmp_path_factory.mktemp("corruptions") / "out"
    result = _sweep(demo_run, out, "--seeds", "0,1", "--corruptions", CORRUPTIONS,
                    "--severities", "1,5")
    assert result.exit_code == 0, result.output
    assert _snapshot(demo_run["clean"]) == before  # nothing written inside the source
    return out, json.loads((out / "robustness.json").read_text())


def test_record_csv_and_pictures(swept):
    out, record = swept
    assert record["ratios"] == [0.0]  # corruptions alone: the clean split only
    block = record["runs"][0]["corruptions"][0]
    assert [(c["corruption"], c["severity"]) for c in block["cells"]] == [
        (c, s) for c in CORRUPTIONS.split(",") for s in (1, 5)]
    for cell in block["cells"]:
        assert set(cell["per_seed"]) == {"0", "1"}
        r1 = [m["R@1"] for m in cell["per_seed"].values()]
        assert math.isclose(cell["mean"]["R@1"], sum(r1) / 2)
        assert math.isclose(cell["relative"]["R@1"],
                            100 * cell["mean"]["R@1"] / block["clean"]["mean"]["R@1"])
    for name in ("robustness_corruptions.png", "robustness_corruptions.svg",
                 "robustness_corruption_bars.png", "robustness_corruption_sheet.png"):
        assert (out / name).stat().st_size > 1000, name
    table = (out / "robustness_captions.md").read_text()
    assert table.count("| typos |") == 5 and table.count("| forgotten_attribute |") == 5
    rows = list(csv.DictReader((out / "robustness.csv").open()))
    cells = [r for r in rows if r["kind"] == "corruption"]
    assert len(cells) == len(block["cells"])
    assert float(cells[0]["R@1"]) == block["cells"][0]["mean"]["R@1"]
    assert float(next(r for r in rows if r["kind"] == SUMMARY)["R@1"]) == block[SUMMARY]


def test_severity_zero_equals_bench_eval(demo_run, swept, tmp_path):
    _, record = swept
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["eval", "--run", str(demo_run["run"]), "--dataset",
                                       str(demo_run["clean"]), "--json-out", str(out),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    clean = json.loads(out.read_text())["test"]
    for metrics in record["runs"][0]["corruptions"][0]["clean"]["per_seed"].values():
        for key in (*METRICS, "num_queries", "num_gallery"):
            assert metrics[key] == clean[key], key


def test_summary_is_its_definition(swept):
    cells = [{"mean": {"R@1": v}} for v in (30.0, 15.0, 45.0, 6.0)]
    assert mean_relative_r1(cells, 30.0) == pytest.approx((100 + 50 + 150 + 20) / 4)
    assert mean_relative_r1(cells, 0.0) is None
    assert [c["mean"]["R@1"] for c in worst_cells({"cells": cells}, 2)] == [6.0, 15.0]
    _, record = swept
    block = record["runs"][0]["corruptions"][0]
    expected = sum(c["relative"]["R@1"] for c in block["cells"]) / len(block["cells"])
    assert block[SUMMARY] == pytest.approx(expected)
    assert record["summary"]["name"] == SUMMARY


def test_derived_sets_are_seeded_and_cached(demo_run, swept, tmp_path):
    _, record = swept
    cells = {(c["corruption"], c["severity"]): c for c in
             record["runs"][0]["corruptions"][0]["cells"]}
    noise = cells[("image:sensor_noise", 5)]["derived"]
    images = [json.loads((Path(noise[s]) / "corruption.json").read_text())["images"]
              for s in ("0", "1")]
    assert images[0].keys() == images[1].keys() and images[0] != images[1]  # seeds differ
    typos = cells[("text:typos", 5)]["derived"]
    texts = [[q["perturbed"] for q in json.loads(open(typos[s]).read())["queries"]]
             for s in ("0", "1")]
    assert texts[0] != texts[1]
    # The same recipe built afresh elsewhere gives the same bytes and the same captions.
    for cache in (tmp_path / "a", tmp_path / "b"):
        root = corrupted_images(demo_run["clean"], "test", "image:sensor_noise", 5, 0, cache)
        again = json.loads((root / "corruption.json").read_text())["images"]
        assert again == images[0]
        captions, _ = perturbed_captions(demo_run["clean"], "test", "text:typos", 5, 0, cache)
        assert captions == texts[0]
    # A second sweep reuses every derived set (nothing rebuilt) and gives the same numbers.
    derived = Path(noise["0"]).parent
    before = _snapshot(derived)
    out = tmp_path / "again"
    assert _sweep(demo_run, out, "--seeds", "0,1", "--corruptions", CORRUPTIONS,
                  "--severities", "1,5").exit_code == 0
    assert _snapshot(derived) == before
    again = json.loads((out / "robustness.json").read_text())["runs"][0]["corruptions"][0]
    assert again["cells"] == [{**c} for c in record["runs"][0]["corruptions"][0]["cells"]]


def test_crossed_with_occlusion(demo_run, swept, tmp_path):
    out = tmp_path / "crossed"
    result = _sweep(demo_run, out, "--seeds", "0", "--ratios", "0,1", "--corruptions",
                    "text:typos", "--severities", "3")
    assert result.exit_code == 0, result.output
    run = json.loads((out / "robustness.json").read_text())["runs"][0]
    assert [b["ratio"] for b in run["corruptions"]] == [0.0, 1.0]
    for block, point in zip(run["corruptions"], run["sweep"], strict=True):
        assert block["clean"]["mean"] == point["mean"]  # severity 0 = the occluded version
        assert len(block["cells"]) == 1


@pytest.mark.parametrize("args, message", [
    (["--corruptions", "image:snow"], "unknown corruption 'image:snow'"),
    (["--corruptions", "text", "--severities", "0"], "outside 1-5"),
])
def test_bad_corruption_options_are_one_line(demo_run, args, message, tmp_path):
    result = _sweep(demo_run, tmp_path / "out", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_report_shows_the_heatmap_in_chromium(demo_run, swept, tmp_path):
    out, record = swept
    result = CliRunner().invoke(main, ["report", str(demo_run["runs"]), "--out",
                                       str(tmp_path / "report"), "--robustness", str(out),
                                       "--queries", "1", "--topk", "3", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    page = tmp_path / "report" / "index.html"
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium found; install it with `apt-get install -y chromium`")
    dom = _browse(browser, page, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = html.unescape(dom.stdout)
    assert "Corruptions and witness text" in text and 'alt="corruption heatmap"' in text
    assert 'alt="corruption contact sheet"' in text
    block = record["runs"][0]["corruptions"][0]
    assert f"{block[SUMMARY]:.1f}" in text
