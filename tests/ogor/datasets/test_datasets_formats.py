"""Reading, detecting and writing the three source formats; the round trip keeps every field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ogor.datasets import (
    Record,
    detect_format,
    get_format,
    list_formats,
    read_dataset,
)
from ogor.errors import DatasetError
from tests.ogor.datasets.conftest import SOURCES

EXPECTED_KEYS = {
    "cuhk-pedes": ["split", "captions", "file_path", "processed_tokens", "id"],
    "icfg-pedes": ["split", "captions", "file_path", "processed_tokens", "id"],
    "rstpreid": ["id", "img_path", "captions", "split"],
}


def test_registry_lists_every_layout_and_names_them_in_errors() -> None:
    assert list_formats() == ["cuhk-pedes", "icfg-pedes", "rstpreid", "cuhk-pedes-textreid",
                              "cuhk-pedes-caption-all"]
    with pytest.raises(DatasetError, match="valid: cuhk-pedes, icfg-pedes, rstpreid, "
                       "cuhk-pedes-textreid, cuhk-pedes-caption-all"):
        get_format("market1501")


@pytest.mark.parametrize("format_name", list(SOURCES))
def test_round_trip_keeps_every_field_in_order(format_name: str, make_root, tmp_path: Path):
    root = make_root(format_name)
    original = json.loads(next(p for p in root.iterdir() if p.suffix == ".json").read_text())
    dataset = read_dataset(root)
    assert dataset.format.name == format_name
    assert [list(r.raw) for r in dataset.records] == [EXPECTED_KEYS[format_name]] * len(original)
    out = tmp_path / "written"
    written = dataset.format.write(dataset.records, out)
    assert written.name == SOURCES[format_name][0]
    again = json.loads(written.read_text(encoding="utf-8"))
    assert again == original
    assert [list(obj) for obj in again] == [list(obj) for obj in original]
    assert read_dataset(out).records == dataset.records


def test_round_trip_keeps_unknown_fields_and_a_foreign_key_order(make_root, tmp_path: Path):
    def edit(records):
        records[0] = {"id": records[0]["id"], "note": {"x": 1}, **{
            k: v for k, v in records[0].items() if k != "id"}}

    dataset = read_dataset(make_root("cuhk-pedes", edit))
    path = dataset.format.write(dataset.records, tmp_path / "out")
    first = json.loads(path.read_text())[0]
    assert list(first) == ["id", "note", "split", "captions", "file_path", "processed_tokens"]
    assert first["note"] == {"x": 1}


def test_records_made_in_code_get_the_canonical_keys(tmp_path: Path) -> None:
    for name, keys in EXPECTED_KEYS.items():
        fmt = get_format(name)
        path = fmt.write([Record("a/b.jpg", 3, "train", ("A man in red, with SHOES.",))],
                         tmp_path / name)
        obj = json.loads(path.read_text())[0]
        assert list(obj) == keys
        if "processed_tokens" in keys:
            assert obj["processed_tokens"] == [["a", "man", "in", "red", "with", "shoes"]]


def test_changed_captions_get_fresh_processed_tokens(make_root, tmp_path: Path) -> None:
    dataset = read_dataset(make_root("cuhk-pedes"))
    first = dataset.records[0]
    changed = Record(first.image_path, first.person_id, first.split, ("Blue bag.",), raw=first.raw)
    obj = json.loads(dataset.format.write([changed], tmp_path / "o").read_text())[0]
    assert obj["processed_tokens"] == [["blue", "bag"]]
    assert list(obj) == EXPECTED_KEYS["cuhk-pedes"]


def test_icfg_accepts_the_underscore_name_and_writes_it_back(make_root, tmp_path: Path) -> None:
    root = make_root("icfg-pedes", annotation="ICFG_PEDES.json")
    assert detect_format(root).name == "icfg-pedes"
    dataset = read_dataset(root)
    assert dataset.annotation_path.name == "ICFG_PEDES.json"
    path = dataset.format.write(dataset.records, tmp_path / "o", dataset.annotation_path.name)
    assert path.name == "ICFG_PEDES.json"
    assert json.loads(path.read_text()) == json.loads(dataset.annotation_path.read_text())


def test_detection_refuses_an_ambiguous_root(make_root) -> None:
    root = make_root("cuhk-pedes")
    (root / "data_captions.json").write_text("[]")
    with pytest.raises(DatasetError, match="several annotation files found"):
        detect_format(root)
    assert read_dataset(root, "cuhk-pedes").format.name == "cuhk-pedes"


def test_dataset_helpers(make_root) -> None:
    dataset = read_dataset(make_root("rstpreid"))
    assert dataset.splits_present() == ["train", "val", "test"]
    assert [r.person_id for r in dataset.split("test")] == [2]
    assert dataset.image_file(dataset.records[0]) == dataset.root / "imgs" / "0000_c14_0007.jpg"
