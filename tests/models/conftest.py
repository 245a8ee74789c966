"""Shared helpers for the model tests: tiny real open_clip models and hand-made features."""

from __future__ import annotations

import pytest
import torch

from models.features import ImageFeatures, TextFeatures

CAPTIONS = [
    "a man in a red shirt and blue jeans carrying a black bag",
    "a woman with long hair",
    "a child",
    "an old man walking with a stick in grey trousers and a white cap",
]


@pytest.fixture
def captions() -> list[str]:
    return list(CAPTIONS)


def random_features(
    num_texts: int = 3, num_images: int = 4, dim: int = 8, seed: int = 0,
) -> tuple[TextFeatures, ImageFeatures]:
    """Random token features with ragged text lengths and some unselected patches."""
    gen = torch.Generator().manual_seed(seed)
    max_words, max_patches = 6, 5
    word_counts = [6, 2, 4, 1, 3][:num_texts]
    patch_counts = [5, 3, 5, 1, 4][:num_images]
    text_mask = torch.zeros(num_texts, max_words, dtype=torch.bool)
    for row, count in enumerate(word_counts):
        text_mask[row, :count] = True
    image_mask = torch.zeros(num_images, max_patches, dtype=torch.bool)
    for row, count in enumerate(patch_counts):
        image_mask[row, torch.randperm(max_patches, generator=gen)[:count]] = True
    text = TextFeatures(
        pooled=torch.randn(num_texts, dim, generator=gen),
        tokens=torch.randn(num_texts, max_words, dim, generator=gen),
        mask=text_mask,
        attention=torch.rand(num_texts, max_words, generator=gen) * text_mask,
    )
    image = ImageFeatures(
        pooled=torch.randn(num_images, dim, generator=gen),
        tokens=torch.randn(num_images, max_patches, dim, generator=gen),
        mask=image_mask,
        attention=torch.rand(num_images, max_patches, generator=gen) * image_mask,
    )
    return text, image
