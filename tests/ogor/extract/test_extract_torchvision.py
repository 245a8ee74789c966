"""The torchvision backend end to end on CPU with a random-weight checkpoint file.

A randomly initialised Mask R-CNN detects "wine glass" everywhere (its classifier bias happens
to favour one class), which no occluder class maps to. The checkpoint is therefore saved with
the classifier bias of COCO "umbrella" raised: still random weights read from a real file, but
every random box now comes out as an umbrella, so the whole path (model, masks, label map,
filters, cutouts, library) runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

from ogor.extract import build_backend
from ogor.extract.base import ExtractionError
from ogor.extract.torchvision_backend import coco_categories
from ogor.library.oil import OcclusionLibrary

from .conftest import run_cli, save_rgb, textured_image

FAST = ("--min-size", "128", "--max-size", "160", "--proposals", "40", "--max-detections", "10")


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=91)
    state = model.state_dict()
    umbrella = coco_categories().index("umbrella")
    state["roi_heads.box_predictor.cls_score.bias"][umbrella] += 20.0
    path = tmp_path_factory.mktemp("weights") / "maskrcnn_random.pth"
    torch.save(state, path)
    return path


def test_random_weights_produce_a_loadable_library(random_checkpoint, tmp_path):
    photos = tmp_path / "photos"
    save_rgb(photos / "p1.png", textured_image(96, 128, seed=3))
    save_rgb(photos / "sub" / "p2.jpg", textured_image(100, 120, seed=4))
    out = tmp_path / "oil"
    result = run_cli(
        "extract-oil",
        photos,
        "--backend",
        "torchvision",
        "--weights",
        random_checkpoint,
        "--out",
        out,
        "--min-score",
        "0",
        "--min-area",
        "1",
        "--min-side",
        "1",
        "--border-margin",
        "0",
        "--min-component-share",
        "0",
        "--per-class",
        "3",
        *FAST,
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert "2 processed" in result.stdout
    library = OcclusionLibrary.load(out)
    assert len(library) == 3  # capped at --per-class
    assert {inst.class_name for inst in library.instances} == {"umbrella"}
    for inst in library.instances:
        assert inst.detector == "torchvision:maskrcnn_resnet50_fpn_v2"
        assert 0.0 <= inst.score <= 1.0
        assert inst.source["image"] in {"p1.png", "sub/p2.jpg"}
        rgba = library.rgba(inst)
        assert rgba.shape == (inst.height, inst.width, 4) and rgba[..., 3].any()
    scores = [inst.score for inst in library.instances]
    assert "classes with none: kite, bag" in result.stdout
    assert all(s is not None for s in scores)


def test_missing_weights_file_is_one_line(tmp_path):
    save_rgb(tmp_path / "photos" / "p.png", textured_image(32, 32, seed=0))
    missing = tmp_path / "nope.pth"
    result = run_cli(
        "extract-oil", tmp_path / "photos", "--backend", "torchvision",
        "--weights", missing, "--out", tmp_path / "oil",
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == f"error: {missing}: weights file not found (--weights)\n"


def test_wrong_weights_file_names_the_file(tmp_path):
    bogus = tmp_path / "bogus.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bogus)
    with pytest.raises(ExtractionError, match=r"bogus\.pth: not maskrcnn_resnet50_fpn_v2"):
        build_backend("torchvision", weights=bogus)
    bogus.write_bytes(b"garbage")
    with pytest.raises(ExtractionError, match=r"bogus\.pth: cannot read weights"):
        build_backend("torchvision", weights=bogus)


def test_offline_without_weights_says_where_to_put_them(tmp_path, monkeypatch):
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(
        type(MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1), "get_state_dict", no_network
    )
    with pytest.raises(ExtractionError) as info:
        build_backend("torchvision")
    message = str(info.value)
    expected = tmp_path / "hub" / "checkpoints" / "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth"
    assert str(expected) in message and "--weights" in message and "\n" not in message


def test_cuda_without_cuda_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a CPU-only machine
    save_rgb(tmp_path / "photos" / "p.png", textured_image(32, 32, seed=0))
    result = run_cli(
        "extract-oil", tmp_path / "photos", "--backend", "torchvision",
        "--device", "cuda", "--out", tmp_path / "oil",
    )  # fmt: skip
    assert result.exit_code == 2 and "CUDA is not available" in result.stderr


def test_predict_returns_masks_in_coco_labels(random_checkpoint):
    backend = build_backend(
        "torchvision",
        weights=random_checkpoint,
        min_score=0.0,
        min_size=128,
        max_size=160,
        proposals=40,
        max_detections=10,
    )
    image = textured_image(64, 96, seed=5)
    found = backend.predict(image)
    assert found.masks.shape[1:] == (64, 96) and found.masks.dtype == np.bool_
    assert len(found) > 0 and set(found.labels) <= set(coco_categories())
    assert np.all(np.diff(found.scores) <= 0)  # torchvision sorts by score
