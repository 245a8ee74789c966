"""ssan's and tipcb's presets: each paper value has a source and the code's recipe, the tiny ones
build offline with stripes that fit their maps."""

from __future__ import annotations

import pytest

from benchmark.pipeline.runner import load_presets, make_train_config, preset_for
from models import build_model
from models.registry import MODELS, _make_config, with_vocabulary

RECIPES = {  # optimizer, encoder lr, new-module multiplier, batch, epochs, milestones
    "ssan": ("adam", 1e-4, 10.0, 64, 60, [20, 40]),
    "tipcb": ("adam", 3e-3, 1.0, 64, 80, [50]),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_paper_preset_is_the_public_codes_recipe_with_a_source_per_value(name: str) -> None:
    _, options = preset_for("paper", name)
    config = _make_config(MODELS[name].family, {**MODELS[name].defaults, **options})
    assert (config.backbone, config.pretrained, config.image_size) == (
        "resnet50", "IMAGENET1K_V1", (384, 128))
    assert config.num_parts == 6
    cfg, _ = make_train_config("paper", name, seed=1, overrides={})
    assert (cfg.optimizer, cfg.lr, cfg.lr_new_mult, cfg.batch_size, cfg.epochs,
            cfg.lr_milestones) == RECIPES[name]
    entry = load_presets()["paper"]["per_model"][name]
    named = {part.strip() for key in entry["source"] for part in key.split(",")}
    assert set(entry["model"]) - {"text_encoder"} <= named
    assert set(entry["train"]) - {"adam_eps", "hflip", "pad_crop", "random_erasing"} <= named


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_tiny_preset_builds_offline_with_one_map_row_per_stripe_or_more(name: str) -> None:
    _, options = preset_for("tiny", name)
    options = with_vocabulary(name, {"backbone": "tiny", **options}, ["a man in a red shirt"])
    model = build_model(name, num_classes=3, **options)
    assert model.image_size == (96, 32)
    assert model.tokenize(["a man in a red shirt"]).shape[0] == 1
