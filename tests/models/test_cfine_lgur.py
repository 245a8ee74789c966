"""LGUR's shared dictionary and prototypes (CFine's tests: ``tests/models/test_cfine.py``)."""

from __future__ import annotations

import pytest
import torch

from models import build_model, tiny_options
from models.methods.lgur import LGUR

CAPTIONS = ["a man in a red shirt", "a woman with long hair", "a child in a yellow coat",
            "an old man with a stick"]


@pytest.fixture(scope="module")
def lgur() -> LGUR:
    torch.manual_seed(0)
    model = build_model("lgur", num_classes=3, **tiny_options("lgur"))
    assert isinstance(model, LGUR)
    return model


def test_lgur_dictionary_and_prototypes_serve_both_modalities(lgur: LGUR) -> None:
    pixels = torch.randn(4, 3, *lgur.image_size)
    tokens = lgur.tokenize(CAPTIONS)
    shared = (lgur.dictionary, lgur.prototypes)
    for encode in (lambda: lgur.image_parts(pixels), lambda: lgur.text_parts(tokens)):
        lgur.zero_grad()
        parts = encode()
        half = parts.shape[1] // 2
        parts[:, half:].square().sum().backward()  # the dictionary branch alone
        for param in shared:
            assert param.grad is not None and param.grad.abs().sum() > 0
    # the dictionary branch is a function of the dictionary in both modalities
    lgur.eval()
    with torch.no_grad():
        before = lgur.image_parts(pixels), lgur.text_parts(tokens)
        saved = lgur.dictionary.detach().clone()
        lgur.dictionary.copy_(torch.randn_like(saved))
        after = lgur.image_parts(pixels), lgur.text_parts(tokens)
        lgur.dictionary.copy_(saved)
    for old, new in zip(before, after, strict=True):
        half = old.shape[1] // 2
        torch.testing.assert_close(old[:, :half], new[:, :half])  # raw branch: untouched
        assert not torch.allclose(old[:, half:], new[:, half:])


def test_lgur_text_padding_does_not_change_its_parts(lgur: LGUR) -> None:
    lgur.eval()
    tokens = lgur.tokenize(CAPTIONS)
    padded = torch.cat([tokens, torch.zeros(len(CAPTIONS), 5, dtype=tokens.dtype)], 1)
    with torch.no_grad():
        torch.testing.assert_close(lgur.text_parts(tokens), lgur.text_parts(padded),
                                   atol=1e-5, rtol=1e-4)
