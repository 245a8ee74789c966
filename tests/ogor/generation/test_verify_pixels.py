"""ogor verify on another machine's build: "same pixels, different encoder bytes" vs "different
pixels", and which one fails (bytes are strict by default, ``--pixels`` fails only on pixels).

Another encoder build is stood in for by another encoder setting: the occluded PNGs are written
again at PNG compression level 0 (stored, not deflated), which keeps every pixel and changes every
byte, exactly what a different libpng / zlib build does to a lossless image.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from ogor.cli import main
from ogor.errors import GenerationError
from ogor.generation.generate import generate_dataset
from ogor.generation.manifest import read_manifest
from ogor.generation.verify import verify_dataset

from .conftest import write_dataset


@pytest.fixture
def png_source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    write_dataset(root, ext=".png")
    return root


@pytest.fixture
def generated(png_source: Path, tmp_path: Path, library_root: Path) -> Path:
    out = tmp_path / "out"
    generate_dataset(png_source, out, oil=library_root, ratio=0.5, seed=2)
    return out


def _occluded(out: Path) -> list[Path]:
    return [out / "imgs" / i["path"] for i in read_manifest(out)["images"] if i["occluded"]]


def _rewrite(path: Path, image: np.ndarray, level: int) -> None:
    """Write ``image`` as PNG at ``level``; unlink first so that a hard link is never followed."""
    ok, buffer = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, level])
    assert ok
    path.unlink()
    path.write_bytes(buffer.tobytes())


def _verify(*args: str):
    return CliRunner().invoke(main, ["verify", *args])


def test_reencoded_images_are_same_pixels_different_bytes(
    generated: Path, png_source: Path
) -> None:
    files = _occluded(generated)
    assert len(files) >= 2
    for file in files:
        before = file.read_bytes()
        _rewrite(file, cv2.imread(str(file), cv2.IMREAD_UNCHANGED), level=0)
        assert file.read_bytes() != before  # the bytes did change ...

    # ... so the default (bytes are strict) fails, naming the cause and both library versions.
    result = _verify(str(generated), "--source", str(png_source))
    assert result.exit_code == 2, result.output
    assert "same pixels, different encoder bytes" in result.output
    assert f"{len(files)} images in all" in result.output
    assert f"OpenCV {cv2.__version__} here, {cv2.__version__} in the manifest" in result.output
    assert "--pixels" in result.output

    # --pixels accepts them and says so.
    result = _verify(str(generated), "--source", str(png_source), "--pixels")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ")
    assert f"note: {len(files)} images have the manifest's pixels" in result.output
    report = verify_dataset(generated, source=png_source, pixels=True)
    assert len(report.encoder_differences) == len(files) and "OpenCV" in report.versions

    # Without the source nothing can be rebuilt: bytes differ, and it says how to tell more.
    result = _verify(str(generated))
    assert result.exit_code == 2 and "pass --source" in result.output


def test_a_changed_image_is_different_pixels_even_with_pixels(
    generated: Path, png_source: Path
) -> None:
    first, second = _occluded(generated)[:2]
    _rewrite(second, cv2.imread(str(second), cv2.IMREAD_UNCHANGED), level=0)  # bytes only
    image = cv2.imread(str(first), cv2.IMREAD_UNCHANGED)
    image[3, 4, 1] = (int(image[3, 4, 1]) + 40) % 256  # one channel of one pixel, by 40 (mod 256)
    expected = abs(int(image[3, 4, 1]) - int(cv2.imread(str(first))[3, 4, 1]))
    _rewrite(first, image, level=3)
    for extra in ([], ["--pixels"]):
        result = _verify(str(generated), "--source", str(png_source), *extra)
        assert result.exit_code == 2, result.output
        assert f"{first}: different pixels" in result.output
        assert f"largest pixel difference {expected}" in result.output
    with pytest.raises(GenerationError, match="different pixels"):
        verify_dataset(generated, source=png_source, pixels=True)


def test_pixels_needs_the_source(generated: Path) -> None:
    result = _verify(str(generated), "--pixels")
    assert result.exit_code == 2 and "--pixels needs --source" in result.output
