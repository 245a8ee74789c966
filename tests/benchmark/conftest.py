"""Shared fixtures of the benchmark tests (the dataset helpers are in ``helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmark.helpers import make_color_dataset


@pytest.fixture(scope="session")
def color_dataset(tmp_path_factory) -> Path:
    return make_color_dataset(tmp_path_factory.mktemp("colors") / "root")


#: The demo run shared by the robustness and report tests: the real embedded demo path
#: (``ogor.synth`` + ``ogor.generate`` + ``bench run``'s runner), smaller (100 ids: 20 test ids).
DEMO_RUN_IDS = 100
DEMO_RUN_EPOCHS = 6


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> dict[str, Path]:
    """A tiny clip run trained once on the occluded demo dataset: ``run``, ``runs``, ``clean``
    (the clean demo root, the robustness source), ``occluded`` (the ogor-generated root it was
    trained on) and ``cache`` (a private TOREID_CACHE)."""
    from benchmark.pipeline import runner

    base = tmp_path_factory.mktemp("demo-run")
    cache = base / "cache"
    occluded = runner.demo_dataset(runner.DemoSpec(ids=DEMO_RUN_IDS), cache=cache,
                                   log=lambda _: None)
    runs = base / "runs"
    runner.run_benchmark(["clip"], [(runner.DEMO_LABEL, occluded)], [1], preset="tiny",
                         overrides={"epochs": DEMO_RUN_EPOCHS}, out=runs, progress=False,
                         log=lambda _: None)
    return {"run": runs / runner.DEMO_LABEL / "clip" / "seed1", "runs": runs,
            "clean": occluded.parent / "clean", "occluded": occluded, "cache": cache}


@pytest.fixture(scope="session")
def demo_robustness(demo_run, tmp_path_factory) -> Path:
    """``bench robustness`` of the demo run (default ratios, seeds 0,1,2): its output folder."""
    from click.testing import CliRunner

    from benchmark.cli import main

    out = tmp_path_factory.mktemp("robustness") / "out"
    result = CliRunner().invoke(main, [
        "robustness", "--run", str(demo_run["run"]), "--source", str(demo_run["clean"]),
        "--seeds", "0,1,2", "--out", str(out), "--quiet",
    ], env={"TOREID_CACHE": str(demo_run["cache"])})
    assert result.exit_code == 0, result.output
    return out
