"""oil-sheet: one cell per instance, grouped by set and class."""

from __future__ import annotations

import cv2
import numpy as np
from click.testing import CliRunner

from ogor.cli import main
from ogor.library.oil import OcclusionLibrary, default_library_path
from ogor.library.sheet import CELL, HEADER_HEIGHT, LABEL_WIDTH, PAD, sheet_layout
from ogor.library.writer import LibraryWriter


def _library(root):
    square = np.zeros((30, 30, 4), np.uint8)
    square[5:25, 5:25] = (20, 20, 220, 255)
    with LibraryWriter(root) as writer:
        writer.add("car", square, detector="import")
        writer.add("umbrella", square, detector="import")
        writer.add("umbrella", square, detector="import")
        writer.add("car", square, detector="import")
        writer.add("car", square, detector="import")
    return OcclusionLibrary.load(root)


def test_sheet_has_one_cell_per_instance_grouped_by_set(tmp_path):
    lib = _library(tmp_path / "lib")
    layout = sheet_layout(lib, columns=8)
    assert len(layout.cells) == 5
    assert [inst.class_name for inst, _, _ in layout.cells] == ["umbrella"] * 2 + ["car"] * 3
    assert layout.width == LABEL_WIDTH + 3 * (CELL + PAD) + PAD  # widest class: 3 cars
    assert layout.height == 2 * HEADER_HEIGHT + 2 * (CELL + 2 * PAD)  # up band, bottom band
    assert [text for text, *_ in layout.labels if _[-1]] == ["up set", "bottom set"]
    wrapped = sheet_layout(lib, columns=2)
    assert wrapped.height == layout.height + CELL + PAD  # the cars wrap onto a second row
    corners = {(x, y) for _, x, y in wrapped.cells}
    assert len(corners) == 5

    out = tmp_path / "sheet.png"
    result = CliRunner().invoke(main, ["oil-sheet", str(lib.root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    sheet = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert sheet.shape[:2] == (layout.height, layout.width)
    for _, x, y in layout.cells:  # every cell shows the blue square at its centre
        b, g, r = sheet[y + CELL // 2, x + CELL // 2]
        assert b > 150 and r < 80  # RGB order kept all the way to the file


def test_sheet_of_default_library(tmp_path):
    out = tmp_path / "default.png"
    result = CliRunner().invoke(main, ["oil-sheet", "default", "--out", str(out), "--columns", "4"])
    assert result.exit_code == 0, result.output
    lib = OcclusionLibrary.load(default_library_path(), verify=False)
    layout = sheet_layout(lib, columns=4)
    assert cv2.imread(str(out)).shape[:2] == (layout.height, layout.width)
    assert len(layout.cells) == len(lib) == 60
