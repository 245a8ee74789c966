"""Witness-text perturbations of the queries: what a real description gets wrong.

A query in the field is a witness's memory, typed in a hurry: misspelt, with words missing, an
attribute forgotten or remembered in the wrong colour, cut short, a garment named by another word.
Each perturbation here is a pure function of (caption, severity, its own random stream); the
parameters of each severity live in ``severities.json`` (section ``text``) and the words acted on
in ``witness_vocabulary.json``, so both can be read and changed without touching code.

Contract (tested): severity 0 returns the caption unchanged; every severity >= 1 changes it. When
a caption holds nothing a perturbation can act on (no colour word to misremember, say), it falls
back to keyboard typos at the same severity, and the fallback is recorded with the caption.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from toreid.errors import ToreidError
from toreid.io import stable_seed

HERE = Path(__file__).resolve().parent
VOCABULARY_FILE = HERE / "witness_vocabulary.json"
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*|[^\sA-Za-z0-9]")
_SENTENCE_END = {".", "!", "?", ";"}
_NO_SPACE_BEFORE = {".", ",", ";", ":", "!", "?", ")"}


@dataclass(frozen=True)
class Vocabulary:
    """The witness vocabulary (``witness_vocabulary.json``) as sets for matching."""

    colours: tuple[str, ...]
    garments: frozenset[str]
    objects: frozenset[str]
    phrase_starts: frozenset[str]
    modifiers: frozenset[str]
    synonyms: dict[str, tuple[str, ...]]
    neighbours: dict[str, str]


@lru_cache(maxsize=4)
def load_vocabulary(path: Path = VOCABULARY_FILE) -> Vocabulary:
    """Read the vocabulary; a missing field is a one-line error naming the file and field."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ToreidError(f"{path}: cannot read the witness vocabulary ({exc})") from None
    for key in ("colours", "garments", "objects", "phrase_starts", "modifiers", "synonyms",
                "keyboard"):
        if key not in data:
            raise ToreidError(f"{path}: field '{key}': missing")
    rows = data["keyboard"]
    neighbours: dict[str, str] = {}
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            near = [row[c - 1] if c > 0 else "", row[c + 1] if c + 1 < len(row) else ""]
            for other in (rows[r - 1] if r > 0 else "", rows[r + 1] if r + 1 < len(rows) else ""):
                near += [other[k] for k in (c - 1, c, c + 1) if 0 <= k < len(other)]
            neighbours[ch] = "".join(sorted(set(n for n in near if n)))
    return Vocabulary(
        colours=tuple(w.lower() for w in data["colours"]),
        garments=frozenset(w.lower() for w in data["garments"]),
        objects=frozenset(w.lower() for w in data["objects"]),
        phrase_starts=frozenset(w.lower() for w in data["phrase_starts"]),
        modifiers=frozenset(w.lower() for w in data["modifiers"]),
        synonyms={k.lower(): tuple(v) for k, v in data["synonyms"].items()},
        neighbours=neighbours,
    )


def tokenize(text: str) -> list[str]:
    """Words (letters, digits, inner ``'`` and ``-``) and single punctuation marks."""
    return _TOKEN.findall(text)


def detokenize(tokens: Sequence[str]) -> str:
    out = ""
    for token in tokens:
        if out and token not in _NO_SPACE_BEFORE and not out.endswith("("):
            out += " "
        out += token
    return out


def _is_word(token: str) -> bool:
    return token[0].isalnum()


def _words(tokens: Sequence[str]) -> list[int]:
    return [i for i, t in enumerate(tokens) if _is_word(t)]


def _head(token: str) -> str:
    """The word a vocabulary lookup uses: the whole token in lower case (hyphenated words such
    as ``t-shirt`` and ``zip-up`` are listed whole in the vocabulary)."""
    return token.lower()


def _pick(rng: np.random.Generator, items: Sequence[int], n: int) -> list[int]:
    n = max(0, min(n, len(items)))
    return sorted(int(items[k]) for k in rng.choice(len(items), size=n, replace=False))


def _count(share: float, total: int) -> int:
    return max(1, int(round(share * total)))


def _match_case(new: str, old: str) -> str:
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def typos(tokens: list[str], rng: np.random.Generator, p: dict[str, Any],
          vocab: Vocabulary) -> list[str] | None:
    """One keyboard slip in each of a share of the words: a letter swapped for a neighbour key,
    a neighbour key struck too, or a letter left out (words of 3+ letters)."""
    words = [i for i in _words(tokens) if any(c.isalpha() for c in tokens[i])]
    if not words:
        return None
    out = list(tokens)
    for i in _pick(rng, words, _count(p["share"], len(words))):
        word = out[i]
        letters = [k for k, c in enumerate(word) if c.lower() in vocab.neighbours]
        if not letters:
            letters = [k for k, c in enumerate(word) if c.isalpha()]
        k = letters[int(rng.integers(len(letters)))]
        near = vocab.neighbours.get(word[k].lower(), "e")
        key = near[int(rng.integers(len(near)))]
        op = int(rng.integers(3)) if len(word) >= 3 else int(rng.integers(2))
        if op == 0:
            out[i] = word[:k] + key + word[k + 1:]
        elif op == 1:
            out[i] = word[:k + 1] + key + word[k + 1:]
        else:
            out[i] = word[:k] + word[k + 1:]
    return out


def dropped_words(tokens: list[str], rng: np.random.Generator, p: dict[str, Any],
                  vocab: Vocabulary) -> list[str] | None:
    """A share of the words left out (never all of them)."""
    words = _words(tokens)
    if len(words) < 2:
        return None
    gone = set(_pick(rng, words, min(_count(p["share"], len(words)), len(words) - 1)))
    return [t for i, t in enumerate(tokens) if i not in gone]


