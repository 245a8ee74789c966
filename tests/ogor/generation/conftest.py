"""Small hand-made libraries and datasets for the generation tests (fast: tiny images, few ids)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from ogor.datasets import Record, get_format
from ogor.library.writer import LibraryWriter
from tests.ogor.datasets.layout_copies import synth_roots  # noqa: F401 (session fixture)


def occluder_rgba(height: int, width: int, color: tuple[int, int, int], opaque: bool = False):
    """An RGBA occluder: a coloured ellipse with a soft rim, or a fully opaque rectangle."""
    rgba = np.zeros((height, width, 4), dtype=np.uint8)
    rgba[:, :, :3] = color
    if opaque:
        rgba[:, :, 3] = 255
        return rgba
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r = ((yy - (height - 1) / 2) / (height / 2)) ** 2 + ((xx - (width - 1) / 2) / (width / 2)) ** 2
    rgba[:, :, 3] = np.clip((1.0 - r) * 4.0, 0.0, 1.0) * 255
    return rgba


#: (class, height, width, colour, opaque): narrow, wide and tall instances in every set.
LIBRARY_SPEC = [
    ("umbrella", 40, 60, (200, 30, 30), False),
    ("kite", 50, 40, (30, 200, 30), False),
    ("bag", 36, 30, (30, 30, 200), False),
    ("suitcase", 50, 34, (200, 200, 30), False),
    ("car", 40, 90, (30, 200, 200), False),
    ("pedestrian", 90, 36, (200, 30, 200), False),
    ("bike", 30, 50, (250, 250, 250), True),
]


@pytest.fixture(scope="session")
def library_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("oil") / "lib"
    with LibraryWriter(root) as writer:
        for name, h, w, color, opaque in LIBRARY_SPEC:
            writer.add(name, occluder_rgba(h, w, color, opaque), detector="procedural")
    return root


def write_dataset(
    root: Path,
    *,
    fmt: str = "cuhk-pedes",
    layout: dict[str, list[int]] | None = None,
    size: tuple[int, int] = (64, 32),
    seed: int = 0,
    ext: str = ".jpg",
) -> list[Record]:
    """A dataset root with random-texture images; ``layout`` maps split -> views per id."""
    layout = layout or {"train": [3, 1, 4, 2, 2], "val": [2, 2], "test": [1, 3, 2]}
    rng = np.random.default_rng(seed)
    records: list[Record] = []
    pid = 1
    for split, views in layout.items():
        for count in views:
            for view in range(count):
                path = f"cam_{'ab'[view % 2]}/{pid:04d}_{view}{ext}"
                image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
                image = cv2.GaussianBlur(image, (5, 5), 0)
                target = root / "imgs" / path
                target.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(target), image)
                records.append(
                    Record(path, pid, split, (f"a person {pid} seen from view {view}.",))
                )
            pid += 1
    get_format(fmt).write(records, root)
    return records


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    write_dataset(root)
    return root


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (hidden files included)."""
    out = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out
