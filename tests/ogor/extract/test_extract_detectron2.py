"""The optional detectron2 backend: end to end where it is installed; the missing-package error.

detectron2 is not on the package registry (users build it from source), so the end-to-end test
is skipped where ``import detectron2`` fails; the error test runs everywhere by blocking the
import.

A randomly initialised detectron2 R50 has frozen batch norms that are identities, so its
activations grow layer after layer: the random box regressor then throws every box off the
image and nothing is detected. The checkpoint is therefore saved with the box regressor zeroed
(boxes = proposals) and the classifier biased to COCO "umbrella"; the backbone, RPN and mask
head stay random.
"""

from __future__ import annotations

import sys

import pytest

from ogor.extract.detectron2_backend import INSTALL_HINT
from ogor.extract.registry import resolve_auto
from ogor.library.oil import OcclusionLibrary

from .conftest import run_cli, save_rgb, textured_image

COCO_CONFIG = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"


def test_missing_detectron2_is_a_one_line_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "detectron2", None)  # makes `import detectron2` fail
    save_rgb(tmp_path / "photos" / "p.png", textured_image(32, 32, seed=0))
    result = run_cli(
        "extract-oil", tmp_path / "photos", "--backend", "detectron2", "--out", tmp_path / "oil"
    )
    assert result.exit_code == 2
    assert result.stderr == f"error: {INSTALL_HINT}\n"
    assert "pip install --no-build-isolation" in INSTALL_HINT and "setuptools<81" in INSTALL_HINT
    assert not (tmp_path / "oil").exists()


def test_auto_falls_back_to_torchvision_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "detectron2", None)
    save_rgb(tmp_path / "photos" / "p.png", textured_image(32, 32, seed=0))
    missing = tmp_path / "missing.pth"
    result = run_cli(
        "extract-oil", tmp_path / "photos", "--weights", missing, "--out", tmp_path / "oil"
    )
    assert result.stdout.startswith("backend: auto -> torchvision (detectron2 is not installed)")
    assert result.exit_code == 2 and str(missing) in result.stderr


def test_detectron2_random_weights_end_to_end(tmp_path):
    pytest.importorskip("detectron2", reason="detectron2 is optional and not installed here")
    import torch
    from detectron2 import model_zoo
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    assert resolve_auto("auto") == ("detectron2", "detectron2 is installed")
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file(COCO_CONFIG))
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    state = build_model(cfg).state_dict()
    state["roi_heads.box_predictor.bbox_pred.weight"].zero_()
    state["roi_heads.box_predictor.bbox_pred.bias"].zero_()
    state["roi_heads.box_predictor.cls_score.weight"].zero_()
    state["roi_heads.box_predictor.cls_score.bias"][25] = 10.0  # COCO thing class 25: umbrella
    weights = tmp_path / "d2_random.pth"
    torch.save({"model": state}, weights)

    save_rgb(tmp_path / "photos" / "p.png", textured_image(96, 128, seed=2))
    out = tmp_path / "oil"
    result = run_cli(
        "extract-oil", tmp_path / "photos", "--backend", "detectron2",
        "--config", "coco", "--weights", weights, "--out", out,
        "--min-size", "128", "--max-size", "160", "--proposals", "40", "--max-detections", "10",
        "--min-score", "0.5", "--min-area", "1", "--min-side", "1", "--border-margin", "0",
        "--min-component-share", "0", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    library = OcclusionLibrary.load(out)
    assert len(library) >= 1
    assert {inst.class_name for inst in library.instances} == {"umbrella"}
    assert {inst.detector for inst in library.instances} == {f"detectron2:{COCO_CONFIG}"}
    assert all(inst.score > 0.5 for inst in library.instances)
