"""baseline2's presets: the paper one is a valid MGCC-recipe config, the tiny one builds offline."""

from __future__ import annotations

from benchmark.pipeline.runner import load_presets, make_train_config, preset_for
from models import build_model
from models.registry import MODELS, _make_config


def test_paper_preset_is_mgccs_recipe_on_clip_vit_b32_and_bert_base() -> None:
    train, options = preset_for("paper", "baseline2")
    config = _make_config("baseline", {**MODELS["baseline2"].defaults, **options})
    assert (config.image_encoder, config.backbone, config.pretrained) == (
        "clip", "ViT-B-32-224", "openai")
    # BERT reads the whole caption (the release's 100 pieces); m = 25 caps the fine words only
    assert (config.text_encoder, config.bert, config.bert_max_length, config.fine_words) == (
        "bert", "bert-base-uncased", 100, 25)
    assert config.embed_dim == 768 and config.feature_space == "vision"
    cfg, _ = make_train_config("paper", "baseline2", seed=1, overrides={})
    assert (cfg.optimizer, cfg.lr, cfg.lr_new_mult, cfg.batch_size, cfg.epochs) == (
        "adam", 1e-5, 10.0, 128, 60)
    sources = load_presets()["paper"]["per_model"]["baseline2"]["source"]
    named = {name.strip() for key in sources for name in key.split(",")}
    assert set(options) - {"image_encoder", "text_encoder"} <= named


def test_tiny_preset_builds_without_any_file_or_network() -> None:
    _, options = preset_for("tiny", "baseline2")
    model = build_model("baseline2", num_classes=3, **options)
    assert model.image_size == (64, 32) and model.config.bert == "tiny"
    assert model.tokenize(["a man in a red shirt"]).shape == (1, 8)
