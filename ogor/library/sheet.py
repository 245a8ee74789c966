"""A contact sheet of a library, grouped by position set and class (like the paper's Figure 5).

Each instance is drawn scaled into a fixed-size cell over a checkerboard, so its alpha edges and
any opaque background rectangle (a bad mask) are visible at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ogor.library.oil import OcclusionInstance, OcclusionLibrary
from ogor.library.png import encode_png
from ogor.library.taxonomy import POSITION_SETS
from toreid.io import atomic_write_bytes


@dataclass(frozen=True)
class SheetLayout:
    """Where each instance cell sits on the sheet (pixels), for drawing and for tests.

    Attributes:
        width: sheet width.
        height: sheet height.
        cells: (instance, x, y) of each cell's top-left corner, one per instance.
        labels: (text, x, y, is_set_header) of each text label.
    """

    width: int
    height: int
    cells: tuple[tuple[OcclusionInstance, int, int], ...]
    labels: tuple[tuple[str, int, int, bool], ...]


#: Fixed geometry of the sheet, in pixels.
CELL = 112
PAD = 6
LABEL_WIDTH = 150
HEADER_HEIGHT = 30


def sheet_layout(library: OcclusionLibrary, columns: int = 8) -> SheetLayout:
    """Place a library's instances: one band per set, one row (wrapping) per class.

    Args:
        library: the library to show.
        columns: cells per row before a class wraps onto another row.
    """
    columns = max(1, int(columns))
    groups = library.by_class()
    widest = max((len(members) for members in groups.values()), default=1)
    cols = min(columns, widest)
    width = LABEL_WIDTH + cols * (CELL + PAD) + PAD
    cells: list[tuple[OcclusionInstance, int, int]] = []
    labels: list[tuple[str, int, int, bool]] = []
    y = 0
    for position_set in POSITION_SETS:
        names = [n for n in library.taxonomy.by_set(position_set) if n in groups]
        if not names:
            continue
        labels.append((f"{position_set} set", PAD, y + HEADER_HEIGHT - 9, True))
        y += HEADER_HEIGHT
        for name in names:
            members = groups[name]
            display = library.taxonomy.classes[name].display_name
            labels.append((f"{display} ({len(members)})", PAD, y + CELL // 2 + 5, False))
            for i, instance in enumerate(members):
                row, col = divmod(i, cols)
                cells.append(
                    (instance, LABEL_WIDTH + col * (CELL + PAD), y + PAD + row * (CELL + PAD))
                )
            rows = -(-len(members) // cols)
            y += rows * (CELL + PAD) + PAD
    return SheetLayout(width=width, height=max(y, 1), cells=tuple(cells), labels=tuple(labels))


def _checkerboard(size: int, square: int = 8) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size]
    light = ((ys // square + xs // square) % 2 == 0)[..., None]
    return np.where(light, 235, 200).astype(np.float32) * np.ones(3, dtype=np.float32)


def _fit(rgba: np.ndarray, box: int) -> np.ndarray:
    import cv2

    height, width = rgba.shape[:2]
    scale = min(box / width, box / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(rgba, size, interpolation=interpolation)


def render_sheet(library: OcclusionLibrary, columns: int = 8) -> np.ndarray:
    """Draw the contact sheet as an H x W x 3 uint8 RGB array."""
    import cv2

    layout = sheet_layout(library, columns)
    sheet = np.full((layout.height, layout.width, 3), 255, dtype=np.uint8)
    board = _checkerboard(CELL)
    for instance, x, y in layout.cells:
        rgba = _fit(library.rgba(instance), CELL - 4)
        cell = board.copy()
        h, w = rgba.shape[:2]
        top, left = (CELL - h) // 2, (CELL - w) // 2
        alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
        region = cell[top : top + h, left : left + w]
        cell[top : top + h, left : left + w] = region * (1 - alpha) + rgba[:, :, :3] * alpha
        sheet[y : y + CELL, x : x + CELL] = np.clip(cell + 0.5, 0, 255).astype(np.uint8)
        cv2.rectangle(sheet, (x - 1, y - 1), (x + CELL, y + CELL), (150, 150, 150), 1)
    for text, x, y, header in layout.labels:
        if header:
            cv2.rectangle(
                sheet, (0, y - HEADER_HEIGHT + 12), (layout.width, y + 6), (40, 60, 90), -1
            )
            colour = (255, 255, 255)
        else:
            colour = (20, 20, 20)
        cv2.putText(sheet, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return sheet


def write_sheet(library: OcclusionLibrary, out: str | Path, columns: int = 8) -> Path:
    """Render the sheet and write it as a PNG atomically; returns the path."""
    out = Path(out)
    rgb = render_sheet(library, columns)
    alpha = np.full(rgb.shape[:2] + (1,), 255, dtype=np.uint8)
    atomic_write_bytes(out, encode_png(np.concatenate([rgb, alpha], axis=2)))
    return out
