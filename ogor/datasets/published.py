"""A copy's counts against the published statistics of its dataset (``published_stats.json``).

The table is data, with its sources, so that a corrected count is a one-line change reviewed
against a citation. Besides the current release, a dataset may list known earlier versions
(the RSTPReid split before its authors corrected it): a copy is recognised as one when its
counts equal that version's, or, for a copy of another size (a subset, a synthetic copy), when
the share of ids in each split is nearer that version's than the current release's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ogor.datasets.base import SPLITS, Record

#: The counted quantities, in the order they are printed.
FIELDS: tuple[str, ...] = ("ids", "images", "captions")
Counts = Mapping[str, int]


@cache
def published_table() -> dict[str, Any]:
    """The parsed ``published_stats.json`` (read once)."""
    text = resources.files("ogor.datasets").joinpath("published_stats.json").read_text("utf-8")
    return json.loads(text)["datasets"]


def split_counts(records: Iterable[Record]) -> dict[str, dict[str, int]]:
    """Ids, distinct images and captions per split present, in split order."""
    ids: dict[str, set[int]] = {}
    images: dict[str, set[str]] = {}
    captions: dict[str, int] = {}
    for r in records:
        ids.setdefault(r.split, set()).add(r.person_id)
        images.setdefault(r.split, set()).add(r.image_path)
        captions[r.split] = captions.get(r.split, 0) + len(r.captions)
    order = sorted(ids, key=lambda s: (SPLITS.index(s) if s in SPLITS else 99, s))
    return {
        s: {"ids": len(ids[s]), "images": len(images[s]), "captions": captions[s]} for s in order
    }


def _n(value: int) -> str:
    return f"{value:,}"


def _describe(counts: Counts) -> str:
    return ", ".join(f"{_n(counts[f])} {f}" for f in FIELDS)


@dataclass(frozen=True)
class SplitComparison:
    """One split of a copy against the published table (``None``: absent on that side)."""

    split: str
    found: Counts | None
    published: Counts | None

    @property
    def matches(self) -> bool:
        return self.found is not None and self.published is not None and all(
            self.found[f] == self.published[f] for f in FIELDS
        )

    def line(self) -> str:
        """``train: matches (...)`` or what differs, one line."""
        if self.found is None:
            return f"{self.split}: missing (published: {_describe(self.published or {})})"
        if self.published is None:
            return f"{self.split}: not in the published dataset ({_describe(self.found)})"
        if self.matches:
            return f"{self.split}: matches ({_describe(self.found)})"
        diffs = [
            f"{_n(self.found[f])} {f} (published {_n(self.published[f])})"
            for f in FIELDS if self.found[f] != self.published[f]
        ]
        return f"{self.split}: differs: " + ", ".join(diffs)


@dataclass(frozen=True)
class KnownVersion:
    """An earlier release the copy was recognised as, and how to get the current one."""

    name: str
    fix: str
    exact: bool

    def line(self, dataset: str) -> str:
        how = "its counts are" if self.exact else "its split proportions (ids per split) match"
        return f"this looks like the {dataset} {self.name}: {how} that version's; fix: {self.fix}"


@dataclass(frozen=True)
class StatsComparison:
    """A copy against its dataset's published statistics."""

    dataset: str
    splits: tuple[SplitComparison, ...]
    old_version: KnownVersion | None

    @property
    def matches(self) -> bool:
        return all(s.matches for s in self.splits) and self.old_version is None

    def lines(self) -> list[str]:
        """Per split ``matches`` or what differs, then the recognised old version, if any."""
        head = f"{self.dataset} against the published statistics:"
        lines = [head, *(f"  {s.line()}" for s in self.splits)]
        if self.old_version is not None:
            lines.append(self.old_version.line(self.dataset))
        return lines


def _shares(counts: Mapping[str, Counts]) -> dict[str, float]:
    total = sum(c["ids"] for c in counts.values()) or 1
    return {s: c["ids"] / total for s, c in counts.items()}


def _distance(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    return sum(abs(a.get(s, 0.0) - b.get(s, 0.0)) for s in set(a) | set(b))


def _same_counts(found: Mapping[str, Counts], table: Mapping[str, Counts]) -> bool:
    return set(found) == set(table) and all(
        found[s][f] == table[s][f] for s in table for f in FIELDS
    )


def recognise_version(
    found: Mapping[str, Counts], entry: Mapping[str, Any]
) -> KnownVersion | None:
    """The known earlier version a copy is, by its exact counts or its split proportions."""
    current = entry["splits"]
    if _same_counts(found, current):
        return None
    for name, version in entry.get("versions", {}).items():
        if _same_counts(found, version["splits"]):
            return KnownVersion(name, version["fix"], exact=True)
    shares = _shares(found)
    best: KnownVersion | None = None
    best_distance = _distance(shares, _shares(current))
    for name, version in entry.get("versions", {}).items():
        theirs = _shares(version["splits"])
        distance = _distance(shares, theirs)
        # Nearer than the current release, and within half the gap between the two releases.
        if distance < best_distance and distance < 0.5 * _distance(theirs, _shares(current)):
            best, best_distance = KnownVersion(name, version["fix"], exact=False), distance
    return best


def compare_with_published(
    dataset: str, found: Mapping[str, Counts]
) -> StatsComparison | None:
    """Compare per-split counts of a copy of ``dataset``; ``None`` when nothing is published."""
    entry = published_table().get(dataset)
    if entry is None:
        return None
    published: Mapping[str, Counts] = entry["splits"]
    order = [s for s in SPLITS if s in published or s in found]
    order += sorted(set(found) - set(order))
    splits = tuple(SplitComparison(s, found.get(s), published.get(s)) for s in order)
    return StatsComparison(dataset, splits, recognise_version(found, entry))
