"""CLIP's image tower alone: the same image features as the whole CLIP, from the same file."""

from __future__ import annotations

from pathlib import Path

import torch

from models.encoders.clip import Backbone
from models.encoders.clip_image import CLIPImageEncoder


def test_image_tower_alone_loads_a_whole_clip_file_and_gives_its_features(tmp_path: Path) -> None:
    torch.manual_seed(0)
    whole = Backbone("tiny").eval()
    weights = tmp_path / "clip.pt"
    torch.save(whole.clip.state_dict(), weights)
    torch.manual_seed(1)  # other random weights: the file must decide
    image_only = CLIPImageEncoder("tiny", pretrained=str(weights)).eval()
    # no text tower (nor CLIP's temperature) left: every parameter is the image tower's
    names = [name for name, _ in image_only.named_parameters()]
    assert names and all(n.startswith("backbone.clip.visual.") for n in names)
    pixels = torch.randn(2, 3, *image_only.image_size)
    with torch.no_grad():
        expected, got = whole.encode_images(pixels), image_only(pixels)
    assert torch.equal(expected.pooled, got.pooled) and torch.equal(expected.tokens, got.tokens)
    assert torch.equal(expected.attention, got.attention)
    assert image_only.feature_dim == 64
