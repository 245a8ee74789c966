"""``ogor preview``: a contact sheet of source | occluded pairs labelled with class and delta.

The paper's Figure 2 shows exactly this; a glance at it catches most mistakes a test cannot
(wrong colour order, dark fringes, occluders in the wrong band).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ogor.errors import GenerationError
from ogor.generation.manifest import read_manifest
from ogor.generation.verify import sample_evenly
from ogor.imageio import read_image
from toreid.io import atomic_write_bytes

CELL_HW = (192, 96)
LABEL_H = 18
GAP = 6


def _fit(image: np.ndarray, cell_hw: tuple[int, int]) -> np.ndarray:
    """Scale into the cell keeping the aspect ratio, centred on grey."""
    height, width = cell_hw
    scale = min(height / image.shape[0], width / image.shape[1])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    cell = np.full((height, width, 3), 128, dtype=np.uint8)
    y, x = (height - size[1]) // 2, (width - size[0]) // 2
    cell[y : y + size[1], x : x + size[0]] = resized
    return cell


def make_preview(
    root: str | Path,
    out: str | Path,
    *,
    n: int = 24,
    source: str | Path | None = None,
    columns: int = 4,
) -> Path:
    """Write a PNG grid of ``n`` occluded images (spread over the dataset) beside their sources.

    Args:
        root: a dataset made by ``ogor generate``.
        out: the PNG to write (outside ``root``: the dataset must stay as verified).
        n: number of pairs.
        source: the source dataset root (default: the one recorded in the manifest; in
            ``--mode add`` the originals are inside ``root`` and no source is needed).
        columns: pairs per row.

    Raises:
        GenerationError: no occluded image, a missing image, or ``out`` inside ``root``.
    """
    root, out = Path(root), Path(out)
    if out.resolve().is_relative_to(root.resolve()):
        raise GenerationError(f"{out}: inside the dataset {root}; write the preview elsewhere")
    manifest = read_manifest(root)
    occluded = [item for item in manifest["images"] if item["occluded"]]
    if not occluded:
        raise GenerationError(f"{root}: the dataset has no occluded image to preview")
    image_dir = manifest["source"]["image_dir"]
    source_root = Path(source) if source is not None else Path(manifest["source"]["root"])
    pairs = sample_evenly(occluded, n)
    cell_h, cell_w = CELL_HW
    pair_w = 2 * cell_w + GAP
    rows = (len(pairs) + columns - 1) // columns
    cols = min(columns, len(pairs))
    sheet = np.full(
        (rows * (cell_h + LABEL_H + GAP) + GAP, cols * (pair_w + 2 * GAP) + GAP, 3),
        255,
        dtype=np.uint8,
    )
    for k, item in enumerate(pairs):
        if item["path"] != item["source_path"]:  # --mode add: the original is in the dataset
            clean_file = root / image_dir / item["source_path"]
        else:
            clean_file = source_root / image_dir / item["source_path"]
        clean = _fit(read_image(clean_file), CELL_HW)
        occluded_image = _fit(read_image(root / image_dir / item["path"]), CELL_HW)
        y = GAP + (k // columns) * (cell_h + LABEL_H + GAP)
        x = GAP + (k % columns) * (pair_w + 2 * GAP)
        sheet[y : y + cell_h, x : x + cell_w] = clean
        sheet[y : y + cell_h, x + cell_w + GAP : x + pair_w] = occluded_image
        placement = item["placement"]
        label = f"{placement['class']} d={placement['delta']:.2f}"
        cv2.putText(
            sheet, label, (x, y + cell_h + LABEL_H - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
            (0, 0, 0), 1, cv2.LINE_AA,
        )
    ok, data = cv2.imencode(".png", sheet)
    if not ok:
        raise GenerationError(f"{out}: cannot encode the preview")
    atomic_write_bytes(out, data.tobytes())
    return out
