"""vitaa's and nafs's presets (sources beside the values; tiny builds offline) and their
published Table 2 rows."""

from __future__ import annotations

import pytest

from benchmark.pipeline.runner import load_presets, make_train_config, preset_for
from benchmark.records.results import find_results, run_dir, write_result
from benchmark.reporting.leaderboard import MEASURED, PUBLISHED, build_table
from models import build_model
from models.registry import MODELS, _make_config, with_vocabulary

PAPER = {"vitaa": ("adam", 1e-4, 1.0, 64, 80), "nafs": ("adam", 1.1e-4, 10.0, 64, 60)}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_preset_has_a_source_for_each_value(name: str) -> None:
    _, options = preset_for("paper", name)
    config = _make_config(name, {**MODELS[name].defaults, **options})
    assert (config.backbone, config.pretrained, config.image_size) == (
        "resnet50", "IMAGENET1K_V1", (384, 128))
    cfg, _ = make_train_config("paper", name, seed=1, overrides={})
    assert (cfg.optimizer, cfg.lr, cfg.lr_new_mult, cfg.batch_size, cfg.epochs) == PAPER[name]
    sources = load_presets()["paper"]["per_model"][name]["source"]
    named = {part.strip() for key in sources for part in key.split(",")}
    assert set(options) - {"text_encoder", "mask_weight", "align_weight", "local_align_weight",
                           "instance_weight"} <= named
    if name == "nafs":
        assert config.rerank_k == 5 and config.bert == "bert-base-uncased"


@pytest.mark.parametrize("name", sorted(PAPER))
def test_tiny_preset_builds_offline(name: str) -> None:
    _, options = preset_for("tiny", name)
    options = with_vocabulary(name, {"backbone": "tiny", **options}, ["a man in a red shirt"])
    model = build_model(name, num_classes=3, **options)
    assert model.image_size == (64, 32)


@pytest.mark.parametrize("name,method", [("vitaa", "ViTAA"), ("nafs", "NAFS")])
def test_measured_row_sits_under_the_published_row(name: str, method: str, tmp_path) -> None:
    test = {"R@1": 40.0, "R@5": 70.0, "R@10": 80.0, "mAP": 35.0, "mINP": 10.0, "Rsum": 190.0,
            "num_queries": 10}
    write_result(run_dir(tmp_path, "Occluded-CUHK-PEDES", name, 1), {
        "format": "toreid-run-result", "version": 1, "dataset": "Occluded-CUHK-PEDES",
        "model": name, "seed": 1, "test": test, "occlusion": None,
        "selection": {"split": "val", "rule": "best val R@1", "epoch": 1}})
    keys = list(build_table(find_results(tmp_path), with_paper=True).index)
    assert keys[keys.index((PUBLISHED, method)) + 1] == (MEASURED, name)
