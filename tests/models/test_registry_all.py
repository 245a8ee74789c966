"""Every registered model, in its tiny configuration, through the whole contract.

One parametrised test over :func:`models.list_models`, so that a model added to the registry is
covered without writing a test for it: build, a training step that reaches every trainable
parameter, encode, rank, save weights and config to real files, rebuild from them with other
random weights, and get the same similarities.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from models import (
    ImageFeatures,
    TextFeatures,
    build_model,
    build_model_from_config,
    list_models,
    tiny_options,
)

CAPTIONS = [
    "a man in a red shirt and blue jeans carrying a black bag",
    "a woman with long hair",
    "a child in a yellow coat",
    "an old man walking with a stick in grey trousers and a white cap",
]
PIDS = [0, 1, 0, 2]


@pytest.mark.parametrize("name", list_models())
def test_every_model_trains_encodes_ranks_and_reloads(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=3, **tiny_options(name))
    pixels = torch.randn(len(CAPTIONS), 3, *model.image_size)
    batch = {"images": pixels, "tokens": model.tokenize(CAPTIONS), "pids": torch.tensor(PIDS)}

    model.train()
    losses = model(batch)
    assert losses and all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    groups = model.parameter_groups()
    assert set(groups) == {"encoder", "new"}
    grouped = [id(p) for group in groups.values() for p in group]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable), "every trainable parameter in exactly one group"

    model.eval()
    with torch.no_grad():
        texts = model.encode_texts(model.tokenize(CAPTIONS))
        images = model.encode_images(pixels)
        scores = model.similarity(texts, images, chunk=3)
    assert isinstance(texts, TextFeatures) and isinstance(images, ImageFeatures)
    assert scores.shape == (len(CAPTIONS), len(CAPTIONS)) and torch.isfinite(scores).all()
    ranking = scores.argsort(dim=1, descending=True)
    assert sorted(ranking[0].tolist()) == list(range(len(CAPTIONS)))

    weights, config_file = tmp_path / "weights.pt", tmp_path / "config.json"
    torch.save(model.state_dict(), weights)
    config_file.write_text(json.dumps(dataclasses.asdict(model.config)))
    torch.manual_seed(123)  # other random weights, overwritten by the file
    restored = build_model_from_config(json.loads(config_file.read_text()),
                                       load_pretrained=False).eval()
    restored.load_state_dict(torch.load(weights, weights_only=True))
    with torch.no_grad():
        again = restored.similarity(restored.encode_texts(restored.tokenize(CAPTIONS)),
                                    restored.encode_images(pixels), chunk=3)
    assert torch.equal(scores, again)

    # gallery search: the first-stage vectors are unit inner-product vectors, and a model
    # that says it has no second stage is ranked exactly by them (its search is one stage)
    text_vectors, image_vectors = model.search_vectors(texts), model.search_vectors(images)
    assert text_vectors.shape[0] == len(CAPTIONS) and image_vectors.shape[0] == len(CAPTIONS)
    assert text_vectors.shape[1] == image_vectors.shape[1]
    if not model.has_second_stage(images):
        assert torch.allclose(text_vectors @ image_vectors.t(), scores, atol=1e-5)
