"""IRRA: SDM on a hand-computed 3x3 case, IRR masking, the cross-modal transformer."""

from __future__ import annotations

import math

import pytest
import torch

from models import build_model
from models.encoders.clip import EOT_TOKEN_ID, SOT_TOKEN_ID
from models.losses import sdm_loss
from models.methods.irra import IGNORE_INDEX, MASK_TOKEN_ID, mask_tokens


def test_sdm_equals_a_hand_computed_3x3_case() -> None:
    # unit vectors: cos(image i, text j) is 1 or 0 as written in the table below
    images = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])  # norms do not matter
    texts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 5.0]])
    pids = torch.tensor([7, 4, 7])
    # cos[i][j] (rows images, columns texts) and the label distribution of same-id pairs
    cos = [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    labels = [[0.5, 0, 0.5], [0, 1, 0], [0.5, 0, 0.5]]
    tau, eps = 0.5, 1e-8

    def kl_rows(logit_rows, label_rows):
        total = 0.0
        for logits, q in zip(logit_rows, label_rows, strict=True):
            z = sum(math.exp(v / tau) for v in logits)
            p = [math.exp(v / tau) / z for v in logits]
            total += sum(pi * (math.log(pi) - math.log(qi + eps)) for pi, qi in
                         zip(p, q, strict=True))
        return total / len(logit_rows)

    cos_t = [list(col) for col in zip(*cos, strict=True)]  # texts x images
    # the label matrix is symmetric, so the same rows serve the text-to-image direction
    expected = kl_rows(cos, labels) + kl_rows(cos_t, labels)
    assert sdm_loss(images, texts, pids, tau=tau, epsilon=eps).item() == pytest.approx(
        expected, rel=1e-5)


def test_sdm_is_small_when_matched_and_large_when_swapped() -> None:
    features = torch.eye(4)
    pids = torch.arange(4)
    assert sdm_loss(features, features, pids).item() < 1e-3
    assert sdm_loss(features, features.flip(0), pids).item() > 10


def _many_tokens(model, count: int = 300) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    words = ("man woman red blue shirt jeans bag black long hair walking white shoes "
             "carrying backpack grey coat").split()
    captions = []
    for _ in range(count):
        length = int(torch.randint(1, 40, (1,), generator=gen))
        picks = torch.randint(0, len(words), (length,), generator=gen).tolist()
        captions.append(" ".join(words[i] for i in picks))
    return model.tokenize(captions)


@pytest.fixture(scope="module")
def irra():
    torch.manual_seed(0)
    return build_model("irra", backbone="tiny", num_classes=5)


def test_masking_never_touches_special_or_padding_tokens_and_hits_15_percent(irra) -> None:
    tokens = _many_tokens(irra)
    corrupted, labels = mask_tokens(tokens, 0.15, generator=torch.Generator().manual_seed(1))
    positions = torch.arange(tokens.shape[1])
    eot = tokens.argmax(dim=1, keepdim=True)
    words = (positions > 0) & (positions < eot)
    chosen = labels != IGNORE_INDEX
    assert not (chosen & ~words).any()
    assert torch.equal(corrupted[~words], tokens[~words])  # SOT, EOT, padding untouched
    assert (tokens[:, 0] == SOT_TOKEN_ID).all() and (corrupted == EOT_TOKEN_ID).sum() == 300
    assert torch.equal(labels[chosen], tokens[chosen])
    rate = chosen.sum().item() / words.sum().item()
    assert rate == pytest.approx(0.15, abs=0.01)  # ~6,000 words: 4 standard deviations
    masked = (corrupted[chosen] == MASK_TOKEN_ID).float().mean().item()
    kept = (corrupted[chosen] == tokens[chosen]).float().mean().item()
    assert masked == pytest.approx(0.8, abs=0.04)
    assert kept == pytest.approx(0.1, abs=0.03)
    assert ((corrupted[chosen] > 0) & (corrupted[chosen] <= MASK_TOKEN_ID)).all()


def test_irr_runs_through_one_cross_attention_and_four_self_attention_layers(irra) -> None:
    assert len(irra.cross_modal.transformer.resblocks) == 4
    assert irra.cross_modal.cross_attn.embed_dim == irra.embed_dim
    assert irra.cross_modal.mlm_head.fc.out_features == 49408
    assert irra.classifier is not None and irra.classifier.out_features == 5


def test_irra_retrieval_is_the_cosine_of_globals(irra, captions) -> None:
    tokens = irra.tokenize(captions)
    pixels = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        sim = irra.similarity(irra.encode_texts(tokens), irra.encode_images(pixels), chunk=2)
        text = torch.nn.functional.normalize(irra.backbone.clip.encode_text(tokens), dim=-1)
        image = torch.nn.functional.normalize(irra.backbone.clip.encode_image(pixels), dim=-1)
    torch.testing.assert_close(sim, text @ image.t(), atol=1e-5, rtol=1e-5)
