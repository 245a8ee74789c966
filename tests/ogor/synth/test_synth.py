"""The synthetic demo dataset: formats, determinism, atomic output, captions that match pixels."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from ogor import synth
from ogor.datasets import read_dataset
from ogor.datasets.validate import check_dataset
from ogor.errors import DatasetError
from ogor.synth import dataset as synth_dataset
from tests.ogor.datasets.conftest import run_cli

EXPECTED = {
    # format: (annotation, splits, captions per image, first id, path pattern)
    "cuhk-pedes": ("reid_raw.json", ["train", "val", "test"], 2, 1, r"synth/\d{5}_\d{2}\.jpg"),
    "icfg-pedes": ("ICFG-PEDES.json", ["train", "test"], 1, 0,
                   r"(train|test)/(\d{4})/\2_c\d{2}_\d{3}\.jpg"),
    "rstpreid": ("data_captions.json", ["train", "val", "test"], 2, 0, r"\d{4}_c\d+_\d{4}\.jpg"),
}


def _files(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


@pytest.mark.parametrize("format_name", list(EXPECTED))
def test_each_format_is_complete_and_valid(format_name: str, tmp_path: Path) -> None:
    annotation, splits, per_image, first_id, pattern = EXPECTED[format_name]
    dataset = synth.synthesize(tmp_path / "d", format=format_name, ids=10, views=3, seed=4)
    assert dataset.annotation_path.name == annotation
    assert dataset.format.name == format_name
    assert check_dataset(tmp_path / "d").ok
    assert dataset.splits_present() == splits
    assert len(dataset.records) == 30
    ids = sorted({r.person_id for r in dataset.records})
    assert ids == list(range(first_id, first_id + 10))
    # Splits are by identity, train ids first and contiguous (IRRA asserts this).
    by_id = {r.person_id: r.split for r in dataset.records}
    assert all(len({r.split for r in dataset.records if r.person_id == i}) == 1 for i in ids)
    train = sorted(i for i, s in by_id.items() if s == "train")
    assert train == list(range(first_id, first_id + len(train)))
    for record in dataset.records:
        assert re.fullmatch(pattern, record.image_path), record.image_path
        assert len(record.captions) == per_image
        assert len(set(record.captions)) == per_image  # different phrasing
        assert 1 <= record.captions[0].count(".") <= 2
    if format_name == "icfg-pedes":
        assert all(r.image_path.startswith(r.split + "/") for r in dataset.records)
    raw = json.loads(dataset.annotation_path.read_text())
    if format_name != "rstpreid":
        assert all(obj["processed_tokens"][0][0] == obj["captions"][0].split()[0].lower()
                   for obj in raw)
    note = (tmp_path / "d" / "SYNTHETIC.md").read_text()
    assert "SYNTHETIC" in note and "not a real dataset" in note
    image = cv2.imread(str(dataset.image_file(dataset.records[0])))
    assert image.shape == (128, 64, 3)


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        result = run_cli("synth", "--out", str(tmp_path / name), "--format", "rstpreid",
                         "--ids", "5", "--views", "2", "--seed", str(seed), "--size", "64x32")
        assert result.exit_code == 0, result.output
        assert "SYNTHETIC" in result.stdout
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert a == b
    assert set(a) == set(c)
    assert a["data_captions.json"] != c["data_captions.json"]
    images = [k for k in a if k.endswith(".jpg")]
    assert len(images) == 10
    assert all(a[k] != c[k] for k in images)
    assert len({a[k] for k in images}) == 10  # every view differs


def test_refuses_non_empty_out_and_overwrites_on_request(tmp_path: Path) -> None:
    out = tmp_path / "d"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run_cli("synth", "--out", str(out), "--ids", "3", "--views", "1")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {out}: field 'out': output folder is not empty "
        "(choose another --out or pass --overwrite)"
    )
    # --overwrite deletes, so it only replaces an earlier synthetic dataset.
    result = run_cli("synth", "--out", str(out), "--ids", "3", "--views", "1", "--overwrite")
    assert result.exit_code == 2 and "only replaces an earlier synthetic" in result.stderr
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    synth.synthesize(out, ids=3, views=1, seed=1)
    before = (out / "reid_raw.json").read_bytes()
    result = run_cli("synth", "--out", str(out), "--ids", "4", "--views", "1", "--overwrite")
    assert result.exit_code == 0, result.output
    assert (out / "reid_raw.json").read_bytes() != before
    assert len(read_dataset(out).records) == 4 and synth.is_synthetic(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temporary folders left


def test_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return original(*args, **kwargs)

    original = synth.render_person
    monkeypatch.setattr(synth_dataset, "render_person", failing)  # where synthesize looks it up
    with pytest.raises(RuntimeError):
        synth.synthesize(tmp_path / "d", ids=3, views=2)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="HxW"):
        synth.parse_size("128by64")
    assert synth.parse_size("384x128") == (384, 128)
    with pytest.raises(DatasetError, match="below 32x16"):
        synth.synthesize(tmp_path / "d", ids=2, views=1, size=(16, 8))
    result = run_cli("synth", "--out", str(tmp_path / "e"), "--ids", "2", "--format", "market")
    assert result.exit_code != 0 and "cuhk-pedes" in result.output
    help_text = run_cli("synth", "--help").output
    assert "SYNTHETIC" in help_text and "not real data" in help_text and "Example:" in help_text


def test_splits_are_never_empty_from_three_ids() -> None:
    for ids in (3, 4, 10, 57):
        for fmt, shares in synth.SPLIT_SHARES.items():
            splits = synth.split_of_identities(fmt, ids)
            assert len(splits) == ids
            assert set(splits) == {name for name, _ in shares}
    assert synth.split_of_identities("cuhk-pedes", 1) == ["train"]
    assert synth.split_of_identities("cuhk-pedes", 10).count("test") == 2


def test_identities_have_distinct_attributes() -> None:
    people = synth.sample_identities(0, 400)
    assert len({p.identity_key() for p in people}) == 400
    assert {p.gender for p in people} == {"male", "female"}
    assert {p.upper_type for p in people} == set(synth.UPPER_TYPES["female"])
    assert {p.lower_colour for p in people} == set(synth.PALETTE)
    assert all((p.lower_colour == p.upper_colour) == (p.upper_type == "dress") for p in people)


def test_stats_counts_match_what_was_asked(tmp_path: Path) -> None:
    synth.synthesize(tmp_path / "d", format="cuhk-pedes", ids=10, views=3, seed=1)
    result = run_cli("stats", str(tmp_path / "d"), "--json")
    assert result.exit_code == 0, result.output
    splits = json.loads(result.stdout)["splits"]
    assert splits["total"] == {"ids": 10, "images": 30, "captions": 60}
    assert splits["train"] == {"ids": 7, "images": 21, "captions": 42}
    assert splits["val"] == {"ids": 1, "images": 3, "captions": 6}
    assert splits["test"] == {"ids": 2, "images": 6, "captions": 12}
    table = run_cli("stats", str(tmp_path / "d")).stdout.splitlines()
    assert table[1].split() == ["split", "ids", "images", "captions"]
    assert table[-1].split() == ["total", "10", "30", "60"]
    assert ["test", "2", "6", "12"] in [line.split() for line in table]

    synth.synthesize(tmp_path / "i", format="icfg-pedes", ids=8, views=2, seed=1)
    splits = json.loads(run_cli("stats", str(tmp_path / "i"), "--json").stdout)["splits"]
    assert set(splits) == {"train", "test", "total"}
    assert splits["total"] == {"ids": 8, "images": 16, "captions": 16}


# What each region's caption phrase looks like: "<colour> [one modifier] <noun>".
REGION_NOUNS = {
    "torso": ("upper_colour", r"t-shirt|shirt|sweater|jumper|pullover|jacket|coat|dress"),
    "legs": ("lower_colour", r"trousers|pants|jeans|shorts|skirt|dress"),
    "shoes": ("shoes_colour", r"shoes|sneakers"),
    "bag": ("handbag", r"handbag|bag"),
    "hat": ("hat", r"hat|cap"),
}


@pytest.mark.parametrize(
    ("format_name", "size"), [("rstpreid", (128, 64)), ("icfg-pedes", (64, 32))]
)
def test_caption_colours_match_the_pixels(format_name, size, tmp_path: Path) -> None:
    """The colour a caption names for a garment is the palette colour nearest to its pixels.

    The pixels are the mean over the region's ``sample`` box, with the view's lighting
    (gain and colour cast, kept in the ground truth) undone; 64x32 is the smallest size the
    demo models use.
    """
    dataset = synth.synthesize(
        tmp_path / "d", format=format_name, ids=40, views=2, seed=3, size=size
    )
    truth = json.loads((tmp_path / "d" / synth.ATTRIBUTES_FILE).read_text())
    assert truth["synthetic"] is True
    names = list(synth.PALETTE)
    palette = np.array([synth.PALETTE[n] for n in names], np.float64)
    colour_words = "|".join(names)
    checked = {region: 0 for region in REGION_NOUNS}
    for record in dataset.records:
        info = truth["images"][record.image_path]
        assert info["id"] == record.person_id
        pixels = cv2.imread(str(dataset.image_file(record)))[:, :, ::-1].astype(np.float64)
        gain, cast = info["view_params"]["gain"], np.array(info["view_params"]["cast"])
        for region, (attribute, nouns) in REGION_NOUNS.items():
            if region not in info["regions"]:
                assert info["attributes"][attribute] is None
                continue
            x, y, w, h = info["regions"][region]["sample"]
            mean = pixels[y : y + h, x : x + w].reshape(-1, 3).mean(axis=0)
            seen = names[int(np.argmin((((mean - cast) / gain - palette) ** 2).sum(axis=1)))]
            for caption in record.captions:
                said = re.findall(rf"\b({colour_words}) (?:[a-z-]+ )?(?:{nouns})\b", caption)
                assert said, (region, caption)
                assert set(said) == {seen}, (record.image_path, region, caption, mean)
            checked[region] += 1
    assert all(count >= 4 for count in checked.values()), checked


def test_regions_and_ground_truth_describe_the_image(tmp_path: Path) -> None:
    dataset = synth.synthesize(tmp_path / "d", ids=6, views=2, seed=5, size=(96, 48))
    truth = json.loads((tmp_path / "d" / synth.ATTRIBUTES_FILE).read_text())
    assert set(truth["images"]) == {r.image_path for r in dataset.records}
    assert truth["arguments"] == {"format": "cuhk-pedes", "ids": 6, "views": 2, "seed": 5,
                                  "size": [96, 48]}
    for info in truth["images"].values():
        regions = info["regions"]
        for name in ("head", "torso", "legs", "shoes"):
            x, y, w, h = regions[name]["box"]
            assert 0 <= x and 0 <= y and x + w <= 48 and y + h <= 96 and w > 0 and h > 0
        assert regions["head"]["box"][1] < regions["torso"]["box"][1] < regions["shoes"]["box"][1]
        for region in regions.values():
            if "sample" in region:  # the sample lies inside its region
                sx, sy, sw, sh = region["sample"]
                x, y, w, h = region["box"]
                assert x <= sx and y <= sy and sx + sw <= x + w and sy + sh <= y + h
    views = [truth["images"][r.image_path]["view_params"] for r in dataset.records[:2]]
    assert views[0] != views[1]
    assert (truth["images"][dataset.records[0].image_path]["attributes"]
            == truth["images"][dataset.records[1].image_path]["attributes"])


def test_reading_back_is_the_contract_dataset(tmp_path: Path) -> None:
    dataset = synth.synthesize(tmp_path / "d", ids=3, views=1)
    again = read_dataset(tmp_path / "d")
    assert dataset.records == again.records and dataset.root == tmp_path / "d"
