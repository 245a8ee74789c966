"""SSAN's mechanisms: stripe parts that see only their rows, word-attention text parts, the
three-level similarity and the semi-hard compound ranking loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models import build_model, tiny_options
from models.losses.compound_ranking import semi_hard_triplet_loss

CAPTIONS = ["a man in a red shirt and blue jeans", "a woman with long hair and black shoes"]


@pytest.fixture(scope="module")
def tall_ssan():
    """Tiny SSAN on 384x64 images: a 24-row map, 4 rows per stripe, so the top stripe's
    receptive field does not reach the bottom stripe."""
    torch.manual_seed(0)
    options = {**tiny_options("ssan"), "image_size": (384, 64)}
    return build_model("ssan", num_classes=3, **options).eval()


def test_image_parts_have_their_shapes_and_see_only_their_stripe(tall_ssan) -> None:
    pixels = torch.randn(2, 3, 384, 64)
    occluded = pixels.clone()
    occluded[:, :, 320:] = 0.0  # the bottom sixth: stripe 5
    with torch.no_grad():
        clean, hidden = tall_ssan.image_levels(pixels), tall_ssan.image_levels(occluded)
        features = tall_ssan.encode_images(pixels)
    config = tall_ssan.config
    assert clean["global"].shape == (2, config.embed_dim)
    assert clean["parts"].shape == (2, 6, config.embed_dim)
    assert clean["relations"].shape == (2, 6, config.relation_dim)
    assert features.tokens.shape == (2, 6, config.embed_dim + config.relation_dim)
    assert not torch.allclose(clean["parts"][:, 5], hidden["parts"][:, 5])
    assert torch.allclose(clean["parts"][:, 0], hidden["parts"][:, 0], atol=1e-6)


def test_text_parts_are_word_attention_maxima(tall_ssan) -> None:
    tokens = tall_ssan.tokenize(CAPTIONS)
    with torch.no_grad():
        levels = tall_ssan.text_levels(tokens)
        raw = tall_ssan.text_encoder(tokens)
        scores = torch.sigmoid(tall_ssan.word_part_classifier(raw.tokens))
        n = int(raw.mask[1].sum())  # the second caption's words only
        part3 = (raw.tokens[1, :n] * scores[1, :n, 3:4]).amax(dim=0)
        expected = F.leaky_relu(part3 @ tall_ssan.part_projection.weight[3], 0.25)
    assert torch.allclose(levels["parts"][1, 3], expected, atol=1e-5)


def test_similarity_adds_global_part_and_relation_cosines(tall_ssan) -> None:
    with torch.no_grad():
        text = tall_ssan.encode_texts(tall_ssan.tokenize(CAPTIONS))
        image = tall_ssan.encode_images(torch.randn(3, 3, 384, 64))
        scores = tall_ssan.similarity(text, image)
    dim = tall_ssan.config.embed_dim

    def cos(a, b):
        return F.normalize(a.flatten(1), dim=-1) @ F.normalize(b.flatten(1), dim=-1).t()

    parts, relations = slice(None, dim), slice(dim, None)
    expected = (cos(text.pooled, image.pooled)
                + cos(text.tokens[..., parts], image.tokens[..., parts])
                + cos(text.tokens[..., relations], image.tokens[..., relations]))
    assert torch.allclose(scores, expected, atol=1e-5)


def test_ranking_uses_only_semi_hard_negatives() -> None:
    pids = torch.tensor([0, 1, 2])
    margins = torch.full((3,), 0.2)
    # anchor 0: negative 1 is harder than the positive (hinge 0.3 > margin), 2 is easy
    scores = torch.tensor([[0.5, 0.6, 0.0], [0.0, 0.9, 0.0], [0.0, 0.0, 0.9]])
    assert semi_hard_triplet_loss(scores, pids, margins) == 0
    scores[0, 1] = 0.4  # now semi-hard: 0 < 0.4 - 0.5 + 0.2 < 0.2
    assert torch.isclose(semi_hard_triplet_loss(scores, pids, margins), torch.tensor(0.1))
    # same person: never a negative
    assert semi_hard_triplet_loss(scores, torch.tensor([0, 0, 2]), margins) == 0
