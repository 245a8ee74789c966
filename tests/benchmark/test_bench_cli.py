"""The ``bench`` command line: help texts, one-line errors, eval/table/query on a real run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from benchmark.cli import main
from benchmark.records.spec import RunSpec, TrainConfig
from benchmark.reporting.leaderboard import read_csv
from benchmark.training.loop import run_training
from tests.benchmark.helpers import make_color_dataset


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    root = make_color_dataset(base / "data", ids=16, views=2,
                              splits={"train": 8, "val": 4, "test": 4})
    cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-3, optimizer="adamw", device="cpu", seed=1)
    run_training(RunSpec(model="clip", dataset="colors", dataset_root=root, train=cfg,
                         model_options={"backbone": "tiny"}), base / "runs", progress=False)
    return base / "runs", root


@pytest.mark.parametrize("command", ["run", "eval", "table", "query", "import", "ls",
                                     "robustness", "report"])
def test_every_help_has_an_example(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and f"bench {command}" in result.output


def test_unknown_model_lists_the_valid_ones(tmp_path):
    result = CliRunner().invoke(main, ["run", "--models", "mgcc,nope", "--datasets",
                                       f"x={tmp_path}"])
    assert result.exit_code == 2
    assert "unknown model 'nope'" in result.output and "irra" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_dataset_argument_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["run", "--models", "clip", "--datasets",
                                       f"x={tmp_path / 'missing'}"])
    assert result.exit_code == 2 and "is not a folder" in result.output
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["run", "--models", "clip", "--datasets",
                                       f"x={tmp_path / 'empty'}", "--preset", "tiny",
                                       "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no annotation file" in result.output


def test_dataset_without_test_split(tmp_path):
    root = make_color_dataset(tmp_path / "d", ids=4, views=1,
                              splits={"train": 3, "val": 1, "test": 0})
    result = CliRunner().invoke(main, ["run", "--models", "clip", "--datasets", f"d={root}",
                                       "--preset", "tiny", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "no 'test' split" in result.output


def test_missing_checkpoint(finished_run, tmp_path):
    runs, root = finished_run
    broken = tmp_path / "broken"
    shutil.copytree(runs / "colors" / "clip" / "seed1", broken)
    (broken / "checkpoints" / "best.pt").unlink()
    result = CliRunner().invoke(main, ["eval", "--run", str(broken), "--dataset", str(root)])
    assert result.exit_code == 2 and "best.pt: checkpoint not found" in result.output


def test_eval_table_and_query(finished_run, tmp_path):
    runs, root = finished_run
    run = runs / "colors" / "clip" / "seed1"
    out_json = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["eval", "--run", str(run), "--quiet",
                                       "--json-out", str(out_json)])
    assert result.exit_code == 0, result.output
    recorded = json.loads((run / "metrics.json").read_text())["test"]
    again = json.loads(out_json.read_text())["test"]
    assert again["R@1"] == pytest.approx(recorded["R@1"])  # same checkpoint, same numbers
    assert again["mAP"] == pytest.approx(recorded["mAP"])

    result = CliRunner().invoke(main, ["table", str(runs), "--format", "csv"])
    assert result.exit_code == 0
    frame = read_csv(result.output)
    assert frame.loc[("measured", "clip"), ("colors", "R@1", "mean")] == recorded["R@1"]

    # A test caption: its person's 2 images are true matches; topk 8 = the whole test gallery.
    records = json.loads((root / "reid_raw.json").read_text())
    caption = next(r["captions"][0] for r in records if r["split"] == "test")
    png = tmp_path / "ranking.png"
    result = CliRunner().invoke(main, ["query", caption, "--run", str(run), "--topk", "8",
                                       "--out", str(png)])
    assert result.exit_code == 0, result.output
    assert result.output.count("[true match]") == 2
    assert result.output.count("[other id]") == 6
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape[1] > 8 * 96
    # Green frames around the matches, red around the others (the frame colours of Figure 4).
    assert np.all(image == (40, 170, 60), axis=-1).sum() > 0
    assert np.all(image == (210, 40, 40), axis=-1).sum() > 0
    result = CliRunner().invoke(main, ["query", "someone nowhere in the captions", "--run",
                                       str(run), "--topk", "3", "--out", str(tmp_path / "f.png")])
    assert result.exit_code == 0 and "free text" in result.output


def test_ls_lists_models_and_presets():
    result = CliRunner().invoke(main, ["ls"])
    assert result.exit_code == 0
    for word in ("mgcc", "irra", "clip", "paper", "tiny", "cuhk-pedes"):
        assert word in result.output
