"""Trainer pieces a staged method needs: the ``set_epoch`` hook, SGD, a step schedule."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.records.spec import RunSpec, TrainConfig
from benchmark.training.loop import run_training
from benchmark.training.optim import build_optimizer, lr_lambda
from models import build_model, tiny_options
from tests.benchmark.helpers import make_color_dataset


def test_step_schedule_multiplies_the_lr_at_each_milestone() -> None:
    cfg = TrainConfig(epochs=6, lr_milestones=[2, 4], lr_gamma=0.1)
    factor = lr_lambda(cfg, steps_per_epoch=10)
    assert [factor(s) for s in (0, 19, 20, 39, 40, 59)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01, 0.01])


def test_sgd_with_nesterov_momentum_and_group_learning_rates() -> None:
    model = build_model("dpath", num_classes=3, **tiny_options("dpath"))
    cfg = TrainConfig(optimizer="sgd", lr=1e-4, lr_new_mult=1000.0, momentum=0.9)
    cfg.validate()
    optimizer = build_optimizer(model, cfg)
    assert isinstance(optimizer, torch.optim.SGD)
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert lrs["encoder.weight"] == pytest.approx(1e-4) and lrs["new.weight"] == pytest.approx(0.1)
    assert all(g["nesterov"] and g["momentum"] == 0.9 for g in optimizer.param_groups)


def test_the_trainer_moves_dpath_from_stage_one_to_stage_two(tmp_path) -> None:
    root = make_color_dataset(tmp_path / "root", ids=8, views=2,
                              splits={"train": 4, "val": 0, "test": 4})
    cfg = TrainConfig(epochs=2, batch_size=4, lr=1e-3, lr_new_mult=1.0, optimizer="sgd",
                      device="cpu", seed=1)
    spec = RunSpec(model="dpath", dataset="colors", dataset_root=root, train=cfg,
                   model_options={"backbone": "tiny", "stage1_epochs": 1}, preset="test")
    record = run_training(spec, tmp_path / "runs", progress=False)
    run = tmp_path / "runs" / "colors" / "dpath" / "seed1"
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert rows[0]["loss/ranking"] == "" and float(rows[0]["loss/instance_text"]) > 0
    assert float(rows[1]["loss/ranking"]) > 0
    # the run's config.json and best.pt rebuild the model that was evaluated
    result = CliRunner().invoke(main, ["eval", "--run", str(run), "--quiet",
                                       "--json-out", str(tmp_path / "eval.json")])
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "eval.json").read_text())["test"]
    assert again["R@1"] == pytest.approx(record["test"]["R@1"])
    assert again["mAP"] == pytest.approx(record["test"]["mAP"])


def test_dpath_presets_resolve_to_its_paper_recipe_and_a_tiny_one() -> None:
    from benchmark.pipeline.runner import make_train_config
    from models.methods.dpath import DPathConfig

    cfg, options = make_train_config("paper", "dpath", seed=1, overrides={})
    cfg.validate()
    assert (cfg.optimizer, cfg.batch_size, cfg.epochs, cfg.lr_milestones) == ("sgd", 32, 241, [220])
    assert cfg.lr * cfg.lr_new_mult == pytest.approx(0.1)
    config = DPathConfig(**options)  # every model option is a field of the config
    assert (config.backbone, config.pretrained, config.stage1_epochs) == (
        "resnet50", "IMAGENET1K_V1", 180)
    cfg, options = make_train_config("tiny", "dpath", seed=1, overrides={})
    cfg.validate()
    assert DPathConfig(**options).backbone == "tiny"
    assert 0 < options["stage1_epochs"] < cfg.epochs
