"""ViTAA: each attribute branch is trained against its own region's mask; phrases per attribute."""

from __future__ import annotations

import pytest
import torch

from models import build_model, tiny_options
from models.encoders.vocabulary import split_words
from models.errors import ModelError
from models.phrases import ATTRIBUTES, chunk

CAPTIONS = ["a man with long black hair wearing a red shirt and blue jeans and white shoes",
            "a woman in a yellow coat carrying a black bag"]


@pytest.fixture(scope="module")
def vitaa():
    torch.manual_seed(0)
    return build_model("vitaa", num_classes=2, **tiny_options("vitaa"))


def _parsing(height: int, width: int) -> torch.Tensor:
    """Two maps: head rows, upper, lower, shoes stacked top to bottom; a bag at the side."""
    labels = torch.zeros(2, height, width, dtype=torch.long)
    band = height // 4
    for k, label in enumerate((1, 2, 3, 4)):
        labels[:, k * band:(k + 1) * band, : width // 2] = label
    labels[:, band:3 * band, width // 2:] = 5
    return labels


def test_chunker_finds_the_attribute_phrases():
    words = split_words("A young man with long blonde hair wearing a white knee-length coat over "
                        "black trousers and a pair of yellow shoes, holding a green bag.")
    found = [(" ".join(p.words(words)), p.attribute) for p in chunk(words)]
    assert found == [("long blonde hair", "head"), ("white knee-length coat", "upper"),
                     ("black trousers", "lower"), ("yellow shoes", "shoes"),
                     ("green bag", "bag")]


def test_text_attribute_features_follow_the_phrases(vitaa):
    tokens = vitaa.tokenize(CAPTIONS)
    phrases = vitaa.phrase_masks(tokens)
    words = split_words(CAPTIONS[1])
    upper = [words[i] for i in phrases[1, :, ATTRIBUTES.index("upper")].nonzero().flatten()]
    assert upper == ["yellow", "coat"]
    vitaa.eval()
    with torch.no_grad():
        text = vitaa.encode_texts(tokens)
    assert text.tokens.shape == (2, len(ATTRIBUTES), vitaa.config.embed_dim)
    assert text.mask[0].tolist() == [True, True, True, True, False]  # no bag in caption 0
    assert text.mask[1].tolist() == [False, True, False, False, True]


def test_each_branch_is_trained_against_its_own_region_mask(vitaa):
    """Relabelling one region (shoes -> background) changes the mask loss of the shoes branch
    and of no other branch, and the gradient it sends reaches the shoes branch only."""
    torch.manual_seed(1)
    pixels = torch.randn(2, 3, *vitaa.image_size)
    parsing = _parsing(*vitaa.image_size)
    no_shoes = parsing.masked_fill(parsing == 4, 0)
    vitaa.train()
    _, _, maps = vitaa._image_parts(pixels)
    with_shoes = vitaa.mask_losses(maps, parsing)
    without = vitaa.mask_losses(maps, no_shoes)
    shoes = ATTRIBUTES.index("shoes")
    changed = (with_shoes - without).abs() > 1e-6
    assert changed.tolist() == [k == shoes for k in range(len(ATTRIBUTES))]

    vitaa.zero_grad()
    (with_shoes - without).sum().backward()
    touched = [any(p.grad is not None and p.grad.abs().sum() > 0 for p in b.parameters())
               for b in vitaa.part_branches]
    assert touched == [k == shoes for k in range(len(ATTRIBUTES))]
    vitaa.zero_grad()


def test_mask_loss_only_with_parsing_maps(vitaa):
    pixels = torch.randn(2, 3, *vitaa.image_size)
    batch = {"images": pixels, "tokens": vitaa.tokenize(CAPTIONS), "pids": torch.tensor([0, 1])}
    vitaa.train()
    assert "mask" not in vitaa(batch)
    losses = vitaa({**batch, "parsing": _parsing(*vitaa.image_size)})
    assert set(losses) == {"align", "instance", "local_align", "mask"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert type(vitaa).train_inputs == ("parsing",)


def test_vitaa_needs_resnet_and_bilstm():
    with pytest.raises(ModelError, match="ResNet image encoder and a Bi-LSTM"):
        build_model("vitaa", **{**tiny_options("vitaa"), "text_encoder": "bert"})


def test_evaluation_ranks_by_the_global_cosine_as_the_release(vitaa):
    """ViTAA's released evaluation ranks by the global cosine only (its re-ranking with the
    attribute cosines is never called); local_weight > 0 is the variant that adds them."""
    vitaa.eval()
    with torch.no_grad():
        text = vitaa.encode_texts(vitaa.tokenize(CAPTIONS))
        image = vitaa.encode_images(torch.randn(3, 3, *vitaa.image_size))
        scores = vitaa.similarity(text, image)
        cosine = (torch.nn.functional.normalize(text.pooled, dim=-1)
                  @ torch.nn.functional.normalize(image.pooled, dim=-1).t())
        assert text.mask.any()  # the captions name attributes: there is a local term to leave out
        assert torch.allclose(scores, cosine, atol=1e-6)
        vitaa.config.local_weight = 0.2
        try:
            assert not torch.allclose(vitaa.similarity(text, image), cosine, atol=1e-4)
        finally:
            vitaa.config.local_weight = 0.0
