"""OcclusionLibrary / LibraryWriter: round trip, fingerprint, sampling and every refusal."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ogor.errors import LibraryError
from ogor.library.oil import INDEX_NAME, OcclusionLibrary, library_fingerprint
from ogor.library.png import decode_rgba, encode_png
from ogor.library.writer import LibraryWriter


def blob(height: int, width: int, colour=(200, 40, 30), seed: int = 0) -> np.ndarray:
    """An RGBA ellipse with a soft edge on a transparent background."""
    rng = np.random.default_rng(seed)
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., :3] = np.asarray(colour, np.uint8)
    rgba[..., :3] = np.clip(rgba[..., :3] + rng.integers(0, 20, (height, width, 3)), 0, 255)
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(
        mask, (width // 2, height // 2), (width // 2 - 1, height // 2 - 1), 0, 0, 360, 255, -1
    )
    rgba[..., 3] = cv2.GaussianBlur(mask, (5, 5), 0)
    return rgba


def make_library(root: Path) -> Path:
    with LibraryWriter(root) as writer:
        writer.add("umbrella", blob(20, 40), detector="procedural")
        writer.add("kite", blob(30, 20, (40, 200, 60)), detector="procedural")
        writer.add("bag", blob(25, 25), detector="coco-gt", score=None,
                   source={"image": "coco/1.jpg", "box": [1, 2, 25, 25]})  # fmt: skip
        writer.add("fire hydrant", blob(40, 22), detector="torchvision:x", score=0.9)
        writer.add("car", blob(20, 50), detector="import")
        writer.add("car", blob(22, 48, seed=1), detector="import")
    return root


def test_round_trip_fields_and_rgba_channel_order(tmp_path):
    root = make_library(tmp_path / "lib")
    lib = OcclusionLibrary.load(root)
    assert [i.id for i in lib.instances] == [
        "umbrella-001", "kite-001", "bag-001", "fire_hydrant-001", "car-001", "car-002",
    ]  # fmt: skip
    hydrant = lib.get("fire_hydrant-001")
    assert (hydrant.class_name, hydrant.position_set, hydrant.score) == (
        "fire_hydrant",
        "bottom",
        0.9,
    )
    assert (hydrant.width, hydrant.height) == (22, 40)
    bag = lib.get("bag-001")
    assert bag.position_set == "middle" and bag.source == {
        "image": "coco/1.jpg",
        "box": [1, 2, 25, 25],
    }
    rgba = lib.rgba(lib.get("kite-001"))
    assert rgba.shape == (30, 20, 4) and rgba.dtype == np.uint8
    opaque = rgba[..., 3] == 255
    assert rgba[opaque][:, 1].mean() > 150 > rgba[opaque][:, 0].mean()  # green stays in channel G
    assert lib.rgba(lib.get("kite-001")) is rgba  # cached
    assert hydrant.mask_area == int(np.count_nonzero(lib.rgba(hydrant)[..., 3]))
    assert hydrant.sha256 == hashlib.sha256((root / hydrant.file).read_bytes()).hexdigest()
    assert list(lib.by_class()) == ["umbrella", "kite", "bag", "car", "fire_hydrant"]


def test_fingerprint_is_content_only(tmp_path):
    root = make_library(tmp_path / "lib")
    lib = OcclusionLibrary.load(root)
    pairs = sorted((i.id, i.sha256) for i in lib.instances)
    text = "ogor-oil-fingerprint v1\ntaxonomy 1\n" + "".join(f"{a} {b}\n" for a, b in pairs)
    assert lib.fingerprint == hashlib.sha256(text.encode()).hexdigest()
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(root, copy)
    assert OcclusionLibrary.load(copy).fingerprint == lib.fingerprint
    assert library_fingerprint(pairs, 2) != lib.fingerprint
    other = make_library(tmp_path / "other")
    index = json.loads((other / INDEX_NAME).read_text())
    index["instances"].pop()
    (other / INDEX_NAME).write_text(json.dumps(index))
    assert OcclusionLibrary.load(other).fingerprint != lib.fingerprint


def test_sample_is_deterministic_uniform_and_filtered(tmp_path):
    lib = OcclusionLibrary.load(make_library(tmp_path / "lib"))
    draws = [lib.sample(np.random.default_rng(7)).id for _ in range(3)]
    assert len(set(draws)) == 1
    rng = np.random.default_rng(0)
    bottom = [lib.sample(rng, position_set="bottom").id for _ in range(600)]
    assert set(bottom) == {"fire_hydrant-001", "car-001", "car-002"}
    counts = {k: bottom.count(k) for k in set(bottom)}
    assert min(counts.values()) > 150  # about 200 each
    assert {lib.sample(rng, class_name="firehydrant").id for _ in range(5)} == {"fire_hydrant-001"}
    assert lib.sample(rng, position_set="up", class_name="kite").id == "kite-001"
    with pytest.raises(LibraryError, match="no instance matches"):
        lib.sample(rng, class_name="bench")


def test_png_encoder_is_plain_and_lossless():
    rgba = np.random.default_rng(3).integers(0, 256, (17, 29, 4), dtype=np.uint8)
    data = encode_png(rgba)
    assert data == encode_png(rgba.copy())
    assert b"tIME" not in data and b"tEXt" not in data
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), rgba)
    assert np.array_equal(decode_rgba(data, "x.png"), rgba)


def test_grey_alpha_and_palette_pngs_are_accepted():
    la = Image.fromarray(
        np.stack([np.full((6, 5), 90, np.uint8), np.full((6, 5), 255, np.uint8)], -1), "LA"
    )
    buffer = io.BytesIO()
    la.save(buffer, "PNG")
    rgba = decode_rgba(buffer.getvalue(), "la.png")
    assert rgba.shape == (6, 5, 4) and (rgba[..., 0] == 90).all() and (rgba[..., 3] == 255).all()
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.putpixel((0, 0), 0)
    buffer = io.BytesIO()
    palette.save(buffer, "PNG", transparency=0)
    rgba = decode_rgba(buffer.getvalue(), "p.png")
    assert rgba[0, 0, 3] == 0 and rgba[1, 1, 3] == 255 and rgba[1, 1, 0] == 255


def _edit_index(root: Path, change) -> None:
    index = json.loads((root / INDEX_NAME).read_text())
    change(index)
    (root / INDEX_NAME).write_text(json.dumps(index))


def _rgb_png(path: Path) -> None:
    ok, data = cv2.imencode(".png", np.full((20, 40, 3), 128, np.uint8))
    path.write_bytes(data.tobytes())


def _first(index: dict) -> dict:
    return index["instances"][0]


BROKEN = {
    "missing index": (lambda root: (root / INDEX_NAME).unlink(), "index.json: missing"),
    "malformed json": (
        lambda root: (root / INDEX_NAME).write_text('{"format": "ogor-oil",\n  oops}'),
        "malformed JSON at line 2",
    ),
    "schema": (
        lambda root: _edit_index(root, lambda ix: _first(ix).pop("sha256")),
        "field 'instances/0'",
    ),
    "unknown class": (
        lambda root: _edit_index(root, lambda ix: _first(ix).update({"class": "giraffe"})),
        "field 'class': unknown class 'giraffe'",
    ),
    "set mismatch": (
        lambda root: _edit_index(root, lambda ix: _first(ix).update({"set": "bottom"})),
        "field 'set'",
    ),
    "missing png": (lambda root: (root / "kite-001.png").unlink(), "missing PNG"),
    "sha mismatch": (
        lambda root: (root / "umbrella-001.png").write_bytes(encode_png(blob(20, 40, seed=9))),
        "field 'sha256'",
    ),
    "duplicate id": (
        lambda root: _edit_index(
            root, lambda ix: ix["instances"][1].update({"id": "umbrella-001"})
        ),
        "duplicate id",
    ),
    "escape": (
        lambda root: _edit_index(root, lambda ix: _first(ix).update({"file": "../outside.png"})),
        "escapes the library root",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_library_is_refused_with_one_line(tmp_path, case):
    root = make_library(tmp_path / "lib")
    (tmp_path / "outside.png").write_bytes((root / "umbrella-001.png").read_bytes())
    breaker, expected = BROKEN[case]
    breaker(root)
    with pytest.raises(LibraryError) as info:
        OcclusionLibrary.load(root)
    message = str(info.value)
    assert expected in message and "\n" not in message


def _replace_png(root: Path, data: bytes) -> None:
    (root / "umbrella-001.png").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    _edit_index(root, lambda ix: _first(ix).update({"sha256": digest}))


def test_png_without_alpha_or_with_empty_alpha_is_refused(tmp_path):
    root = make_library(tmp_path / "a")
    ok, data = cv2.imencode(".png", np.full((20, 40, 3), 128, np.uint8))
    _replace_png(root, data.tobytes())
    with pytest.raises(LibraryError, match="no alpha channel"):
        OcclusionLibrary.load(root)
    assert len(OcclusionLibrary.load(root, verify=False)) == 6  # only structure checked
    root = make_library(tmp_path / "b")
    _replace_png(root, encode_png(np.zeros((20, 40, 4), np.uint8)))
    with pytest.raises(LibraryError, match="all zero"):
        OcclusionLibrary.load(root)


def test_writer_leaves_nothing_on_failure_and_refuses_existing(tmp_path):
    out = tmp_path / "lib"
    with pytest.raises(RuntimeError):
        with LibraryWriter(out) as writer:
            writer.add("car", blob(10, 10), detector="import")
            raise RuntimeError("crash in the middle")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(LibraryError, match="mask is empty"):
        with LibraryWriter(out) as writer:
            writer.add("car", np.zeros((5, 5, 4), np.uint8), detector="import")
    with pytest.raises(LibraryError, match="unknown occluder class"):
        with LibraryWriter(out) as writer:
            writer.add("giraffe", blob(10, 10), detector="import")
    with pytest.raises(LibraryError, match="no occluder instances"):
        LibraryWriter(out).close()
    assert list(tmp_path.iterdir()) == []
    make_library(out)
    with pytest.raises(LibraryError, match="already exists"):
        LibraryWriter(out)
    with LibraryWriter(out, overwrite=True) as writer:
        writer.add("bench", blob(10, 30), detector="import")
    assert [i.id for i in OcclusionLibrary.load(out).instances] == ["bench-001"]
    assert sorted(p.name for p in out.iterdir()) == ["bench-001.png", "index.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["lib"]
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(LibraryError, match="not an occlusion library"):
        LibraryWriter(stranger, overwrite=True)
