"""``bench report``: the static page renders in a real headless Chromium and holds the numbers.

The page is built from the shared demo run (and its robustness record), opened from the file
system with ``chromium --headless``: a screenshot must not be blank and the rendered DOM must
hold every model name (measured and published) and the leaderboard's numbers. Skipped only
where no Chromium binary is found (CI installs it in ``.ci/run``).
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from benchmark.cli import main
from benchmark.reporting.leaderboard import load_paper_table

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def _chromium() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def _browse(browser: str, page, profile, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def report(demo_run, demo_robustness, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(main, ["report", str(demo_run["runs"]), "--out", str(out),
                                       "--robustness", str(demo_robustness), "--queries", "2",
                                       "--topk", "5", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return out / "index.html"


def test_page_is_self_contained(report):
    text = report.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text  # no network, no server
    assert text.count("data:image/png;base64,") >= 8  # sweep, 3 bars, curves, 2 strips, preview
    assert [p.name for p in report.parent.iterdir()] == ["index.html"]


def test_report_renders_in_headless_chromium(report, demo_run, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium found (looked for " + ", ".join(BROWSERS) + "); install it "
                    "with `apt-get install -y chromium` to render the report")
    shot = tmp_path / "shot.png"
    done = _browse(browser, report, tmp_path / "profile", f"--screenshot={shot}",
                   "--window-size=1280,2400")
    assert shot.is_file(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2400, 1280)
    assert pixels.std() > 20, "the screenshot is blank"
    # The rendered text: every model name and the leaderboard's numbers.
    dom = _browse(browser, report, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = html.unescape(dom.stdout)
    measured = json.loads((demo_run["run"] / "metrics.json").read_text())
    assert measured["model"] in text
    for metric in ("R@1", "R@5", "R@10", "mAP", "Rsum"):
        assert f"{measured['test'][metric]:.2f}" in text, metric
    for row in load_paper_table()["rows"]:
        assert row["method"] in text
        for values in row["results"].values():
            for metric in ("R@1", "mAP"):
                if values.get(metric) is not None:
                    assert f"{values[metric]:.2f}" in text, (row["method"], metric)
    assert "Robustness to occlusion" in text and "Training curves" in text
    assert "Occlusion previews" in text and "Sample queries" in text


def test_report_without_runs_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no finished run" in result.output
    assert not (tmp_path / "r").exists()
