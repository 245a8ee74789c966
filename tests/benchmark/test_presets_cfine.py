"""cfine: a paper preset whose every value names its source in the official code, and a tiny
preset that builds offline."""

from __future__ import annotations

from benchmark.pipeline.dry_run import learning_rates
from benchmark.pipeline.runner import load_presets, make_train_config, preset_for
from models import build_model
from models.registry import MODELS, _make_config


def test_paper_preset_values_each_have_a_source() -> None:
    _, options = preset_for("paper", "cfine")
    entry = load_presets()["paper"]["per_model"]["cfine"]
    train, sources = entry["train"], entry["source"]
    named = {part.strip() for key in sources for part in key.split(",")}
    assert set(options) - {"text_encoder"} <= named
    augmentation = {"hflip", "pad_crop", "random_erasing"}
    assert set(train) - augmentation <= named and "augmentation" in named
    assert "no public code" not in sources["paper"] and "shuanglinyan/CFine" in sources["paper"]


def test_paper_preset_is_the_official_recipe() -> None:
    _, options = preset_for("paper", "cfine")
    config = _make_config("cfine", {**MODELS["cfine"].defaults, **options})
    assert (config.backbone, config.pretrained, tuple(config.image_size)) == (
        "ViT-B-16", "openai", (224, 224))
    assert (config.image_k_ratio, config.text_k_ratio, config.bert_max_length) == (0.1, 0.2, 100)
    assert (config.cfr_temperature, config.fcd_temperature, config.fcd_top_k) == (0.07, 0.01, 3)
    assert config.cmpm_weights == (1.0, 1.0, 0.1) and config.triplet_weight == 10.0
    cfg, _ = make_train_config("paper", "cfine", seed=1, overrides={})
    assert (cfg.lr, cfg.lr_new_mult, cfg.batch_size, cfg.epochs) == (1e-5, 10.0, 32, 50)
    assert (cfg.warmup_epochs, cfg.warmup_factor, cfg.lr_milestones) == (10, 0.01, [20, 25, 35])
    # the dry run names the steps, not a cosine the trainer does not run
    assert learning_rates(cfg)["schedule"] == (
        "linear warm-up 10 epochs from x0.01, then x0.1 at epochs 20, 25, 35, per step")


def test_tiny_preset_builds_without_any_file_or_network() -> None:
    _, options = preset_for("tiny", "cfine")
    model = build_model("cfine", num_classes=3, **options)
    assert model.image_size == (64, 32) and model.config.bert == "tiny"
