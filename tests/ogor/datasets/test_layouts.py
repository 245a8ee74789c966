"""Every layout of item 1 of issue 28 is read to the same records; a split-less copy is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ogor.datasets import detect_format, read_dataset
from ogor.errors import DatasetError

from .conftest import run_cli
from .layout_copies import LAYOUTS, make_copy


def _key(records) -> list[tuple]:
    return sorted((r.image_path, r.person_id, r.split, r.captions) for r in records)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_reads_to_the_same_records(layout: str, synth_roots, tmp_path: Path) -> None:
    synth_format, expected = LAYOUTS[layout]
    source = read_dataset(synth_roots[synth_format])
    root, split_file = make_copy(synth_roots[synth_format], layout, tmp_path / "copy")
    assert detect_format(root).name == expected
    dataset = read_dataset(root, split_file=split_file)
    assert dataset.format.name == expected
    assert _key(dataset.records) == _key(source.records)
    assert len(dataset.records) == len(source.records)
    for record in dataset.records:
        assert dataset.image_file(record).is_file()


def test_caption_all_without_a_split_file_is_refused_in_one_line(
    synth_roots, tmp_path: Path
) -> None:
    root, _ = make_copy(synth_roots["cuhk-pedes"], "caption_all.json", tmp_path / "copy")
    for command in ("check", "stats"):
        result = run_cli(command, str(root))
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        line = lines[0]
        assert line.startswith(f"error: {root / 'caption_all.json'}: field 'split': ")
        assert "--split-file" in line and "reid_raw.json" in line
        assert "ShuangLI59/Person-Search-with-Natural-Language-Description" in line
    with pytest.raises(DatasetError, match="no train/val/test split"):
        read_dataset(root)


def test_caption_all_takes_its_split_from_reid_raw_beside_it(synth_roots, tmp_path: Path) -> None:
    root, split_file = make_copy(synth_roots["cuhk-pedes"], "caption_all.json", tmp_path / "c")
    (root / "reid_raw.json").write_bytes(split_file.read_bytes())
    assert detect_format(root).name == "cuhk-pedes"  # the file with the split wins, no ambiguity
    beside = read_dataset(root, "cuhk-pedes-caption-all")
    assert _key(beside.records) == _key(read_dataset(root).records)


def test_a_split_file_that_misses_an_image_is_refused_naming_it(
    synth_roots, tmp_path: Path
) -> None:
    root, split_file = make_copy(synth_roots["cuhk-pedes"], "caption_all.json", tmp_path / "c")
    records = json.loads(split_file.read_text())
    gone = records.pop(3)["file_path"]
    split_file.write_text(json.dumps(records))
    with pytest.raises(DatasetError, match=f"image '{gone}' is not in the split file"):
        read_dataset(root, split_file=split_file)
    result = run_cli("check", str(root), "--split-file", str(tmp_path / "absent.json"))
    assert result.exit_code == 2 and "split file not found" in result.stderr


def _textreid_entries(root: Path, split: str) -> dict:
    return json.loads((root / "annotations" / f"{split}.json").read_text())


def test_textreid_refuses_an_image_in_two_splits_and_two_ids(synth_roots, tmp_path: Path) -> None:
    root, _ = make_copy(synth_roots["cuhk-pedes"], "textreid", tmp_path / "t")
    test = _textreid_entries(root, "test")
    train = _textreid_entries(root, "train")
    test["annotations"].append(dict(train["annotations"][0]))
    (root / "annotations" / "test.json").write_text(json.dumps(test))
    with pytest.raises(DatasetError, match=r"test\.json: record \d+: field 'file_path': .* is "
                       r"also in train\.json"):
        read_dataset(root)
    test["annotations"].pop()
    train["annotations"][1]["id"] = 999  # the second caption of the first image
    (root / "annotations" / "test.json").write_text(json.dumps(test))
    (root / "annotations" / "train.json").write_text(json.dumps(train))
    with pytest.raises(DatasetError, match="has id 999 here"):
        read_dataset(root)


def test_textreid_entry_errors_name_file_index_and_field(synth_roots, tmp_path: Path) -> None:
    root, _ = make_copy(synth_roots["cuhk-pedes"], "textreid", tmp_path / "t")
    val = _textreid_entries(root, "val")
    del val["annotations"][1]["sentence"]
    (root / "annotations" / "val.json").write_text(json.dumps(val))
    result = run_cli("stats", str(root))
    assert result.exit_code == 2
    assert f"{root / 'annotations' / 'val.json'}: record 1: field 'sentence': missing key" in (
        result.stderr)
