"""TIPCB's mechanisms: three levels of the documented shapes on both sides, stripes that see only
their rows, a global level that is the max of the local ones, a frozen BERT, and text features
that do not depend on the batch's padding."""

from __future__ import annotations

import pytest
import torch

from models import build_model, tiny_options

CAPTIONS = ["a man in a red shirt", "a woman with long black hair carrying a bag and shoes"]


@pytest.fixture(scope="module")
def tall_tipcb():
    """Tiny TIPCB on 384x64 images: a 48-row map (last stride 1), 8 rows per stripe."""
    torch.manual_seed(0)
    return build_model("tipcb", **{**tiny_options("tipcb"), "image_size": (384, 64)}).eval()


def test_image_levels_have_their_shapes_and_stripes_see_only_their_rows(tall_tipcb) -> None:
    pixels = torch.randn(2, 3, 384, 64)
    occluded = pixels.clone()
    occluded[:, :, 320:] = 0.0  # the bottom sixth: stripe 5
    with torch.no_grad():
        clean, hidden = tall_tipcb.image_levels(pixels), tall_tipcb.image_levels(occluded)
    assert clean["low"].shape == (2, 64) and clean["local"].shape == (2, 6, 128)
    assert torch.equal(clean["global"], clean["local"].amax(dim=1))
    assert not torch.allclose(clean["local"][:, 5], hidden["local"][:, 5])
    assert torch.allclose(clean["local"][:, 0], hidden["local"][:, 0], atol=1e-6)


def test_text_levels_match_the_image_widths_and_ignore_padding(tall_tipcb) -> None:
    with torch.no_grad():
        both = tall_tipcb.text_levels(tall_tipcb.tokenize(CAPTIONS))
        alone = tall_tipcb.text_levels(tall_tipcb.tokenize(CAPTIONS[:1]))
    assert both["low"].shape == (2, 64) and both["local"].shape == (2, 6, 128)
    assert torch.equal(both["global"], both["local"].amax(dim=1))
    # the short caption is padded in the pair, not alone: same features
    for level in ("low", "local", "global"):
        assert torch.allclose(both[level][:1], alone[level], atol=1e-5)


def test_bert_is_frozen_and_the_loss_has_the_three_levels() -> None:
    torch.manual_seed(0)
    model = build_model("tipcb", **tiny_options("tipcb")).train()
    assert all(not p.requires_grad for p in model.text_encoder.parameters())
    # the code's network.train() each epoch: the frozen BERT's dropout is on in training
    tokens = model.tokenize(CAPTIONS)
    with torch.no_grad():
        assert not torch.equal(model.text_encoder(tokens).pooled,
                               model.text_encoder(tokens).pooled)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.text_encoder(tokens).pooled, model.text_encoder(tokens).pooled)
    model.config.bert_dropout = False
    assert not model.train().text_encoder.training
    model.config.bert_dropout = True
    batch = {"images": torch.randn(2, 3, *model.image_size),
             "tokens": model.tokenize(CAPTIONS), "pids": torch.tensor([0, 1])}
    losses = model(batch)
    assert set(losses) == {"cmpm_low", "cmpm_local", "cmpm_global"}
    sum(losses.values()).backward()
    assert model.text_cnn.low[0].weight.grad is not None
    assert model.image_encoder.net.layer3[0].conv1.weight.grad is not None
