"""``bench run --lr-scale``: the lr the optimiser trains with follows the global batch only when
asked, by the stated rule, and the run records what it did."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.pipeline.runner import make_train_config
from benchmark.records.checkpoints import load_checkpoint
from tests.benchmark.helpers import make_color_dataset

TINY_LR, TINY_BATCH = 1e-3, 16  # the tiny preset's lr and (reference) batch


@pytest.mark.parametrize(("rule", "batch", "factor"), [
    ("none", 64, 1.0), ("linear", 32, 2.0), ("linear", 8, 0.5), ("sqrt", 64, 2.0)])
def test_the_rule_scales_the_presets_lr_by_the_batch_ratio(rule, batch, factor):
    cfg, _ = make_train_config("tiny", "clip", 1, {"batch_size": batch, "lr_scale": rule})
    cfg.validate()
    assert cfg.lr == pytest.approx(TINY_LR * factor)
    assert cfg.lr_reference_batch == (None if rule == "none" else TINY_BATCH)
    # the paper preset's batch is the reference: TBPS-CLIP's 320, IRRA's 64
    cfg, _ = make_train_config("paper", "tbps-clip", 1, {"batch_size": 80, "lr_scale": "linear"})
    preset, _ = make_train_config("paper", "tbps-clip", 1, {})
    assert (cfg.lr_reference_batch, cfg.lr) == (320, pytest.approx(preset.lr / 4))


def test_a_tiny_run_trains_with_and_records_the_scaled_lr(tmp_path):
    root = make_color_dataset(tmp_path / "data", ids=12, views=2,
                              splits={"train": 6, "val": 3, "test": 3})
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, [
        "run", "--models", "clip", "--datasets", f"colors={root}", "--preset", "tiny",
        "--epochs", "1", "--batch-size", "4", "--lr-scale", "sqrt", "--device", "cpu",
        "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    run = out / "colors" / "clip" / "seed1"
    train = json.loads((run / "config.json").read_text())["train"]
    scaled = TINY_LR * math.sqrt(4 / TINY_BATCH)
    assert (train["lr_scale"], train["lr_reference_batch"]) == ("sqrt", TINY_BATCH)
    assert train["lr"] == pytest.approx(scaled)
    # the optimiser's own starting lr (before warm-up and cosine) of the encoder's weights
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    groups = state["optimizer"]["param_groups"]
    encoder = [g for g in groups if g.get("name") == "encoder.weight"]
    assert encoder[0]["initial_lr"] == pytest.approx(scaled)
    assert max(state["scheduler"]["base_lrs"]) == pytest.approx(scaled)


def test_lr_and_lr_scale_together_are_refused_before_any_work(tmp_path):
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, [
        "run", "--models", "clip", "--lr", "1e-4", "--lr-scale", "linear", "--batch-size", "32",
        "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --lr-scale scales the preset's lr: give --lr (the lr at this batch) or "
        "--lr-scale, not both"]
    assert not out.exists()
