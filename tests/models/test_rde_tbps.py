"""RDE's and TBPS-CLIP's losses against naive loops and hand cases; their model parts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models import build_model, tiny_options
from models.losses.rde import consensus_division, gmm_clean_probability, tal_per_sample
from models.losses.tbps import citc_loss, nitc_loss, ritc_loss, simclr_loss
from models.methods.irra import MASK_TOKEN_ID
from models.methods.rde import augment_caption_tokens
from models.methods.tbps_clip import random_deletion

PIDS = torch.tensor([0, 1, 0, 2, 1])


def _unit(rows: int, dim: int = 6, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed)),
                       dim=-1)


def test_tal_matches_a_naive_loop():
    scores = _unit(5) @ _unit(5, seed=1).t()
    tau, margin = 0.05, 0.1

    def naive(s):
        out = []
        for i in range(len(s)):
            pos = [j for j in range(len(s)) if PIDS[j] == PIDS[i]]
            neg = [j for j in range(len(s)) if PIDS[j] != PIDS[i]]
            w = torch.tensor([math.exp(s[i, j] / tau) for j in pos])
            w = w / w.sum()
            positive = sum(float(w[k]) * float(s[i, j]) for k, j in enumerate(pos))
            negative = tau * math.log(sum(math.exp(s[i, j] / tau) for j in neg))
            out.append(max(0.0, margin + negative - positive))
        return torch.tensor(out)

    expected = naive(scores) + naive(scores.t())
    assert torch.allclose(tal_per_sample(scores, PIDS, tau, margin), expected, atol=1e-5)


def test_tal_is_zero_for_well_separated_pairs():
    scores = torch.eye(3) * 0.9  # positives 0.9, negatives 0: margin 0.1 is met
    assert torch.all(tal_per_sample(scores, torch.arange(3), 0.015, 0.1) == 0)


def test_gmm_gives_low_losses_the_clean_component():
    losses = torch.cat([torch.full((20,), 0.1), torch.full((5,), 2.0)])
    losses = losses + torch.linspace(0, 0.05, 25)
    prob = gmm_clean_probability(losses)
    assert torch.all(prob[:20] > 0.9) and torch.all(prob[20:] < 0.1)
    assert torch.all(gmm_clean_probability(torch.ones(4)) == 1)


def test_consensus_keeps_agreed_clean_drops_agreed_noisy_and_splits_ties():
    a = torch.tensor([True, False, True, False] * 250)
    b = torch.tensor([True, False, False, True] * 250)
    keep = consensus_division(a, b, generator=torch.Generator().manual_seed(0))
    assert torch.all(keep[0::4] == 1) and torch.all(keep[1::4] == 0)
    split = torch.cat([keep[2::4], keep[3::4]])
    assert 0.4 < float(split.mean()) < 0.6


def test_nitc_with_alpha_zero_is_cross_entropy_to_id_labels():
    image, text, scale = _unit(5), _unit(5, seed=1), torch.tensor(10.0)
    same = (PIDS.view(-1, 1) == PIDS.view(1, -1)).float()
    target = same / same.sum(1, keepdim=True)
    i2t = -(F.log_softmax(scale * image @ text.t(), 1) * target).sum(1).mean()
    t2i = -(F.log_softmax(scale * text @ image.t(), 1) * target).sum(1).mean()
    assert torch.allclose(nitc_loss(image, text, PIDS, scale, alpha=0.0), (i2t + t2i) / 2)


def test_ritc_is_the_reverse_kl():
    image, text, scale = _unit(5), _unit(5, seed=1), torch.tensor(10.0)
    same = (PIDS.view(-1, 1) == PIDS.view(1, -1)).float()
    target = same / same.sum(1, keepdim=True) + 1e-2
    total = 0.0
    for logits in (scale * image @ text.t(), scale * text @ image.t()):
        p = logits.softmax(1)
        total += float((p * (p.log() - target.log())).sum(1).mean())
    assert ritc_loss(image, text, PIDS, scale) == pytest.approx(total / 2, rel=1e-5)


def test_citc_is_zero_when_images_equal_texts():
    feats = _unit(4)
    assert float(citc_loss(feats, feats, torch.tensor(20.0))) == pytest.approx(0.0, abs=1e-7)
    assert float(citc_loss(feats, _unit(4, seed=3), torch.tensor(20.0))) > 0


def test_simclr_prefers_matching_views():
    a = _unit(6)
    assert simclr_loss(a, a + 0.01 * _unit(6, seed=2)) < simclr_loss(a, _unit(6, seed=5))


def test_text_augmentations_touch_words_only():
    tokens = torch.zeros(64, 12, dtype=torch.long)
    tokens[:, 0], tokens[:, 1:9], tokens[:, 9] = 49406, torch.arange(100, 108), 49407
    out = augment_caption_tokens(tokens, prob=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.all(out[:, 0] == 49406)
    assert torch.all((out == 49407).sum(1) == 1)  # EOT kept (it may move left)
    assert (out == MASK_TOKEN_ID).any() and (out.ne(0).sum(1) < 10).any()  # masked, deleted
    kept = random_deletion(tokens, 0.99, generator=torch.Generator().manual_seed(0))
    words = (kept > 0) & (kept < MASK_TOKEN_ID)
    assert torch.all(words.sum(1) >= 1) and torch.all((kept == 49407).sum(1) == 1)


def test_rde_similarity_is_the_mean_of_its_two_branch_cosines():
    torch.manual_seed(0)
    model = build_model("rde", **tiny_options("rde")).eval()
    pixels = torch.randn(3, 3, *model.image_size)
    tokens = model.tokenize(["a man in red", "a woman in a blue coat", "a child"])
    with torch.no_grad():
        score = model.similarity(model.encode_texts(tokens), model.encode_images(pixels))
        image_bge, image_tse = model._image_branches(pixels)
        text_bge, text_tse = model._text_branches(tokens)
        cos = lambda t, i: F.normalize(t, dim=-1) @ F.normalize(i, dim=-1).t()  # noqa: E731
        expected = (cos(text_bge, image_bge) + cos(text_tse, image_tse)) / 2
    assert torch.allclose(score, expected, atol=1e-5)


def test_tbps_clip_uses_imagenet_normalisation_and_freezes_the_patch_embedding():
    model = build_model("tbps-clip", **tiny_options("tbps-clip"))
    assert model.image_mean == (0.485, 0.456, 0.406)
    assert not model.backbone.clip.visual.conv1.weight.requires_grad
    views = model.weak_view(torch.zeros(2, 3, *model.image_size))
    assert views.shape == (2, 3, *model.image_size)
