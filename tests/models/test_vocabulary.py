"""The word vocabulary: splitting, ordering, ids, JSON round trip, the trainer's hook."""

from __future__ import annotations

import json

import pytest
import torch

from models.encoders.vocabulary import PAD_ID, UNKNOWN_ID, Vocabulary, split_words
from models.errors import ModelError
from models.registry import requires_vocabulary, with_vocabulary


def test_split_words_drops_punctuation_keeps_inner_marks() -> None:
    assert split_words("A man, in a T-shirt. He's 30!") == [
        "a", "man", "in", "a", "t-shirt", "he's", "30"]
    assert split_words("  ...  ") == []


def test_from_captions_orders_by_count_then_alphabet_and_applies_min_count() -> None:
    captions = ["a red bag", "A blue bag.", "a bag, red shoes"]
    vocab = Vocabulary.from_captions(captions)
    # counts: a 3, bag 3, red 2, blue 1, shoes 1
    assert vocab.words == ("a", "bag", "red", "blue", "shoes")
    assert len(vocab) == 7  # pad + unknown + 5 words
    assert Vocabulary.from_captions(captions, min_count=2).words == ("a", "bag", "red")
    assert Vocabulary.from_captions(captions, max_size=2).words == ("a", "bag")


def test_encode_pads_marks_unknown_and_cuts() -> None:
    vocab = Vocabulary(["a", "bag", "red"])
    ids = vocab.encode(["a red bag", "a green hat", ""])
    # a=2 bag=3 red=4; green, hat unknown (1); the empty caption is one padding position
    assert ids.tolist() == [[2, 4, 3], [2, UNKNOWN_ID, UNKNOWN_ID], [PAD_ID, PAD_ID, PAD_ID]]
    assert ids.dtype == torch.long
    assert vocab.encode(["a red bag"], max_length=2).tolist() == [[2, 4]]
    assert vocab.encode([""]).shape == (1, 1)
    assert vocab.decode([2, 1, 4, 0]) == ["a", "<unk>", "red"]


def test_json_round_trip_and_validation() -> None:
    vocab = Vocabulary.from_captions(["a man in a coat", "a woman"])
    again = Vocabulary.from_json(json.loads(json.dumps(vocab.to_json())))
    assert again == vocab and again.encode(["a coat"]).equal(vocab.encode(["a coat"]))
    with pytest.raises(ModelError, match="twice"):
        Vocabulary(["a", "a"])
    with pytest.raises(ModelError, match="not a single lower-case word"):
        Vocabulary(["Two words"])


def test_models_without_words_are_left_alone() -> None:
    assert not requires_vocabulary("mgcc")
    options = {"backbone": "tiny"}
    assert with_vocabulary("mgcc", options, ["a man"]) == options
