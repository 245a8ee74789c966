"""Dual-Path: the two training stages as one schedule, tokenising, word vectors, rebuilding."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from models import build_model, build_model_from_config, tiny_options
from models.encoders.vocabulary import UNKNOWN_ID
from models.errors import ModelError

CAPTIONS = ["a man in a red shirt", "a woman with long black hair", "a child", "an old man"]


@pytest.fixture
def batch_and_model():
    torch.manual_seed(0)
    model = build_model("dpath", num_classes=3, stage1_epochs=2, **tiny_options("dpath"))
    batch = {"images": torch.randn(4, 3, *model.image_size), "tokens": model.tokenize(CAPTIONS),
             "pids": torch.tensor([0, 1, 0, 2])}
    return model, batch


def _grad_norm(module: torch.nn.Module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


def test_stage_one_trains_text_and_heads_on_the_instance_loss_with_the_image_cnn_frozen(
        batch_and_model) -> None:
    model, batch = batch_and_model
    model.set_epoch(1)
    model.train()
    assert model.stage == 1 and not model.image_encoder.training  # BN statistics frozen
    running_mean = model.image_encoder.net.bn1.running_mean.clone()
    losses = model(batch)
    assert set(losses) == {"instance_image", "instance_text"}
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.image_encoder.parameters())
    assert torch.equal(model.image_encoder.net.bn1.running_mean, running_mean)
    assert _grad_norm(model.text_encoder) > 0 and _grad_norm(model.image_head) > 0
    assert _grad_norm(model.classifier) > 0


def test_stage_two_adds_the_ranking_loss_and_trains_everything(batch_and_model) -> None:
    model, batch = batch_and_model
    model.set_epoch(3)
    model.train()
    assert model.stage == 2 and model.image_encoder.training
    losses = model(batch)
    assert set(losses) == {"instance_image", "instance_text", "ranking"}
    sum(losses.values()).backward()
    assert _grad_norm(model.image_encoder) > 0 and _grad_norm(model.text_encoder) > 0
    # the stage II weights apply (rank 2, image 1, text 0.5 by default)
    model.zero_grad()
    model.config.rank_weight, model.config.text_weight = 0.0, 0.0
    torch.manual_seed(1)
    again = model(batch)
    assert again["ranking"].item() == 0.0 and again["instance_text"].item() == 0.0


def test_a_model_never_given_an_epoch_trains_as_in_stage_two(batch_and_model) -> None:
    model, batch = batch_and_model
    assert model.stage == 2 and "ranking" in model.train()(batch)


def test_tokenize_has_a_fixed_length_and_cuts_long_captions() -> None:
    model = build_model("dpath", max_words=5, **tiny_options("dpath"))
    tokens = model.tokenize(["a man in a red shirt and blue jeans", "a zebra"])
    assert tokens.shape == (2, 5)
    assert model.vocabulary.decode(tokens[0]) == ["a", "man", "in", "a", "red"]
    assert tokens[1, 1] == UNKNOWN_ID and (tokens[1, 2:] == 0).all()


def test_word_vectors_initialise_the_embedding_and_are_not_needed_to_rebuild(
        tmp_path: Path) -> None:
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("2 4\nman 1 2 3 4\nshirt -1 0 0.5 2\n", encoding="utf-8")
    model = build_model("dpath", word_dim=4, word_vectors=str(vectors), num_classes=3,
                        **tiny_options("dpath"))
    man = model.tokenize(["man"])[0, 0]
    assert model.text_encoder.embedding.weight[man].tolist() == [1, 2, 3, 4]
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    config = json.loads(json.dumps(dataclasses.asdict(model.config)))
    vectors.unlink()  # a trained run is rebuilt from its config and weights alone
    restored = build_model_from_config(config, load_pretrained=False)
    restored.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True))
    assert torch.equal(restored.text_encoder.embedding.weight[man], torch.tensor([1., 2, 3, 4]))
    with pytest.raises(ModelError, match="vectors.txt"):
        build_model_from_config(config)


def test_config_records_the_resolved_architecture_and_refuses_bad_options() -> None:
    model = build_model("dpath", **tiny_options("dpath"))
    assert model.config.text_blocks == [[16, 32, 1], [32, 64, 2], [16, 64, 1]]
    assert model.config.feature_dim == 64 and tuple(model.config.image_size) == (64, 32)
    with pytest.raises(ModelError, match="text_blocks"):
        build_model("dpath", text_blocks=[[4, 8]], **tiny_options("dpath"))
    with pytest.raises(ModelError, match="dropout"):
        build_model("dpath", dropout=1.0, **tiny_options("dpath"))
    with pytest.raises(ModelError, match="vocabulary"):
        build_model("dpath", backbone="tiny")
