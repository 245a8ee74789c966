"""ogor verify and recipes: pass on fresh output, fail naming the first mismatch; rebuild from
a manifest byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ogor.cli import main
from ogor.errors import GenerationError
from ogor.generation.generate import generate_dataset
from ogor.generation.manifest import MANIFEST_NAME, read_manifest
from ogor.generation.verify import verify_dataset

from .conftest import tree_digest


@pytest.fixture
def generated(source: Path, tmp_path: Path, library_root: Path) -> Path:
    out = tmp_path / "out"
    generate_dataset(source, out, oil=library_root, ratio=0.5, seed=2)
    return out


def _first(out: Path, occluded: bool) -> Path:
    item = next(i for i in read_manifest(out)["images"] if i["occluded"] == occluded)
    return out / "imgs" / item["path"]


def test_passes_on_fresh_output(generated: Path, source: Path) -> None:
    report = verify_dataset(generated, source=source, sample=100)
    assert report.images == 22 and report.placements == 11 and report.recomposed == 11
    result = CliRunner().invoke(main, ["verify", str(generated), "--source", str(source)])
    assert result.exit_code == 0 and result.output.startswith("ok: ")


def test_flipped_byte_is_named(generated: Path) -> None:
    target = _first(generated, occluded=True)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["verify", str(generated)])
    assert result.exit_code == 2
    assert str(target) in result.output and "sha256" in result.output


def test_deleted_file_is_named(generated: Path) -> None:
    target = _first(generated, occluded=False)
    target.unlink()
    with pytest.raises(GenerationError, match=f"{target}: image listed in the manifest is missing"):
        verify_dataset(generated)


def test_edited_annotation_is_named(generated: Path) -> None:
    annotation = generated / "reid_raw.json"
    records = json.loads(annotation.read_text())
    records[0]["captions"] = ["an edited caption"]
    annotation.write_text(json.dumps(records))
    with pytest.raises(GenerationError, match="reid_raw.json: annotation file differs"):
        verify_dataset(generated)


def test_extra_file_and_tampered_placement_are_named(generated: Path) -> None:
    extra = generated / "imgs" / "stray.jpg"
    extra.write_bytes(b"x")
    with pytest.raises(GenerationError, match="stray.jpg: file not listed"):
        verify_dataset(generated)
    extra.unlink()
    # A manifest whose recorded placement is not what the seed gives (hashes stay consistent).
    path = generated / MANIFEST_NAME
    manifest = read_manifest(generated)
    item = next(i for i in manifest["images"] if i["occluded"])
    item["placement"]["box"][0] += 1
    from ogor.generation.manifest import write_manifest

    write_manifest(path, manifest)
    with pytest.raises(GenerationError, match="re-derived from the seed"):
        verify_dataset(generated, sample=100)


def test_source_mismatch_is_named(generated: Path, source: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(source, other)
    annotation = other / "reid_raw.json"
    annotation.write_text(annotation.read_text().replace("a person", "a man"))
    with pytest.raises(GenerationError, match="source annotation differs"):
        verify_dataset(generated, source=other)


def test_from_manifest_rebuilds_the_same_tree(
    generated: Path, source: Path, tmp_path: Path, library_root: Path
) -> None:
    recipe = tmp_path / "shared-recipe.json"
    shutil.copyfile(generated / MANIFEST_NAME, recipe)
    rebuilt = tmp_path / "rebuilt"
    generate_dataset(source, rebuilt, from_manifest=recipe, workers=2)
    assert tree_digest(rebuilt) == tree_digest(generated)
    verify_dataset(rebuilt, source=source)


def test_from_manifest_refuses_another_source(
    generated: Path, source: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    shutil.copytree(source, other)
    annotation = other / "reid_raw.json"
    annotation.write_text(annotation.read_text().replace("a person", "a man"))
    with pytest.raises(GenerationError, match="source annotation sha256 .* differs"):
        generate_dataset(other, tmp_path / "x", from_manifest=generated / MANIFEST_NAME)
    assert not (tmp_path / "x").exists()


def test_preview_writes_a_grid(generated: Path, source: Path, tmp_path: Path) -> None:
    import cv2

    grid = tmp_path / "grid.png"
    result = CliRunner().invoke(main, ["preview", str(generated), "--n", "6", "--out", str(grid)])
    assert result.exit_code == 0, result.output
    image = cv2.imread(str(grid))
    assert image is not None and image.shape[0] > 192 and image.shape[1] > 4 * 96
    inside = str(generated / "g.png")
    result = CliRunner().invoke(main, ["preview", str(generated), "--out", inside])
    assert result.exit_code == 2 and "inside ROOT" in result.output
