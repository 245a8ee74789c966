"""A word vocabulary built from training captions, for word-embedding text encoders (Bi-LSTM,
Dual-Path's text CNN).

Words: a caption is lower-cased and split into runs of letters and digits, keeping inner
apostrophes and hyphens ("t-shirt", "man's"); every other character (punctuation, spaces)
separates words and is dropped. So "A man, in a T-shirt." -> ["a", "man", "in", "a", "t-shirt"].

Ids: 0 is padding, 1 is an unknown word (below the minimum count, or unseen in training); the
words follow from id 2, most frequent first (ties alphabetical), so the same captions always give
the same ids.

How a model gets one (and keeps it): the word list is a field of the model config
(``vocabulary``). ``bench run`` builds it from the train split's captions before building a
model whose class sets ``requires_vocabulary = True`` (see :func:`models.registry.with_vocabulary`),
so the run's ``config.json`` carries it and ``build_model_from_config`` (``bench eval``,
``bench query``, ``rebuild_from_run``) rebuilds the same tokenizer and embedding table.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from models.errors import ModelError

PAD_ID = 0
UNKNOWN_ID = 1
NUM_SPECIAL = 2
_WORD = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*")


def split_words(text: str) -> list[str]:
    """The words of a caption (lower case, punctuation dropped; see the module docstring)."""
    return _WORD.findall(text.lower())


class Vocabulary:
    """Words -> ids (``PAD_ID`` 0, ``UNKNOWN_ID`` 1, words from 2).

    Args:
        words: the word list in id order (id of ``words[k]`` is ``k + 2``); no duplicates.
    """

    def __init__(self, words: Sequence[str]) -> None:
        words = [str(w) for w in words]
        seen: set[str] = set()
        for word in words:
            if word in seen:
                raise ModelError(f"vocabulary lists the word '{word}' twice")
            if not word or split_words(word) != [word]:
                raise ModelError(f"vocabulary entry {word!r} is not a single lower-case word")
            seen.add(word)
        self.words: tuple[str, ...] = tuple(words)
        self._ids = {w: i + NUM_SPECIAL for i, w in enumerate(self.words)}

    @classmethod
    def from_captions(cls, captions: Iterable[str], min_count: int = 1,
                      max_size: int | None = None) -> Vocabulary:
        """The words seen at least ``min_count`` times, most frequent first (ties alphabetical),
        at most ``max_size`` of them."""
        if min_count < 1:
            raise ModelError(f"min_count must be at least 1, got {min_count}")
        counts = Counter(w for caption in captions for w in split_words(caption))
        ranked = sorted((w for w, c in counts.items() if c >= min_count),
                        key=lambda w: (-counts[w], w))
        if max_size is not None:
            ranked = ranked[:max_size]
        return cls(ranked)

    def __len__(self) -> int:
        """Number of ids, specials included (the embedding table's size)."""
        return len(self.words) + NUM_SPECIAL

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.words == other.words

    def __hash__(self) -> int:
        return hash(self.words)

    def to_json(self) -> list[str]:
        """The JSON form: the word list (specials are implicit)."""
        return list(self.words)

    @classmethod
    def from_json(cls, words: Sequence[str]) -> Vocabulary:
        return cls(words)

    def ids(self, text: str) -> list[int]:
        """The ids of a caption's words (unknown words -> ``UNKNOWN_ID``)."""
        return [self._ids.get(w, UNKNOWN_ID) for w in split_words(text)]

    def encode(self, texts: Sequence[str], max_length: int | None = None) -> Tensor:
        """Ids ``[B, L]`` right-padded with ``PAD_ID``, ``L`` the longest caption of the batch
        (after cutting at ``max_length`` words), at least 1 so an empty caption is a row of
        padding."""
        rows = [self.ids(t) for t in texts]
        if max_length is not None:
            rows = [r[:max_length] for r in rows]
        width = max([len(r) for r in rows] + [1])
        out = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        return out

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words of an id row, padding skipped, unknown shown as ``<unk>``."""
        out = []
        for i in ids:
            i = int(i)
            if i == PAD_ID:
                continue
            out.append("<unk>" if i == UNKNOWN_ID else self.words[i - NUM_SPECIAL])
        return out


# A small fixed word list for tiny test configurations (a real run fits its own).
TINY_WORDS: tuple[str, ...] = (
    "a", "the", "and", "with", "in", "of", "is", "man", "woman", "child", "person", "wearing",
    "shirt", "jeans", "trousers", "coat", "jacket", "dress", "skirt", "shoes", "hair", "bag",
    "cap", "hat", "red", "blue", "black", "white", "grey", "yellow", "green", "long", "short",
    "old", "young", "carrying", "walking", "stick", "backpack",
)
