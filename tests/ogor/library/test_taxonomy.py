"""The taxonomy data file: Table 1's classes and sets, detector label maps, MGCC code constants."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ogor.cli import main
from ogor.errors import LibraryError
from ogor.library.taxonomy import load_taxonomy

#: MGCC paper, Table 1, in its order (written out here independently of the data file).
TABLE_1 = {
    "up": ["umbrella", "kite"],
    "middle": ["bag", "suitcase", "post"],
    "bottom": [
        "car", "bike", "stone", "motorbike", "bench", "road_sign", "chair", "card", "pedestrian",
        "fire_hydrant",
    ],
}  # fmt: skip

#: Released MGCC code (FACTS.md section 3): fixed area fraction and corner per class.
MGCC_CODE = {
    "bench": (0.40, "left-bottom"), "bike": (0.60, "left-bottom"), "car": (0.45, "left-bottom"),
    "card": (0.20, "left-bottom"), "chair": (0.65, "left-bottom"),
    "fire_hydrant": (0.20, "right-bottom"), "motorbike": (0.50, "left-bottom"),
    "pedestrian": (0.50, "right-bottom"), "post": (0.50, "left-bottom"),
    "road_sign": (0.40, "right-bottom"), "stone": (0.15, "left-bottom"),
    "bag": (0.20, "left-middle"), "kite": (0.40, "top-left"), "suitcase": (0.10, "right-middle"),
    "umbrella": (0.25, "top-left"),
}  # fmt: skip


def test_exactly_the_15_classes_of_table_1_in_order_with_their_sets():
    tax = load_taxonomy()
    assert tax.version >= 1
    expected = [name for names in TABLE_1.values() for name in names]
    assert tax.names() == expected
    for position_set, names in TABLE_1.items():
        assert tax.by_set(position_set) == names
        for name in names:
            assert tax.classes[name].position_set == position_set


def test_released_code_area_and_corner_per_class():
    tax = load_taxonomy()
    for name, (area, corner) in MGCC_CODE.items():
        assert tax.classes[name].mgcc_area == pytest.approx(area)
        assert tax.classes[name].mgcc_corner == corner


@pytest.mark.parametrize(
    "spelling, expected",
    [
        ("firehydrant", "fire_hydrant"),
        ("Fire Hydrant", "fire_hydrant"),
        ("roadsign", "road_sign"),
        ("road sign", "road_sign"),
        ("road_sign", "road_sign"),
        ("bicycle", "bike"),
        ("Umbrella", "umbrella"),
    ],
)
def test_aliases_resolve(spelling, expected):
    assert load_taxonomy().resolve(spelling) == expected


def test_unknown_name_lists_the_valid_classes():
    with pytest.raises(LibraryError) as info:
        load_taxonomy().resolve("giraffe")
    message = str(info.value)
    assert "giraffe" in message and "fire_hydrant" in message and "\n" not in message
    with pytest.raises(LibraryError, match="valid sets"):
        load_taxonomy().by_set("sideways")


def test_coco_labels_map_to_classes():
    tax = load_taxonomy()
    expected = {
        "umbrella": "umbrella", "kite": "kite", "handbag": "bag", "backpack": "bag",
        "suitcase": "suitcase", "car": "car", "bicycle": "bike", "motorcycle": "motorbike",
        "bench": "bench", "stop sign": "road_sign", "chair": "chair", "person": "pedestrian",
        "fire hydrant": "fire_hydrant", "fire_hydrant": "fire_hydrant",
    }  # fmt: skip
    for label, name in expected.items():
        assert tax.coco_to_class(label) == name, label
    assert tax.coco_to_class("dog") is None
    for name in ("post", "stone", "card"):  # not COCO classes: LVIS (or ground truth) needed
        assert tax.classes[name].coco == ()
        assert tax.classes[name].lvis


def test_lvis_labels_and_the_playing_card_trap():
    tax = load_taxonomy()
    assert tax.lvis_to_class("card") is None  # LVIS card is a playing card, not a sign board
    expected = {
        "signboard": "card", "bulletin_board": "card", "pole": "post", "lamppost": "post",
        "telephone_pole": "post", "milestone": "stone", "gravestone": "stone",
        "fireplug": "fire_hydrant", "car_(automobile)": "car", "street_sign": "road_sign",
        "motor_scooter": "motorbike", "tote_bag": "bag", "folding_chair": "chair",
        "person": "pedestrian",
    }  # fmt: skip
    for label, name in expected.items():
        assert tax.lvis_to_class(label) == name, label
    for name in ("post", "stone", "card"):
        assert tax.classes[name].notes, f"{name} needs a reason for its label choice"


def test_conflicting_alias_in_a_taxonomy_file_is_one_line_error(tmp_path):
    data = json.loads((load_taxonomy().path).read_text())
    data["classes"][1]["aliases"] = ["umbrella"]  # kite claims umbrella's name
    path = tmp_path / "taxonomy.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LibraryError) as info:
        load_taxonomy(path)
    assert "aliases" in str(info.value) and "\n" not in str(info.value)
    data["classes"][1]["aliases"] = []
    data["classes"][1]["set"] = "sky"
    path.write_text(json.dumps(data))
    with pytest.raises(LibraryError, match=r"classes\[1\] field 'set'"):
        load_taxonomy(path)


def test_cli_prints_table_and_json():
    runner = CliRunner()
    result = runner.invoke(main, ["taxonomy"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 + 2 + 15
    assert "fire_hydrant" in result.output and "fireplug" in result.output
    result = runner.invoke(main, ["taxonomy", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert [c["name"] for c in data["classes"]][:2] == ["umbrella", "kite"]
    assert "Example:" in runner.invoke(main, ["taxonomy", "--help"]).output
