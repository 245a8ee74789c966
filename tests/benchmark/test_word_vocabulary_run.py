"""A word-embedding model through a real run: the vocabulary is fitted on the train split, saved
in config.json, and `bench eval` / `bench query` / rebuild_from_run tokenise as training did."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.records.rebuild import rebuild_from_run
from benchmark.records.spec import RunSpec, TrainConfig
from benchmark.training.loop import run_training
from models import build_model_from_config
from models.encoders.vocabulary import Vocabulary
from tests.benchmark.helpers import make_color_dataset


@pytest.fixture(scope="module")
def cmpm_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("words")
    root = make_color_dataset(base / "data", ids=16, views=2,
                              splits={"train": 8, "val": 4, "test": 4})
    cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-3, optimizer="adamw", device="cpu", seed=1)
    options = {"backbone": "tiny", "embed_dim": 16, "word_dim": 16, "hidden_dim": 16}
    run_training(RunSpec(model="cmpm", dataset="colors", dataset_root=root, train=cfg,
                         model_options=options), base / "runs", progress=False)
    return base / "runs" / "colors" / "cmpm" / "seed1", root


def test_vocabulary_is_fitted_on_train_and_saved_with_the_run(cmpm_run) -> None:
    run, root = cmpm_run
    records = json.loads((root / "reid_raw.json").read_text())
    train = [c for r in records if r["split"] == "train" for c in r["captions"]]
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["config"]["vocabulary"] == Vocabulary.from_captions(train).to_json()
    assert "vocabulary" not in config["model"]["options"]  # recorded once, in the model config
    model, _ = rebuild_from_run(run)
    fresh = build_model_from_config(config["model"]["config"], load_pretrained=False)
    caption = next(r["captions"][0] for r in records if r["split"] == "test")
    assert model.tokenize([caption]).equal(fresh.tokenize([caption]))
    assert (model.tokenize([caption]) > 1).any()  # known words, not all unknown


def test_eval_and_query_use_the_saved_vocabulary(cmpm_run, tmp_path) -> None:
    run, root = cmpm_run
    out_json = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["eval", "--run", str(run), "--quiet",
                                       "--json-out", str(out_json)])
    assert result.exit_code == 0, result.output
    recorded = json.loads((run / "metrics.json").read_text())["test"]
    assert json.loads(out_json.read_text())["test"]["R@1"] == pytest.approx(recorded["R@1"])
    records = json.loads((root / "reid_raw.json").read_text())
    caption = next(r["captions"][0] for r in records if r["split"] == "test")
    result = CliRunner().invoke(main, ["query", caption, "--run", str(run), "--topk", "3",
                                       "--out", str(tmp_path / "ranking.png")])
    assert result.exit_code == 0, result.output
