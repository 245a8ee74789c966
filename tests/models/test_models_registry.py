"""Registry, configs, training steps and save/load for every model family."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from models import (
    MGCC_PAPER_RATIOS,
    ImageFeatures,
    ModelError,
    TextFeatures,
    build_model,
    build_model_from_config,
    list_models,
)

TRAINED = ["mgcc", "mgcc-cuhk", "mgcc-max-mean", "mgcc-sit-spw", "irra", "clip"]


def test_registry_names_the_paper_variants() -> None:
    names = set(list_models())
    table3 = {"mgcc", "mgcc-sit", "mgcc-spw", "mgcc-spt", "mgcc-siw", "mgcc-sit-spw",
              "mgcc-spt-siw"}
    table6 = {"mgcc-mean-mean", "mgcc-mean-max", "mgcc-max-mean", "mgcc-max-max"}
    assert table3 | table6 | {"irra", "clip", "mgcc-cuhk", "mgcc-icfg", "mgcc-rstpreid"} <= names
    assert MGCC_PAPER_RATIOS == {"cuhk-pedes": (0.3, 0.4), "icfg-pedes": (0.4, 0.5),
                                 "rstpreid": (0.5, 0.5)}


def test_unknown_names_and_options_are_one_line_errors_listing_choices() -> None:
    with pytest.raises(ModelError, match="valid models: mgcc, .*irra.*clip") as caught:
        build_model("mgc")
    assert "\n" not in str(caught.value)
    with pytest.raises(ModelError, match="unknown option.*colour.*valid:.*rho_image"):
        build_model("mgcc", backbone="tiny", colour="red")
    with pytest.raises(ModelError, match="unknown family"):
        build_model_from_config({"family": "resnet"})


def test_overrides_reach_the_config() -> None:
    model = build_model("mgcc", backbone="tiny", fusion="max-mean", rho_image=0.3, rho_text=0.4)
    assert (model.config.fusion, model.config.rho_image, model.config.rho_text) == (
        "max-mean", 0.3, 0.4)
    assert model.config.components == ("sit", "spw", "spt", "siw")
    assert build_model("mgcc-spt-siw", backbone="tiny").config.components == ("spt", "siw")


@pytest.mark.parametrize("name", ["mgcc-icfg", "irra", "clip"])
def test_config_json_round_trip_rebuilds_the_same_architecture(name: str) -> None:
    model = build_model(name, backbone="tiny", num_classes=3)
    as_json = json.loads(json.dumps(dataclasses.asdict(model.config)))
    rebuilt = build_model_from_config(as_json)
    assert rebuilt.config == model.config
    assert type(rebuilt) is type(model)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == shapes


@pytest.mark.parametrize("name", TRAINED)
def test_a_training_step_reaches_every_trainable_parameter(name: str, captions) -> None:
    torch.manual_seed(0)
    model = build_model(name, backbone="tiny", num_classes=3)
    batch = {"images": torch.randn(4, 3, *model.image_size), "tokens": model.tokenize(captions),
             "pids": torch.tensor([0, 1, 0, 2])}
    losses = model(batch)
    assert losses and all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    without = sorted(n for n, p in model.named_parameters()
                     if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0))
    assert not without, f"no gradient: {without[:5]}"
    groups = model.parameter_groups()
    ids = [id(p) for group in groups.values() for p in group]
    assert len(ids) == len(set(ids)) == len(trainable)
    assert set(groups) == {"encoder", "new"}
    # MGCC's paper space adds a new text projection ("other modules", lr 1e-4); CLIP adds none
    assert bool(groups["new"]) == (name != "clip")


def test_irra_loss_names() -> None:
    model = build_model("irra", backbone="tiny", num_classes=3)
    batch = {"images": torch.randn(2, 3, 64, 32), "tokens": model.tokenize(["a b c d e f"] * 2),
             "pids": torch.tensor([0, 1])}
    assert set(model(batch)) == {"sdm", "irr", "id"}
    assert set(build_model("irra", backbone="tiny")(batch)) == {"sdm", "irr"}


@pytest.mark.parametrize("name", ["mgcc-cuhk", "irra"])
def test_weights_save_and_load_give_identical_outputs(name: str, tmp_path, captions) -> None:
    torch.manual_seed(3)
    model = build_model(name, backbone="tiny", num_classes=3).eval()
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    config = json.loads(json.dumps(dataclasses.asdict(model.config)))
    torch.manual_seed(99)  # a different random init, overwritten by the file
    restored = build_model_from_config(config).eval()
    restored.load_state_dict(torch.load(path, weights_only=True))
    tokens = model.tokenize(captions)
    pixels = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        a = model.similarity(model.encode_texts(tokens), model.encode_images(pixels))
        b = restored.similarity(restored.encode_texts(tokens), restored.encode_images(pixels))
    assert torch.equal(a, b)


def test_contract_attributes_and_feature_types(captions) -> None:
    model = build_model("mgcc", backbone="tiny")
    assert model.image_size == (64, 32) and model.context_length == 77
    assert len(model.image_mean) == 3 and len(model.image_std) == 3
    tokens = model.tokenize(captions)
    assert tokens.shape == (4, 77) and tokens.dtype == torch.long
    with torch.no_grad():
        images = model.encode_images(torch.randn(2, 3, 64, 32))
        texts = model.encode_texts(tokens)
    assert isinstance(images, ImageFeatures) and isinstance(texts, TextFeatures)
    assert model.similarity(texts, images).shape == (4, 2)
    assert build_model("mgcc-sit", backbone="tiny").encode_images(
        torch.randn(1, 3, 64, 32)).num_tokens == 0  # no token features kept when unused
