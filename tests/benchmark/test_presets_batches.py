"""The presets of the methods that train on special batches ask for them (ViTAA: 4 per person;
SSAN: a weak caption per sample; Dual-Path: a random caption of the person), and ViTAA's
recipe is its code's: biases at lr x2 without weight decay, a step schedule."""

from __future__ import annotations

import pytest

from benchmark.pipeline.runner import make_train_config, preset_for
from benchmark.training.optim import build_optimizer
from models import build_model
from models.registry import with_vocabulary

BATCHES = {  # sampler, ims_per_id, person_caption, weak_caption
    "vitaa": ("identity", 4, "own", False),
    "ssan": ("random", 4, "own", True),
    "dpath": ("random", 4, "same-person", False),
}


@pytest.mark.parametrize("preset", ["paper", "tiny"])
@pytest.mark.parametrize("name", sorted(BATCHES))
def test_presets_ask_for_their_methods_batches(name: str, preset: str) -> None:
    cfg, _ = make_train_config(preset, name, seed=1, overrides={})
    cfg.validate()
    assert (cfg.sampler, cfg.ims_per_id, cfg.person_caption, cfg.weak_caption) == BATCHES[name]
    if cfg.sampler == "identity":
        assert cfg.batch_size % cfg.ims_per_id == 0


def test_vitaa_paper_recipe_biases_and_step_schedule() -> None:
    cfg, options = make_train_config("paper", "vitaa", seed=1, overrides={})
    assert (cfg.warmup_epochs, cfg.warmup_factor, cfg.lr_milestones, cfg.lr_gamma) == (
        5, 0.1, [39, 69], 0.1)
    assert options["local_weight"] == 0.0
    _, tiny = preset_for("tiny", "vitaa")
    tiny = with_vocabulary("vitaa", {"backbone": "tiny", **tiny}, ["a man in a red shirt"])
    model = build_model("vitaa", num_classes=3, **tiny)
    optimizer = build_optimizer(model, cfg)
    rule = {}
    for group in optimizer.param_groups:
        for member in group["members"]:
            rule[member] = (group["lr"], group["weight_decay"])
    assert rule["image_encoder.net.bn1.weight"] == (pytest.approx(1e-4), 4e-5)  # not a bias
    assert all((lr, wd) == ((pytest.approx(2e-4), 0.0) if "bias" in n else
                            (pytest.approx(1e-4), 4e-5)) for n, (lr, wd) in rule.items())
