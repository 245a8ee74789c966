"""``ogor check`` against the published statistics, the old RSTPReid split, and a copy's faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ogor.datasets import read_dataset
from ogor.datasets.published import (
    compare_with_published,
    published_table,
    recognise_version,
    split_counts,
)
from ogor.datasets.validate import check_dataset

from .conftest import run_cli
from .layout_copies import make_copy

#: Whole-dataset totals as each dataset's paper states them (FACTS.md section 1; CUHK-PEDES'
#: captions as its reid_raw.json holds them, see published_stats.json).
TOTALS = {
    "CUHK-PEDES": {"ids": 13003, "images": 40206, "captions": 80440},
    "ICFG-PEDES": {"ids": 4102, "images": 54522, "captions": 54522},
    "RSTPReid": {"ids": 4101, "images": 20505, "captions": 41010},
}


@pytest.mark.parametrize("dataset", list(TOTALS))
def test_the_table_has_sources_and_adds_up_to_the_published_totals(dataset: str) -> None:
    entry = published_table()[dataset]
    assert entry["sources"] and all(isinstance(s, str) and len(s) > 40 for s in entry["sources"])
    for version in [entry, *entry["versions"].values()]:
        for field, total in TOTALS[dataset].items():
            assert sum(split[field] for split in version["splits"].values()) == total


def test_published_counts_match_and_the_old_rstpreid_counts_are_named() -> None:
    entry = published_table()["RSTPReid"]
    current = compare_with_published("RSTPReid", entry["splits"])
    assert current is not None and current.matches
    assert current.lines()[1] == "  train: matches (3,701 ids, 18,505 images, 37,010 captions)"
    old = next(iter(entry["versions"].values()))["splits"]
    comparison = compare_with_published("RSTPReid", old)
    assert comparison is not None and not comparison.matches
    assert comparison.splits[1].line() == (
        "val: differs: 100 ids (published 200), 500 images (published 1,000), 1,000 captions "
        "(published 2,000)")
    assert comparison.old_version is not None and comparison.old_version.exact
    assert "pre-correction split" in comparison.lines()[-1]
    assert "NjtechCVLab/RSTPReid-Dataset" in comparison.lines()[-1]
    assert recognise_version(entry["splits"], entry) is None


def _rstpreid_copy(tmp_path: Path, name: str, splits: tuple[int, int, int]) -> Path:
    """A synthetic RSTPReid copy with ``splits`` ids in train / val / test (one view each)."""
    from ogor.synth import synthesize

    root = synthesize(tmp_path / name, format="rstpreid", ids=sum(splits), views=1, seed=2,
                      size=(32, 16)).root
    annotation = root / "data_captions.json"
    records = json.loads(annotation.read_text())
    names = ["train"] * splits[0] + ["val"] * splits[1] + ["test"] * splits[2]
    ids = sorted({r["id"] for r in records})
    for record in records:
        record["split"] = names[ids.index(record["id"])]
    annotation.write_text(json.dumps(records))
    return root


def test_check_names_the_old_rstpreid_split_by_its_proportions(tmp_path: Path) -> None:
    old = _rstpreid_copy(tmp_path, "old", (39, 1, 1))  # 3,901 / 100 / 100 scaled to 41 ids
    result = run_cli("check", str(old))
    assert result.exit_code == 0, result.output
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("this looks like the RSTPReid pre-correction split (3,901 / 100 / 100")
    assert "split proportions" in line and "fix: download data_captions.json again" in line
    assert run_cli("check", str(old), "--strict").exit_code == 1

    new = _rstpreid_copy(tmp_path, "new", (37, 2, 2))  # 3,701 / 200 / 200 scaled to 41 ids
    result = run_cli("check", str(new))
    assert result.exit_code == 0 and "pre-correction" not in result.output


def test_check_reports_a_synthetic_copy_s_differences_without_failing(
    synth_roots, tmp_path: Path
) -> None:
    root, _ = make_copy(synth_roots["icfg-pedes"], "ICFG_PEDES.json", tmp_path / "icfg")
    result = run_cli("check", str(root))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"OK: {root} is a valid icfg-pedes dataset")
    assert lines[1] == "ICFG-PEDES against the published statistics:"
    counts = split_counts(read_dataset(root).records)
    assert lines[2] == (
        f"  train: differs: {counts['train']['ids']} ids (published 3,102), "
        f"{counts['train']['images']} images (published 34,674), {counts['train']['captions']} "
        "captions (published 34,674)")
    assert lines[3].startswith("  test: differs: ")
    result = run_cli("check", str(root), "--strict")
    assert result.exit_code == 1
    assert "counts differ from the published statistics (--strict)" in result.stderr


def test_check_names_a_missing_image_and_counts_the_captions_left_without_one(
    synth_roots, tmp_path: Path
) -> None:
    root, _ = make_copy(synth_roots["rstpreid"], "RSTPReid.json", tmp_path / "r")
    dataset = read_dataset(root)
    gone = dataset.image_file(dataset.records[2])
    gone.unlink()
    result = run_cli("check", str(root), "--no-progress")
    assert result.exit_code == 2
    errors = result.stderr.strip().splitlines()
    assert errors == [f"error: {gone}: record 2: field 'img_path': image file not found"]
    assert "note: 2 caption(s) refer to no usable image (1 image file(s) missing or " in (
        result.stdout)


def test_check_finds_duplicates_and_unlisted_images_in_one_pass(
    synth_roots, tmp_path: Path
) -> None:
    root, _ = make_copy(synth_roots["cuhk-pedes"], "CUHK-PEDES.json", tmp_path / "c")
    annotation = root / "CUHK-PEDES.json"
    records = json.loads(annotation.read_text())
    records.append(dict(records[0]))  # the same image listed twice
    annotation.write_text(json.dumps(records))
    dataset = read_dataset(root)
    copy_of = dataset.image_file(dataset.records[1])
    dataset.image_file(dataset.records[4]).write_bytes(copy_of.read_bytes())
    (root / "imgs" / "stray.jpg").write_bytes(copy_of.read_bytes())

    report = check_dataset(root, stop_at_first=False)
    assert report.ok and report.images_checked == len(records) - 1
    notes = "\n".join(report.findings)
    assert f"record {len(records) - 1}: image {records[0]['file_path']!r} is listed again" in notes
    assert f"same bytes as {records[1]['file_path']!r} (a duplicate image)" in notes
    assert "1 image file(s) are in no record, first 'stray.jpg'" in notes
    result = run_cli("check", str(root))
    assert result.exit_code == 0
    assert sum(line.startswith("note: ") for line in result.stdout.splitlines()) == 3
