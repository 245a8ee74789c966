"""Which images of a dataset get an occluder.

Two rules, one per protocol:

* :func:`select_paper`: in every split exactly ``round(ratio * n)`` images (round half up), spread
  over identities in proportion to their image count by the largest-remainder method, the views
  within an identity drawn at random. Ties between equal remainders are broken by a seeded random
  order of the identities, so no identity is favoured for its number. Images and identities are
  sorted first and every split has its own seeded stream, so the choice depends only on the seed
  and on *which* images exist, never on record order.
* :func:`select_first_of_runs`: the released MGCC code's rule, the first image of each run of equal
  ids in annotation order.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ogor.datasets.base import SPLITS, Record
from toreid.io import stable_seed


@dataclass(frozen=True)
class ImageItem:
    """One distinct image of a dataset (several records may share an image).

    Attributes:
        path: image path relative to ``imgs/``, as in the annotation file.
        split: the split of its first record.
        person_id: its id.
        order: index of its first record in the annotation file.
    """

    path: str
    split: str
    person_id: int
    order: int


def collect_images(records: Iterable[Record]) -> list[ImageItem]:
    """The distinct images of ``records`` in annotation order (first record of each path wins)."""
    seen: dict[str, ImageItem] = {}
    for index, record in enumerate(records):
        if record.image_path not in seen:
            seen[record.image_path] = ImageItem(
                record.image_path, record.split, record.person_id, index
            )
    return list(seen.values())


def target_count(ratio: float, n: int) -> int:
    """``round(ratio * n)`` with halves rounded up (Python's ``round`` would round 2.5 to 2)."""
    return min(n, math.floor(ratio * n + 0.5))


def largest_remainder(total: int, weights: Sequence[int], rng: np.random.Generator) -> list[int]:
    """Split ``total`` over ``weights`` in proportion, in integers, by the largest-remainder method.

    Exact integer arithmetic (``total * w // sum``); equal remainders are ordered by a random
    permutation drawn from ``rng``. Each share is at most its weight when ``total <= sum(weights)``.
    """
    whole = sum(weights)
    if whole == 0 or total == 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    left = total - sum(shares)
    tie_order = rng.permutation(len(weights))
    ranked = sorted(range(len(weights)), key=lambda i: (-remainders[i], int(tie_order[i])))
    for i in ranked[:left]:
        shares[i] += 1
    return shares


def select_paper(images: Sequence[ImageItem], ratio: float, seed: int) -> set[str]:
    """The paper protocol's selection: per split, round(ratio * n) images spread over identities."""
    by_split: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for item in images:
        by_split[item.split][item.person_id].append(item.path)
    selected: set[str] = set()
    for split in sorted(by_split, key=_split_order):
        identities = by_split[split]
        ids = sorted(identities)
        views = [sorted(identities[pid]) for pid in ids]
        n = sum(len(v) for v in views)
        rng = np.random.default_rng(stable_seed(seed, f"select/{split}"))
        shares = largest_remainder(target_count(ratio, n), [len(v) for v in views], rng)
        for paths, k in zip(views, shares, strict=True):
            if k:
                chosen = rng.choice(len(paths), size=k, replace=False)
                selected.update(paths[int(i)] for i in chosen)
    return selected


def select_first_of_runs(images: Sequence[ImageItem]) -> set[str]:
    """The released code's rule: the first image of each run of equal ids in annotation order."""
    selected: set[str] = set()
    previous: int | None = None
    for item in sorted(images, key=lambda i: i.order):
        if item.person_id != previous:
            selected.add(item.path)
        previous = item.person_id
    return selected


def _split_order(split: str) -> tuple[int, str]:
    return (SPLITS.index(split) if split in SPLITS else len(SPLITS), split)
