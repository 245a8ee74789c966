"""tbps and saf: paper presets with a source for every value, tiny presets that build offline,
and their published Table 2 rows claimed for `bench table --with-paper`."""

from __future__ import annotations

import pytest

from benchmark.pipeline.runner import load_presets, make_train_config, preset_for
from benchmark.records.results import find_results, run_dir, write_result
from benchmark.reporting.leaderboard import MEASURED, PUBLISHED, build_table
from models import build_model
from models.registry import MODELS, _make_config


@pytest.mark.parametrize("name", ["tbps", "saf"])
def test_paper_preset_values_each_have_a_source(name: str) -> None:
    _, options = preset_for("paper", name)
    sources = load_presets()["paper"]["per_model"][name]["source"]
    named = {part.strip() for key in sources for part in key.split(",")}
    assert set(options) - {"image_encoder", "text_encoder"} <= named
    _make_config(MODELS[name].family, {**MODELS[name].defaults, **options})  # valid options


def test_tbps_paper_preset_is_textreids_recipe() -> None:
    _, options = preset_for("paper", "tbps")
    config = _make_config("tbps", {**MODELS["tbps"].defaults, **options})
    assert (config.backbone, config.pretrained, config.bert) == (
        "resnet50", "IMAGENET1K_V1", "bert-base-uncased")
    assert (config.embed_dim, config.queue_size, config.momentum) == (256, 2048, 0.999)
    cfg, _ = make_train_config("paper", "tbps", seed=1, overrides={})
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.bias_lr_mult) == (1e-4, 128, 80, 2.0)


def test_saf_paper_preset_is_its_release_recipe() -> None:
    _, options = preset_for("paper", "saf")
    config = _make_config("saf", {**MODELS["saf"].defaults, **options})
    assert (config.image_encoder, config.backbone, config.pretrained) == (
        "vit", "vit_base_patch16_384.orig_in21k_ft_in1k", "imagenet")
    assert tuple(config.image_size) == (224, 224) and config.num_parts == 10
    assert (config.embed_dim, config.diversity_weight) == (768, 0.2)
    cfg, _ = make_train_config("paper", "saf", seed=1, overrides={})
    assert (cfg.lr, cfg.lr_new_mult, cfg.batch_size, cfg.epochs) == (3e-5, 10.0, 64, 60)
    assert (cfg.warmup_epochs, cfg.warmup_factor, cfg.lr_milestones) == (10, 0.01, [20, 25, 35])


@pytest.mark.parametrize("name", ["tbps", "saf"])
def test_tiny_preset_builds_without_any_file_or_network(name: str) -> None:
    _, options = preset_for("tiny", name)
    model = build_model(name, num_classes=3, **options)
    assert model.image_size == (64, 32) and model.config.bert == "tiny"


def test_measured_rows_follow_their_published_rows(tmp_path) -> None:
    for model in ("tbps", "saf"):
        test = {"R@1": 50.0, "R@5": 60.0, "R@10": 70.0, "mAP": 40.0, "mINP": 10.0,
                "Rsum": 180.0, "num_queries": 10}
        write_result(run_dir(tmp_path, "Occluded-CUHK-PEDES", model, 1), {
            "format": "toreid-run-result", "version": 1, "dataset": "Occluded-CUHK-PEDES",
            "model": model, "seed": 1, "test": test, "occlusion": None,
            "selection": {"split": "val", "rule": "best val R@1", "epoch": 1}})
    keys = list(build_table(find_results(tmp_path), with_paper=True).index)
    assert keys[keys.index((PUBLISHED, "TBPS")) + 1] == (MEASURED, "tbps")
    assert keys[keys.index((PUBLISHED, "SAF")) + 1] == (MEASURED, "saf")
