"""SAF's and LGUR's paper presets: every model and train value names its source (a file of the
official code or the paper), and LGUR's recipe is its release's."""

from __future__ import annotations

import pytest

from benchmark.pipeline.runner import load_presets, make_train_config, preset_for
from models import build_model
from models.registry import MODELS, _make_config


@pytest.mark.parametrize("name", ["saf", "lgur"])
def test_every_paper_value_names_its_source(name: str) -> None:
    entry = load_presets()["paper"]["per_model"][name]
    named = {part.strip() for key in entry["source"] for part in key.split(",")}
    assert set(entry["model"]) - {"image_encoder", "text_encoder"} <= named
    assert set(entry["train"]) <= named
    assert "official code" in entry["source"]["paper"]


def test_lgur_paper_preset_is_its_release_recipe() -> None:
    _, options = preset_for("paper", "lgur")
    config = _make_config("lgur", {**MODELS["lgur"].defaults, **options})
    assert (config.backbone, config.image_size, config.embed_dim) == (
        "deit_small_patch16_224", (384, 128), 384)
    assert (config.dictionary_size, config.num_parts, config.part_dim, config.margin) == (
        400, 6, 512, 0.3)
    cfg, _ = make_train_config("paper", "lgur", seed=1, overrides={})
    assert (cfg.lr, cfg.lr_new_mult, cfg.weight_decay, cfg.batch_size, cfg.epochs) == (
        1e-4, 10.0, 0.0, 64, 60)
    assert (cfg.lr_milestones, cfg.pad_crop) == ([19, 39, 49], 10)


def test_lgur_tiny_preset_builds_offline() -> None:
    _, options = preset_for("tiny", "lgur")
    model = build_model("lgur", num_classes=3, **options)
    assert model.image_size == (64, 32) and model.config.bert == "tiny"
