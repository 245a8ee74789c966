"""``ogor convert``: another layout of the same records, the source untouched, a record of it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ogor.datasets import annotation_sha256, read_dataset
from ogor.datasets.convert import RECORD_NAME
from toreid.io import sha256_file

from .conftest import run_cli
from .layout_copies import make_copy, tree_digest


def _key(records) -> list[tuple]:
    return sorted((r.image_path, r.person_id, r.split, r.captions) for r in records)


def test_textreid_to_reid_raw_and_back(synth_roots, tmp_path: Path) -> None:
    source, _ = make_copy(synth_roots["cuhk-pedes"], "textreid", tmp_path / "textreid")
    before = tree_digest(source)
    out = tmp_path / "irra"
    result = run_cli("convert", str(source), "--out", str(out), "--to", "cuhk-pedes")
    assert result.exit_code == 0, result.output
    assert tree_digest(source) == before  # the source is only read
    converted = read_dataset(out)
    assert converted.format.name == "cuhk-pedes" and converted.annotation_path.name == (
        "reid_raw.json")
    assert _key(converted.records) == _key(read_dataset(source).records)
    entries = json.loads((out / "reid_raw.json").read_text())
    assert list(entries[0]) == ["split", "captions", "file_path", "processed_tokens", "id"]
    first = converted.records[0]
    assert os.stat(converted.image_file(first)).st_ino == os.stat(
        source / "imgs" / first.image_path).st_ino  # hard links, no copies

    record = json.loads((out / RECORD_NAME).read_text())
    assert record["source"]["format"] == "cuhk-pedes-textreid"
    assert record["source"]["annotation_sha256"] == annotation_sha256(source / "annotations")
    assert {f["path"]: f["sha256"] for f in record["source"]["files"]} == {
        f"annotations/{s}.json": sha256_file(source / "annotations" / f"{s}.json")
        for s in ("train", "val", "test")
    }
    assert record["target"]["files"] == [
        {"path": "reid_raw.json", "sha256": sha256_file(out / "reid_raw.json")}]
    assert record["images"]["count"] == len(converted.records)

    back = tmp_path / "back"
    assert run_cli("convert", str(out), "--out", str(back), "--to", "cuhk-pedes-textreid"
                   ).exit_code == 0
    again = read_dataset(back)
    assert again.format.name == "cuhk-pedes-textreid"
    assert _key(again.records) == _key(converted.records)


def test_caption_all_with_its_split_file_to_the_mgcc_name(synth_roots, tmp_path: Path) -> None:
    source, split_file = make_copy(synth_roots["cuhk-pedes"], "caption_all.json", tmp_path / "c")
    out = tmp_path / "mgcc"
    result = run_cli("convert", str(source), "--out", str(out), "--to", "cuhk-pedes",
                     "--annotation-name", "CUHK-PEDES.json", "--split-file", str(split_file))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["CUHK-PEDES.json", "imgs", RECORD_NAME]
    assert _key(read_dataset(out).records) == _key(
        read_dataset(synth_roots["cuhk-pedes"]).records)
    record = json.loads((out / RECORD_NAME).read_text())
    assert record["source"]["split_file"]["sha256"] == sha256_file(split_file)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--to", "icfg-pedes"], "field 'to': is a CUHK-PEDES copy (cuhk-pedes); --to "
                                 "icfg-pedes is a layout of ICFG-PEDES"),
        (["--to", "cuhk-pedes-caption-all"], "caption_all.json holds no split"),
        (["--to", "cuhk-pedes", "--annotation-name", "x.json"], "not a cuhk-pedes file name"),
    ],
)
def test_refused_targets_are_one_line_and_write_nothing(
    synth_roots, tmp_path: Path, args: list[str], words: str
) -> None:
    out = tmp_path / "out"
    result = run_cli("convert", str(synth_roots["cuhk-pedes"]), "--out", str(out), *args)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and words in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_never_writes_inside_the_source_nor_over_a_foreign_folder(
    synth_roots, tmp_path: Path
) -> None:
    source, _ = make_copy(synth_roots["rstpreid"], "data_captions.json", tmp_path / "r")
    before = tree_digest(source)
    result = run_cli("convert", str(source), "--out", str(source / "inside"), "--to", "rstpreid")
    assert result.exit_code == 2 and "inside SOURCE_ROOT" in result.stderr
    assert tree_digest(source) == before and not (source / "inside").exists()

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    args = ["convert", str(source), "--out", str(foreign), "--to", "rstpreid"]
    assert "not empty (pass --overwrite)" in run_cli(*args).stderr
    assert "replaces only a folder made by ogor convert" in run_cli(*args, "--overwrite").stderr
    assert (foreign / "keep.txt").read_text() == "mine"

    out = tmp_path / "mgcc"
    args = ["convert", str(source), "--out", str(out), "--to", "rstpreid"]
    assert run_cli(*args, "--annotation-name", "RSTPReid.json").exit_code == 0
    assert run_cli(*args, "--overwrite").exit_code == 0  # an earlier convert output: replaced
    assert sorted(p.name for p in out.iterdir()) == ["data_captions.json", "imgs", RECORD_NAME]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no build folder left


def test_a_missing_source_image_leaves_nothing_behind(synth_roots, tmp_path: Path) -> None:
    source, _ = make_copy(synth_roots["icfg-pedes"], "ICFG-PEDES.json", tmp_path / "i")
    dataset = read_dataset(source)
    gone = dataset.image_file(dataset.records[-1])
    gone.unlink()
    out = tmp_path / "out"
    result = run_cli("convert", str(source), "--out", str(out), "--to", "icfg-pedes",
                     "--annotation-name", "ICFG_PEDES.json")
    assert result.exit_code == 2 and f"{gone}: field 'file_path': image file not found" in (
        result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i"]
