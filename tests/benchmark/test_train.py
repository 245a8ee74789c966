"""Training: exact resume, the run folder's records, model selection on val, schedules."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from benchmark.records.checkpoints import load_checkpoint
from benchmark.records.results import validate_result
from benchmark.records.spec import RunSpec, TrainConfig
from benchmark.training.loop import run_training
from benchmark.training.optim import lr_lambda
from ogor.errors import ToreidError
from tests.benchmark.helpers import make_color_dataset


def _spec(root, seed=3, epochs=2, **train):
    cfg = TrainConfig(epochs=epochs, batch_size=8, lr=1e-3, lr_new_mult=1.0, optimizer="adamw",
                      weight_decay=0.01, warmup_epochs=1, grad_clip=1.0, device="cpu",
                      seed=seed, pad_crop=2, random_erasing=0.5, **train)
    return RunSpec(model="mgcc", dataset="colors", dataset_root=root, train=cfg,
                   model_options={"backbone": "tiny"}, preset="test")


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    return make_color_dataset(tmp_path_factory.mktemp("small") / "root", ids=16, views=2,
                              splits={"train": 8, "val": 4, "test": 4})


def test_resumed_run_equals_uninterrupted_run(small_dataset, tmp_path):
    straight = run_training(_spec(small_dataset), tmp_path / "a", progress=False)
    # The same run, stopped after epoch 1 (as if killed), then resumed to the end.
    assert run_training(_spec(small_dataset), tmp_path / "b", progress=False,
                        stop_after=1) is None
    run_b = tmp_path / "b" / "colors" / "mgcc" / "seed3"
    assert not (run_b / "metrics.json").exists()  # an interrupted run does not look finished
    assert load_checkpoint(run_b / "checkpoints" / "last.pt")["epoch"] == 1
    with pytest.raises(ToreidError, match="--resume"):
        run_training(_spec(small_dataset), tmp_path / "b", progress=False)
    resumed = run_training(_spec(small_dataset), tmp_path / "b", progress=False, resume=True)
    for key in ("R@1", "R@5", "R@10", "mAP", "mINP", "Rsum"):
        assert resumed["test"][key] == straight["test"][key], key
    assert resumed["selection"] == straight["selection"]
    weights_a = load_checkpoint(tmp_path / "a" / "colors" / "mgcc" / "seed3" / "checkpoints"
                                / "last.pt")["model"]
    weights_b = load_checkpoint(run_b / "checkpoints" / "last.pt")["model"]
    for name, tensor in weights_a.items():
        assert torch.equal(tensor, weights_b[name]), name
    # Resuming or rerunning a finished run returns its record without training again ...
    stamp = (run_b / "checkpoints" / "last.pt").stat().st_mtime_ns
    again = run_training(_spec(small_dataset), tmp_path / "b", progress=False, resume=True)
    rerun = run_training(_spec(small_dataset), tmp_path / "b", progress=False)
    assert again["test"] == resumed["test"] == rerun["test"]
    assert (run_b / "checkpoints" / "last.pt").stat().st_mtime_ns == stamp
    # ... but a run folder never mixes two configurations.
    with pytest.raises(ToreidError, match="another configuration"):
        run_training(_spec(small_dataset, epochs=3), tmp_path / "b", progress=False, resume=True)


def test_run_folder_records(small_dataset, tmp_path):
    record = run_training(_spec(small_dataset, seed=5, epochs=2), tmp_path, progress=False)
    run = tmp_path / "colors" / "mgcc" / "seed5"
    for name in ("config.json", "env.json", "history.csv", "metrics.json",
                 "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["seed"] == 5 and config["model"]["config"]["backbone"] == "tiny"
    env = json.loads((run / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["device"].startswith("cpu")
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(float(r["loss/total"]) > 0 for r in rows) and "val/R@1" in rows[0]
    metrics = json.loads((run / "metrics.json").read_text())
    validate_result(metrics)
    assert metrics == record
    # Selection is on val, and it picked the epoch with the best val R@1.
    assert metrics["selection"]["split"] == "val"
    best_val = max(float(r["val/R@1"]) for r in rows)
    assert metrics["selection"]["score"] == best_val
    assert float(rows[metrics["selection"]["epoch"] - 1]["val/R@1"]) == best_val
    assert metrics["occlusion"] is None  # no ogor manifest in this dataset


def test_without_val_the_last_epoch_is_used(tmp_path):
    root = make_color_dataset(tmp_path / "noval", ids=8, views=2,
                              splits={"train": 5, "val": 0, "test": 3})
    record = run_training(_spec(root, epochs=2), tmp_path / "runs", progress=False)
    assert record["selection"]["split"] == "none"
    assert record["selection"]["epoch"] == 2


def test_warmup_then_cosine_schedule():
    cfg = TrainConfig(epochs=4, warmup_epochs=1, warmup_factor=0.1)
    factor = lr_lambda(cfg, steps_per_epoch=10)
    assert factor(0) == pytest.approx(0.1)
    assert factor(5) == pytest.approx(0.55)
    assert factor(10) == pytest.approx(1.0)
    assert factor(25) == pytest.approx(0.5)
    assert factor(40) == pytest.approx(0.0, abs=1e-12)
    assert all(factor(s) >= factor(s + 1) for s in range(10, 40))
    assert not math.isnan(factor(100))


def test_bad_training_option_is_one_line_error():
    with pytest.raises(ToreidError, match="optimizer"):
        TrainConfig(optimizer="rmsprop").validate()
