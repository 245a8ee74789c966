"""Shared builders for the extract-oil tests: test images, COCO files, the CLI runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from ogor.cli import main


def run_cli(*args: str | Path) -> Result:
    """Run ``ogor`` in-process; stdout and stderr are kept apart (click >= 8.2)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def save_rgb(path: Path, rgb: np.ndarray) -> Path:
    """Write a lossless PNG so pixel comparisons are exact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def textured_image(height: int, width: int, seed: int) -> np.ndarray:
    """A random RGB image: every pixel different enough to catch misplaced crops."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def coco_scene(tmp_path: Path) -> dict:
    """An image with three annotated instances and the COCO file describing them.

    - a polygon "umbrella" well inside the image,
    - an RLE "fire hydrant" (a disk), also inside,
    - a polygon "car" touching the left border (truncated: must be rejected).
    """
    from pycocotools import mask as mask_utils

    height, width = 60, 80
    images = tmp_path / "images"
    rgb = textured_image(height, width, seed=1)
    save_rgb(images / "street" / "a.png", rgb)

    yy, xx = np.mgrid[:height, :width]
    disk = (yy - 38) ** 2 + (xx - 58) ** 2 <= 9**2
    rle = mask_utils.encode(np.asfortranarray(disk.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")

    coco = {
        "images": [{"id": 7, "file_name": "street/a.png", "height": height, "width": width}],
        "categories": [
            {"id": 1, "name": "umbrella"},
            {"id": 2, "name": "fire hydrant"},
            {"id": 3, "name": "car"},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": [[10, 8, 34, 8, 34, 30, 22, 38, 10, 30]],
            },
            {"id": 2, "image_id": 7, "category_id": 2, "iscrowd": 0, "segmentation": rle},
            {
                "id": 3,
                "image_id": 7,
                "category_id": 3,
                "iscrowd": 0,
                "segmentation": [[0, 40, 20, 40, 20, 55, 0, 55]],
            },
        ],
    }
    coco_file = tmp_path / "instances.json"
    coco_file.write_text(json.dumps(coco))
    return {
        "rgb": rgb,
        "images": images,
        "coco_file": coco_file,
        "coco": coco,
        "disk": disk,
        "height": height,
        "width": width,
    }
