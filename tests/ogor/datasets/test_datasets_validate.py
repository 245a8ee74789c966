"""Every validation case gives one error line naming file, record and field, and exit status 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ogor.datasets.validate import check_dataset
from tests.ogor.datasets.conftest import run_cli


def _del(key):
    def edit(records):
        del records[1][key]

    return edit


def _set(key, value, index=1):
    def edit(records):
        records[index][key] = value

    return edit


# (case, format, edit, expected field, words the message must contain)
ANNOTATION_CASES = [
    ("missing key", "cuhk-pedes", _del("captions"), "captions", "missing key"),
    ("missing path key", "rstpreid", _del("img_path"), "img_path", "missing key"),
    ("id of wrong type", "rstpreid", _set("id", "7"), "id", "expected an integer"),
    ("id is a bool", "cuhk-pedes", _set("id", True), "id", "expected an integer"),
    ("path of wrong type", "cuhk-pedes", _set("file_path", 12), "file_path", "expected a string"),
    ("captions not a list", "icfg-pedes", _set("captions", "a man"), "captions", "list"),
    ("empty captions", "cuhk-pedes", _set("captions", []), "captions", "no captions"),
    ("blank caption", "rstpreid", _set("captions", ["ok", "  "]), "captions", "caption 1 is empty"),
    ("caption not text", "rstpreid", _set("captions", ["ok", 3]), "captions", "not a string"),
    ("unknown split", "cuhk-pedes", _set("split", "dev"), "split", "unknown split 'dev'"),
    ("val in icfg", "icfg-pedes", _set("split", "val"), "split", "unknown split 'val'"),
    ("absolute path", "cuhk-pedes", _set("file_path", "/etc/passwd"), "file_path", "absolute"),
    ("escaping path", "rstpreid", _set("img_path", "../../x.jpg"), "img_path", "escapes"),
    ("windows path", "rstpreid", _set("img_path", "C:/x.jpg"), "img_path", "absolute"),
    ("bad tokens", "cuhk-pedes", _set("processed_tokens", "a b"), "processed_tokens", "lists"),
    (
        "same image, two ids", "cuhk-pedes",
        _set("file_path", "./CUHK01//0001001.png", index=2), "id", "has id 2 here and id 1",
    ),
]


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("fmt", "edit", "field", "words"),
    [case[1:] for case in ANNOTATION_CASES],
    ids=[case[0] for case in ANNOTATION_CASES],
)
def test_annotation_errors(make_root, fmt, edit, field, words) -> None:
    root = make_root(fmt, edit)
    line = _one_error_line(run_cli("check", str(root)))
    annotation = next(p.name for p in root.iterdir() if p.suffix == ".json")
    index = 2 if field == "id" and "here and id" in words else 1  # the second of the pair
    assert f"{root / annotation}: record {index}: field '{field}': " in line
    assert words in line


def test_missing_annotation_file(tmp_path: Path) -> None:
    (tmp_path / "root" / "imgs").mkdir(parents=True)
    line = _one_error_line(run_cli("check", str(tmp_path / "root")))
    assert str(tmp_path / "root") in line
    assert "no annotation file found" in line and "reid_raw.json" in line


def test_missing_root(tmp_path: Path) -> None:
    line = _one_error_line(run_cli("stats", str(tmp_path / "nowhere")))
    assert "is not a folder" in line


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    root = tmp_path / "rstp"
    root.mkdir()
    (root / "data_captions.json").write_text('[\n  {"id": 1,\n   "img_path": "a.jpg"\n  }\n  {')
    line = _one_error_line(run_cli("check", str(root)))
    assert f"{root / 'data_captions.json'}: malformed JSON at line 5, column 3" in line


def test_not_a_list_and_empty_list(tmp_path: Path) -> None:
    root = tmp_path / "cuhk"
    root.mkdir()
    (root / "reid_raw.json").write_text('{"images": []}')
    assert "expected a JSON list" in _one_error_line(run_cli("check", str(root)))
    (root / "reid_raw.json").write_text("[]")
    assert "holds no records" in _one_error_line(run_cli("stats", str(root)))


def test_record_not_an_object(make_root) -> None:
    root = make_root("icfg-pedes", lambda records: records.__setitem__(2, ["x"]))
    line = _one_error_line(run_cli("check", str(root)))
    assert "record 2: expected an object, found list" in line


def _image_file(root: Path, index: int, key: str = "file_path") -> Path:
    import json

    records = json.loads(next(p for p in root.iterdir() if p.suffix == ".json").read_text())
    return root / "imgs" / records[index][key]


def test_missing_image(make_root) -> None:
    root = make_root("cuhk-pedes")
    _image_file(root, 2).unlink()
    line = _one_error_line(run_cli("check", str(root)))
    assert re.search(r"Market/0002_c1s1_000151_01\.jpg: record 2: field 'file_path': "
                     r"image file not found$", line)


def test_image_path_is_a_folder(make_root) -> None:
    root = make_root("rstpreid")
    image = _image_file(root, 1, "img_path")
    image.unlink()
    image.mkdir()
    line = _one_error_line(run_cli("check", str(root)))
    assert "record 1: field 'img_path': image path is not a file" in line


def test_truncated_jpeg(make_root) -> None:
    root = make_root("icfg-pedes")
    image = _image_file(root, 1)
    image.write_bytes(image.read_bytes()[:200])
    line = _one_error_line(run_cli("check", str(root)))
    assert f"{image}: record 1: field 'file_path': corrupt" in line


def test_not_an_image(make_root) -> None:
    root = make_root("cuhk-pedes")
    image = _image_file(root, 3)
    image.write_bytes(b"this is not a picture" * 20)
    line = _one_error_line(run_cli("check", str(root)))
    assert f"{image}: record 3: field 'file_path': image cannot be decoded" in line


def test_valid_roots_pass_including_bmp_and_png(make_root) -> None:
    for fmt in ("cuhk-pedes", "icfg-pedes", "rstpreid"):
        root = make_root(fmt)
        result = run_cli("check", str(root))
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(f"OK: {root} is a valid {fmt} dataset")
    report = check_dataset(make_root("cuhk-pedes", name="again"))
    assert report.ok and report.images_checked == 4  # includes cam_a/001_45.bmp


def test_all_collects_every_bad_image_in_record_order(make_root) -> None:
    root = make_root("cuhk-pedes")
    _image_file(root, 3).unlink()
    _image_file(root, 1).write_bytes(b"junk")
    report = check_dataset(root, stop_at_first=False, workers=2)
    assert len(report.errors) == 2
    assert "record 1" in report.errors[0] and "record 3" in report.errors[1]
    result = run_cli("check", str(root), "--all")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 2
    assert check_dataset(root, images=False).ok


def test_cli_help_has_examples() -> None:
    for command in ("check", "stats", "convert"):
        result = run_cli(command, "--help")
        assert result.exit_code == 0 and "Example:" in result.output