def attribute_phrases(tokens: Sequence[str], vocab: Vocabulary) -> list[tuple[int, int]]:
    """Spans ``[start, end)`` of attribute phrases: ``[article] colour/modifier* noun`` for a
    garment or carried object, and each colour word outside such a phrase."""
    spans: list[tuple[int, int]] = []
    covered: set[int] = set()
    colours = set(vocab.colours)
    for i, token in enumerate(tokens):
        if _head(token) in vocab.garments or _head(token) in vocab.objects:
            start = i
            while start > 0 and start - 1 not in covered and (
                    _head(tokens[start - 1]) in colours or
                    _head(tokens[start - 1]) in vocab.modifiers or tokens[start - 1] == ","):
                start -= 1
            while start < i and tokens[start] == ",":
                start += 1
            if (start > 0 and start - 1 not in covered and
                    _head(tokens[start - 1]) in vocab.phrase_starts):
                start -= 1
            spans.append((start, i + 1))
            covered.update(range(start, i + 1))
    for i, token in enumerate(tokens):
        if i not in covered and _head(token) in colours:
            spans.append((i, i + 1))
    return sorted(spans)


def forgotten_attribute(tokens: list[str], rng: np.random.Generator, p: dict[str, Any],
                        vocab: Vocabulary) -> list[str] | None:
    """Whole attribute phrases removed ("a red backpack", "black"), as a witness forgets them."""
    spans = attribute_phrases(tokens, vocab)
    if not spans or len(_words(tokens)) < 2:
        return None
    chosen = _pick(rng, list(range(len(spans))), p["count"])
    gone = {k for c in chosen for k in range(*spans[c])}
    out = [t for i, t in enumerate(tokens) if i not in gone]
    return out if _words(out) else None


def misremembered_colour(tokens: list[str], rng: np.random.Generator, p: dict[str, Any],
                         vocab: Vocabulary) -> list[str] | None:
    """Colour words each swapped for a different colour of the vocabulary."""
    where = [i for i, t in enumerate(tokens) if _head(t) in vocab.colours]
    if not where:
        return None
    out = list(tokens)
    for i in _pick(rng, where, p["count"]):
        others = [c for c in vocab.colours if c != _head(out[i])]
        out[i] = _match_case(others[int(rng.integers(len(others)))], out[i])
    return out


def shorter(tokens: list[str], rng: np.random.Generator, p: dict[str, Any],
            vocab: Vocabulary) -> list[str] | None:
    """The first words only (a share ``keep``; severity 1 also stops at the first sentence)."""
    words = _words(tokens)
    if len(words) < 2:
        return None
    keep = max(1, min(len(words) - 1, math.ceil(p["keep"] * len(words))))
    end = words[keep - 1] + 1
    if p.get("first_sentence"):
        stops = [i for i, t in enumerate(tokens) if t in _SENTENCE_END and i > words[0]]
        if stops and stops[0] < end:
            end = stops[0]
    out = tokens[:end]
    if end < len(tokens) and tokens[end] in _SENTENCE_END:
        out = out + [tokens[end]]
    elif tokens and tokens[-1] in _SENTENCE_END:
        out = out + [tokens[-1]]
    return out


def garment_synonyms(tokens: list[str], rng: np.random.Generator, p: dict[str, Any],
                     vocab: Vocabulary) -> list[str] | None:
    """Garment, object and person words said another way ("jacket" -> "coat")."""
    where = [i for i, t in enumerate(tokens) if _head(t) in vocab.synonyms]
    if not where:
        return None
    out = list(tokens)
    for i in _pick(rng, where, _count(p["share"], len(where))):
        options = vocab.synonyms[_head(out[i])]
        out[i] = _match_case(options[int(rng.integers(len(options)))], out[i])
    return out


PERTURBATIONS = {
    "typos": typos, "dropped_words": dropped_words, "forgotten_attribute": forgotten_attribute,
    "misremembered_colour": misremembered_colour, "shorter": shorter,
    "garment_synonyms": garment_synonyms,
}


@dataclass(frozen=True)
class PerturbedCaption:
    """What the model saw for one query: the text, and the perturbation that made it when the
    named one had nothing to act on (``fallback``)."""

    text: str
    fallback: str | None = None


def perturb_caption(kind: str, severity: int, caption: str, seed: int, key: str,
                    table: dict[str, Any] | None = None) -> PerturbedCaption:
    """The caption under ``kind`` at ``severity``; its random stream depends on (seed, kind,
    severity, key) only, so the result never depends on order.

    Args:
        key: a stable name of the caption, e.g. ``test/<image path>/<caption index>``.
    """
    from benchmark.evaluation.corruptions.table import severity_params

    if severity == 0:
        return PerturbedCaption(caption)
    params = severity_params("text", kind, severity, table)
    vocab = load_vocabulary()
    rng = np.random.default_rng(stable_seed(seed, f"text/{kind}/{severity}/{key}"))
    tokens = tokenize(caption)
    out = PERTURBATIONS[kind](tokens, rng, params, vocab)
    fallback = None
    if out is None or detokenize(out) == detokenize(tokens):
        fallback = "typos"
        typo_params = severity_params("text", "typos", severity, table)
        out = typos(tokens, rng, typo_params, vocab)
    text = detokenize(out) if out is not None else caption
    if text == caption and out is not None:  # only spacing differed: force a visible change
        out = typos(tokens, rng, severity_params("text", "typos", severity, table), vocab)
        text, fallback = detokenize(out), "typos"
    return PerturbedCaption(text, fallback)
