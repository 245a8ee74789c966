"""Fixtures for the dataset tests: tiny real dataset roots in the three source formats.

The records use exactly the key sets of the real annotation files (FACTS.md section 1), in the
real files' key order, with real image files (JPEG, and a BMP for CUHK-PEDES) on disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result

from ogor.cli import main

from .layout_copies import synth_roots  # noqa: F401 (a session fixture: tiny synth roots)


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 16, 3), dtype=np.uint8)
    ok, data = cv2.imencode(path.suffix, pixels)
    assert ok
    path.write_bytes(data.tobytes())


def cuhk_records() -> list[dict[str, Any]]:
    return [
        {"split": "train", "captions": ["A man in a red coat.", "He wears a red coat."],
         "file_path": "CUHK01/0001001.png", "processed_tokens": [["a", "man"], ["he", "wears"]],
         "id": 1},
        {"split": "train", "captions": ["A man in a red coat and jeans.", "Red coat, blue jeans."],
         "file_path": "cam_a/001_45.bmp", "processed_tokens": [["a"], ["red"]], "id": 1},
        {"split": "val", "captions": ["A woman with a bag.", "The lady holds a bag."],
         "file_path": "Market/0002_c1s1_000151_01.jpg",
         "processed_tokens": [["a", "woman"], ["the", "lady"]], "id": 2},
        {"split": "test", "captions": ["A girl in white.", "White dress, black shoes."],
         "file_path": "test_query/p3_s1.jpg", "processed_tokens": [["a"], ["white"]], "id": 3},
    ]


def icfg_records() -> list[dict[str, Any]]:
    return [
        {"split": "train", "captions": ["A man with a black backpack."],
         "file_path": "train/0000/0000_002_01_0302morning_0001_0.jpg",
         "processed_tokens": [["a", "man"]], "id": 0},
        {"split": "train", "captions": ["The man carries a black backpack."],
         "file_path": "train/0000/0000_002_01_0302morning_0002_0.jpg",
         "processed_tokens": [["the", "man"]], "id": 0},
        {"split": "test", "captions": ["A woman in a long grey coat."],
         "file_path": "test/0001/0001_010_01_0303morning_0015_1.jpg",
         "processed_tokens": [["a", "woman"]], "id": 1},
    ]


def rstp_records() -> list[dict[str, Any]]:
    return [
        {"id": 0, "img_path": "0000_c14_0007.jpg",
         "captions": ["A man in a blue shirt.", "The man wears blue."], "split": "train"},
        {"id": 1, "img_path": "0001_c3_0001.jpg",
         "captions": ["A woman in black.", "She wears black shoes."], "split": "val"},
        {"id": 2, "img_path": "0002_c5_0002.jpg",
         "captions": ["A man with a cap.", "He has a white cap."], "split": "test"},
    ]


#: format name -> (annotation file name, records factory, image path key)
SOURCES: dict[str, tuple[str, Callable[[], list[dict[str, Any]]], str]] = {
    "cuhk-pedes": ("reid_raw.json", cuhk_records, "file_path"),
    "icfg-pedes": ("ICFG-PEDES.json", icfg_records, "file_path"),
    "rstpreid": ("data_captions.json", rstp_records, "img_path"),
}


def write_root(
    root: Path,
    records: list[dict[str, Any]],
    annotation: str,
    path_key: str,
    *,
    images: bool = True,
) -> Path:
    """A dataset root with ``records`` as its annotation file and their images under imgs/."""
    root.mkdir(parents=True, exist_ok=True)
    (root / annotation).write_text(json.dumps(records, indent=1), encoding="utf-8")
    if images:
        for index, record in enumerate(records):
            path = record.get(path_key) if isinstance(record, dict) else None
            if isinstance(path, str) and path and not path.startswith("/") and ".." not in path:
                _image(root / "imgs" / path, index)
    return root


@pytest.fixture
def make_root(tmp_path: Path) -> Callable[..., Path]:
    """Build a valid root of a format, optionally with edited records: ``make_root(fmt, edit)``."""

    def build(
        format_name: str,
        edit: Callable[[list[dict[str, Any]]], None] | None = None,
        *,
        name: str | None = None,
        annotation: str | None = None,
    ) -> Path:
        default_annotation, factory, path_key = SOURCES[format_name]
        records = factory()
        if edit is not None:
            edit(records)
        return write_root(
            tmp_path / (name or format_name), records, annotation or default_annotation, path_key
        )

    return build


def run_cli(*args: str) -> Result:
    """Run ``ogor ARGS`` in-process; stdout and stderr stay apart."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)
