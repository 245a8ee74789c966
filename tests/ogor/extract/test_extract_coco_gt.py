"""``ogor extract-oil --backend coco-gt``: exact cutouts from ground-truth polygons and RLE."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from ogor.errors import DatasetError
from ogor.extract import (
    CutoutFilter,
    ExtractionError,
    build_backend,
    coco_images,
    extract_library,
    state_folder,
)
from ogor.extract.cutout import mask_box
from ogor.library.oil import OcclusionLibrary

from .conftest import run_cli, save_rgb

PERMISSIVE = ("--min-area", "20", "--min-side", "4")


def polygon_mask(polygon: list[float], height: int, width: int) -> np.ndarray:
    rles = mask_utils.frPyObjects([polygon], height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def test_coco_gt_cuts_polygon_and_rle_exactly_and_rejects_truncated(coco_scene, tmp_path):
    out = tmp_path / "oil"
    result = run_cli(
        "extract-oil",
        coco_scene["coco_file"],
        "--images",
        coco_scene["images"],
        "--backend",
        "coco-gt",
        "--out",
        out,
        *PERMISSIVE,
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    library = OcclusionLibrary.load(out)
    assert [inst.class_name for inst in library.instances] == ["umbrella", "fire_hydrant"]
    assert "truncated 1" in result.stdout
    assert "classes with none:" in result.stdout and "car" in result.stdout.split("none:")[1]

    h, w, rgb = coco_scene["height"], coco_scene["width"], coco_scene["rgb"]
    polygon = coco_scene["coco"]["annotations"][0]["segmentation"][0]
    expected_masks = {
        "umbrella": polygon_mask(polygon, h, w),
        "fire_hydrant": coco_scene["disk"],
    }
    for inst in library.instances:
        mask = expected_masks[inst.class_name]
        x, y, bw, bh = mask_box(mask)
        assert inst.source == {"image": "street/a.png", "box": [x, y, bw, bh]}
        assert inst.detector == "coco-gt" and inst.score is None
        rgba = library.rgba(inst)
        crop = mask[y : y + bh, x : x + bw]
        assert rgba.shape == (bh, bw, 4)
        np.testing.assert_array_equal(rgba[..., 3], np.where(crop, 255, 0))
        source = rgb[y : y + bh, x : x + bw]
        np.testing.assert_array_equal(rgba[..., :3][crop], source[crop])
        assert not rgba[..., :3][~crop].any()  # no background colour hidden under alpha 0
        assert inst.mask_area == int(mask.sum())
    # The work folder is gone after success; nothing was written next to the images.
    assert not state_folder(out).exists()
    assert sorted(p.name for p in coco_scene["images"].rglob("*")) == ["a.png", "street"]


def test_folder_input_with_coco_option_and_feather_stays_inside_mask(coco_scene, tmp_path):
    out = tmp_path / "oil"
    result = run_cli(
        "extract-oil",
        coco_scene["images"],
        "--coco",
        coco_scene["coco_file"],
        "--backend",
        "coco-gt",
        "--out",
        out,
        "--feather",
        "1.5",
        *PERMISSIVE,
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    library = OcclusionLibrary.load(out)
    disk = coco_scene["disk"]
    x, y, bw, bh = mask_box(disk)
    inst = library.by_class()["fire_hydrant"][0]
    alpha = library.rgba(inst)[..., 3]
    crop = disk[y : y + bh, x : x + bw]
    assert not alpha[~crop].any()  # feathering never grows outside the mask
    assert alpha[crop].min() < 255 and alpha[crop].max() == 255  # edge softened, core opaque


def test_rerun_resumes_from_state_and_reselects_with_another_cap(coco_scene, tmp_path):
    """A rerun skips images with a record; ``--keep-state`` lets the cap change cheaply."""
    backend = build_backend("coco-gt", coco=coco_scene["coco_file"], images=coco_scene["images"])
    refs = coco_images(coco_scene["coco_file"], coco_scene["images"])
    rules = CutoutFilter(min_area=20, min_side=4)
    out = tmp_path / "oil"
    first = extract_library(refs, out, backend, rules=rules, keep_state=True, progress=False)
    assert (first.processed, first.resumed, first.total) == (1, 0, 2)
    records = list((state_folder(out) / "records").glob("*.json"))
    assert len(records) == 1

    # Prove the second run reads the record instead of decoding the image: break the image.
    (coco_scene["images"] / "street" / "a.png").write_bytes(b"not an image")
    second = extract_library(
        refs, out, backend, rules=rules, per_class=1, overwrite=True, progress=False
    )
    assert (second.processed, second.resumed, second.total) == (0, 1, 2)
    assert not state_folder(out).exists()


def test_changed_filter_refuses_stale_state_without_overwrite(coco_scene, tmp_path):
    backend = build_backend("coco-gt", coco=coco_scene["coco_file"], images=coco_scene["images"])
    refs = coco_images(coco_scene["coco_file"], coco_scene["images"])
    out = tmp_path / "oil"
    rules = CutoutFilter(min_area=20, min_side=4)
    extract_library(refs, out, backend, rules=rules, keep_state=True, progress=False)
    shutil.rmtree(out)  # as after an interrupted run: state left, no library yet
    stricter = CutoutFilter(min_area=300, min_side=4)
    # The state belongs to "oil", not "oil2": a new output has its own state folder.
    fresh = extract_library(refs, tmp_path / "oil2", backend, rules=stricter, progress=False)
    assert fresh.processed == 1
    assert (fresh.per_class["umbrella"], fresh.per_class["fire_hydrant"]) == (1, 0)
    with pytest.raises(ExtractionError, match="other settings.*min_area"):
        extract_library(refs, out, backend, rules=stricter, overwrite=False, progress=False)
    redone = extract_library(refs, out, backend, rules=stricter, overwrite=True, progress=False)
    assert redone.processed == 1


def test_corrupt_image_fails_with_one_line_unless_skipped(coco_scene, tmp_path):
    save_rgb(coco_scene["images"] / "b.png", np.zeros((60, 80, 3), np.uint8))
    (coco_scene["images"] / "b.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    coco = dict(coco_scene["coco"])
    coco["images"] = [*coco["images"], {"id": 8, "file_name": "b.png", "height": 60, "width": 80}]
    coco_scene["coco_file"].write_text(json.dumps(coco))
    out = tmp_path / "oil"
    args = ["extract-oil", coco_scene["coco_file"], "--backend", "coco-gt", "--out", out]
    args += ["--images", coco_scene["images"], *PERMISSIVE, "--no-progress"]

    failed = run_cli(*args)
    assert failed.exit_code == 2
    assert failed.stderr.count("\n") == 1
    assert "b.png" in failed.stderr and "cannot decode image" in failed.stderr
    assert not out.exists()  # nothing that looks like a library

    skipped = run_cli(*args, "--skip-bad-images")
    assert skipped.exit_code == 0, skipped.output
    assert "1 unreadable skipped" in skipped.stdout
    assert len(OcclusionLibrary.load(out)) == 2


def test_malformed_coco_file_names_the_field(coco_scene, tmp_path):
    coco = dict(coco_scene["coco"])
    coco["annotations"] = [{**coco["annotations"][0], "category_id": 99}]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(coco))
    with pytest.raises(DatasetError, match=r"bad\.json.*annotations\.category_id"):
        build_backend("coco-gt", coco=bad, images=coco_scene["images"])
    bad.write_text('{\n  "images": [\n')
    result = run_cli("extract-oil", bad, "--backend", "coco-gt", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "bad.json" in result.stderr and "line" in result.stderr


def test_existing_library_is_not_replaced_without_overwrite(coco_scene, tmp_path):
    out = tmp_path / "oil"
    args = ["extract-oil", coco_scene["coco_file"], "--backend", "coco-gt", "--out", out]
    args += ["--images", coco_scene["images"], *PERMISSIVE, "--no-progress"]
    assert run_cli(*args).exit_code == 0
    before = (out / "index.json").read_bytes()
    again = run_cli(*args)
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    assert (out / "index.json").read_bytes() == before
    assert run_cli(*args, "--overwrite").exit_code == 0


def test_output_inside_input_folder_is_refused(coco_scene):
    out: Path = coco_scene["images"] / "oil"
    result = run_cli(
        "extract-oil",
        coco_scene["coco_file"],
        "--images",
        coco_scene["images"],
        "--backend",
        "coco-gt",
        "--out",
        out,
    )
    assert result.exit_code == 2 and "inside --images" in result.stderr
    assert not out.exists()


def test_nothing_accepted_writes_nothing_and_says_so(coco_scene, tmp_path):
    out = tmp_path / "oil"
    result = run_cli(
        "extract-oil", coco_scene["coco_file"], "--images", coco_scene["images"],
        "--backend", "coco-gt", "--out", out, "--min-area", "100000", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "small 3" in result.stdout and "total: 0 instances" in result.stdout
    assert result.stderr.strip().endswith("no instance passed the filters; nothing written")
    assert not out.exists()
    assert state_folder(out).is_dir()  # detections are kept for a rerun with other options
