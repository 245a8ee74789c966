"""``ogor generate`` on a copy in every layout: the Occluded-* output keeps that layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ogor.cli import main
from ogor.datasets import read_dataset
from ogor.errors import GenerationError
from ogor.generation.generate import generate_dataset
from ogor.generation.manifest import MANIFEST_NAME, occlusion_flags, read_manifest
from ogor.generation.verify import verify_dataset
from tests.ogor.datasets.layout_copies import LAYOUTS, make_copy, tree_digest


def _key(records) -> list[tuple]:
    return sorted((r.image_path, r.person_id, r.split, r.captions) for r in records)


def _annotation_files(root: Path) -> dict[str, bytes]:
    """Every file of a root but its images and our own records: the annotation as laid out."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] != "imgs"
        and p.name not in (MANIFEST_NAME, "SYNTHETIC.md", "synth-attributes.json")
    }


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_occluded_dataset_keeps_the_source_layout(
    layout: str, synth_roots, tmp_path: Path, library_root: Path
) -> None:
    synth_format, expected = LAYOUTS[layout]
    root, split_file = make_copy(synth_roots[synth_format], layout, tmp_path / "src")
    before = tree_digest(root)
    out = tmp_path / "occluded"
    summary = generate_dataset(root, out, oil=library_root, ratio=0.5, seed=1,
                               split_file=split_file)
    assert tree_digest(root) == before
    assert summary.occluded > 0
    assert _annotation_files(out) == _annotation_files(root)  # same names, same bytes
    occluded = read_dataset(out)  # no split file: a caption_all output reads its manifest's
    assert occluded.format.name == expected
    assert _key(occluded.records) == _key(read_dataset(root, split_file=split_file).records)
    flags = occlusion_flags(out)
    assert flags is not None and sum(flags.values()) == summary.occluded
    manifest = read_manifest(out)
    assert manifest["source"]["format"] == expected
    assert ("split_file" in manifest["source"]) == (split_file is not None)
    report = verify_dataset(out, source=root, sample=4)
    assert report.images == len(occluded.records) and report.recomposed > 0


@pytest.mark.parametrize("layout", ["textreid", "caption_all.json"])
def test_add_mode_writes_the_copies_in_the_same_layout(
    layout: str, synth_roots, tmp_path: Path, library_root: Path
) -> None:
    root, split_file = make_copy(synth_roots["cuhk-pedes"], layout, tmp_path / "src")
    out = tmp_path / "added"
    summary = generate_dataset(root, out, oil=library_root, ratio=0.5, seed=3, mode="add",
                               split_file=split_file)
    source = read_dataset(root, split_file=split_file)
    added = read_dataset(out)
    assert added.format.name == LAYOUTS[layout][1]
    assert len(added.records) == len(source.records) + summary.occluded
    copies = [r for r in added.records if r.image_path.endswith("_occ.jpg")]
    assert len(copies) == summary.occluded
    assert verify_dataset(out, source=root, sample=2).selection_checked
    if layout == "textreid":
        entries = [e for s in ("train", "val", "test") for e in json.loads(
            (out / "annotations" / f"{s}.json").read_text())["annotations"]]
        image_ids = {}
        for entry in entries:
            image_ids.setdefault(entry["file_path"], set()).add(entry["image_id"])
        assert all(len(ids) == 1 for ids in image_ids.values())  # one image_id per image
        assert len({next(iter(ids)) for ids in image_ids.values()}) == len(image_ids)
        assert all("onehot" in e for e in entries)  # the copies keep their original's too


def test_cli_caption_all_needs_its_split_and_the_manifest_records_it(
    synth_roots, tmp_path: Path, library_root: Path
) -> None:
    root, split_file = make_copy(synth_roots["cuhk-pedes"], "caption_all.json", tmp_path / "src")
    out = tmp_path / "occ"
    args = ["generate", str(root), "--out", str(out), "--oil", str(library_root), "--workers", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "--split-file" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()
    result = CliRunner().invoke(main, [*args, "--split-file", str(split_file)])
    assert result.exit_code == 0, result.output
    recorded = read_manifest(out)["source"]["split_file"]
    assert recorded["path"] == str(split_file.resolve())


def test_a_rebuild_from_the_manifest_finds_the_recorded_split_file(
    synth_roots, tmp_path: Path, library_root: Path
) -> None:
    root, split_file = make_copy(synth_roots["cuhk-pedes"], "caption_all.json", tmp_path / "src")
    first = tmp_path / "first"
    generate_dataset(root, first, oil=library_root, ratio=0.5, seed=4, split_file=split_file)
    rebuilt = tmp_path / "rebuilt"
    generate_dataset(root, rebuilt, oil=library_root, from_manifest=first / MANIFEST_NAME)
    assert tree_digest(rebuilt) == tree_digest(first)
    split_file.write_text(split_file.read_text().replace('"val"', '"test"'))
    with pytest.raises(GenerationError, match="split file differs from the one the manifest"):
        generate_dataset(root, tmp_path / "again", oil=library_root,
                         from_manifest=first / MANIFEST_NAME)
