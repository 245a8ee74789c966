"""Near-duplicate detection for cutouts of one class.

Photo collections repeat themselves: the same parked car in consecutive street frames, the same
bench from two steps apart. A library of four instances per class is worth little if two are the
same object, so candidates are compared by a small signature: the cutout resized to 16 x 16,
with its alpha and its alpha-weighted grey level side by side. Two cutouts are near-duplicates
when their signatures differ by less than ``threshold`` on average (values scaled to 0..1) and
their aspect ratios agree within 15 %; the shape term (alpha) catches the same object at another
size, the grey term keeps two differently textured objects of the same outline apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

SIGNATURE_SIDE = 16
DEFAULT_THRESHOLD = 0.06
_ASPECT_TOLERANCE = 0.15


def signature(rgba: np.ndarray) -> np.ndarray:
    """A 2 x 16 x 16 uint8 signature of an RGBA cutout (alpha; alpha-weighted grey)."""
    alpha = rgba[..., 3].astype(np.float32) / 255.0
    grey = cv2.cvtColor(np.ascontiguousarray(rgba[..., :3]), cv2.COLOR_RGB2GRAY)
    weighted = grey.astype(np.float32) * alpha
    size = (SIGNATURE_SIDE, SIGNATURE_SIDE)
    small_alpha = cv2.resize(alpha * 255.0, size, interpolation=cv2.INTER_AREA)
    small_grey = cv2.resize(weighted, size, interpolation=cv2.INTER_AREA)
    return np.rint(np.stack([small_alpha, small_grey])).clip(0, 255).astype(np.uint8)


def signature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two signatures, scaled to 0..1."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) / 255.0


def keep_distinct(
    signatures: Sequence[np.ndarray],
    aspects: Sequence[float],
    threshold: float = DEFAULT_THRESHOLD,
    limit: int | None = None,
) -> list[int]:
    """Greedy pass over candidates already sorted best first; indices of those kept.

    A candidate is kept unless it is a near-duplicate of one already kept, so of each group of
    duplicates the best-ranked one survives. Stops early once ``limit`` are kept.
    """
    kept: list[int] = []
    kept_sigs: list[np.ndarray] = []
    kept_log_aspects: list[float] = []
    tolerance = np.log1p(_ASPECT_TOLERANCE)
    for index, (sig, aspect) in enumerate(zip(signatures, aspects, strict=True)):
        if limit is not None and len(kept) >= limit:
            break
        flat = sig.reshape(-1).astype(np.int16)
        log_aspect = float(np.log(aspect))
        if threshold > 0 and kept:
            # Compare with every kept candidate at once (see the module docstring for the rule).
            distances = np.abs(np.stack(kept_sigs) - flat).mean(axis=1) / 255.0
            similar_shape = np.abs(np.asarray(kept_log_aspects) - log_aspect) <= tolerance
            if np.any(similar_shape & (distances < threshold)):
                continue
        kept.append(index)
        kept_sigs.append(flat)
        kept_log_aspects.append(log_aspect)
    return kept
