"""The corruption library: image corruptions grow with severity, text perturbations always bite,
both are seeded, and the severity table is the one source of their numbers."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.evaluation.corruptions.image import corrupt_image
from benchmark.evaluation.corruptions.table import (
    list_corruptions,
    load_table,
    parse_corruptions,
    parse_severities,
)
from benchmark.evaluation.corruptions.text import (
    PERTURBATIONS,
    attribute_phrases,
    load_vocabulary,
    perturb_caption,
    tokenize,
)
from toreid.errors import ToreidError

IMAGE = [c.split(":")[1] for c in list_corruptions("image")]
TEXT = [c.split(":")[1] for c in list_corruptions("text")]
#: Corruptions that draw random numbers (the rest are deterministic at a fixed severity).
RANDOM_IMAGE = ("motion_blur", "sensor_noise", "low_light", "fog", "rain")
CAPTIONS = (
    "A young woman with long brown hair, wearing a red zip-up jacket, blue jeans and white "
    "sneakers. She carries a black handbag.",
    "The man has a shaved head.",
    "walking",
)


@pytest.fixture(scope="module")
def person() -> np.ndarray:
    """A fixed smooth 'photo' with edges and mid-tones (blur, light and noise all show on it)."""
    import cv2

    rng = np.random.default_rng(0)
    small = (rng.random((24, 12, 3)) * 255).astype(np.uint8)
    image = cv2.resize(small, (64, 128), interpolation=cv2.INTER_NEAREST)
    image = cv2.GaussianBlur(image, (0, 0), 1.5)
    return cv2.normalize(image, None, 30, 220, cv2.NORM_MINMAX)


def test_the_table_covers_the_issue_list():
    assert set(IMAGE) >= {"low_resolution", "motion_blur", "defocus_blur", "sensor_noise", "jpeg",
                          "low_light", "over_exposure", "fog", "rain", "colour_cast"}
    assert set(TEXT) == set(PERTURBATIONS)
    for modality in ("image", "text"):
        for entry in load_table()[modality].values():
            assert len(entry["severities"]) == 5 and entry["about"]


@pytest.mark.parametrize("name", IMAGE)
def test_image_corruption_grows_with_severity(person, name):
    distance = [np.abs(corrupt_image(person, name, s, 0, "test/a.jpg").astype(float) -
                       person).mean() for s in range(1, 6)]
    assert all(b > a for a, b in zip(distance, distance[1:], strict=False)), distance
    assert distance[0] > 0
    assert corrupt_image(person, name, 0, 0, "test/a.jpg") is person


@pytest.mark.parametrize("name", IMAGE)
def test_image_corruption_is_seeded(person, name):
    once = corrupt_image(person, name, 3, 7, "test/a.jpg")
    assert once.shape == person.shape and once.dtype == np.uint8
    assert np.array_equal(once, corrupt_image(person, name, 3, 7, "test/a.jpg"))
    other = corrupt_image(person, name, 3, 8, "test/a.jpg")
    assert (not np.array_equal(once, other)) == (name in RANDOM_IMAGE)


@pytest.mark.parametrize("name", TEXT)
@pytest.mark.parametrize("caption", CAPTIONS)
def test_text_perturbation_changes_every_severity(name, caption):
    assert perturb_caption(name, 0, caption, 0, "k").text == caption
    for severity in range(1, 6):
        out = perturb_caption(name, severity, caption, 0, "k")
        assert out.text != caption and out.text.strip(), (severity, out)
        assert out == perturb_caption(name, severity, caption, 0, "k")


def test_text_perturbations_are_seeded_and_do_what_they_say():
    caption = CAPTIONS[0]
    for name in TEXT:  # different seeds differ, except for the cut, which draws nothing
        texts = {perturb_caption(name, 2, caption, s, "k").text for s in range(6)}
        assert (len(texts) > 1) == (name != "shorter"), name
    colours = set(load_vocabulary().colours)
    swapped = perturb_caption("misremembered_colour", 1, caption, 0, "k")
    before, after = tokenize(caption), tokenize(swapped.text)
    diff = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(diff) == 1 and diff[0][0] in colours and diff[0][1] in colours
    forgot = perturb_caption("forgotten_attribute", 1, caption, 0, "k")
    assert forgot.fallback is None and len(tokenize(forgot.text)) < len(before)
    short = perturb_caption("shorter", 1, caption, 0, "k").text
    assert short == caption.split(". ")[0] + "."  # severity 1: the first sentence
    # Nothing to act on: a fallback to typos, recorded.
    assert perturb_caption("misremembered_colour", 2, "The man walks.", 0, "k").fallback == "typos"


def test_attribute_phrases_take_the_whole_noun_phrase():
    tokens = tokenize("wearing a red zip-up jacket and black shoes, brown hair")
    spans = [" ".join(tokens[a:b]) for a, b in attribute_phrases(tokens, load_vocabulary())]
    assert spans == ["a red zip-up jacket", "black shoes", "brown"]


def test_options_parse_or_fail_in_one_line():
    assert parse_corruptions("image:fog,text:typos") == ("image:fog", "text:typos")
    assert parse_corruptions("all") == tuple(list_corruptions())
    assert parse_corruptions("text") == tuple(f"text:{n}" for n in TEXT)
    assert parse_severities("all") == (1, 2, 3, 4, 5)
    assert parse_severities("5,1,3") == (1, 3, 5)
    with pytest.raises(ToreidError, match="unknown corruption 'image:snow'.*valid: all"):
        parse_corruptions("image:snow")
    with pytest.raises(ToreidError, match="outside 1-5"):
        parse_severities("0,2")


def test_docs_show_the_table():
    """docs/corruptions.md carries the table's numbers (regenerate it when the table changes)."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "corruptions.md").read_text()
    table = load_table()
    for modality in ("image", "text"):
        for name, entry in table[modality].items():
            row = next(line for line in doc.splitlines() if line.startswith(f"| `{name}` |"))
            assert entry["about"] in row, name
            assert len(row.split(" | ")) == 7, name
    assert "| `low_resolution` |" in doc and "scale_range=0.12" in doc
    assert "mRR@1" in doc
