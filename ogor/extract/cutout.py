"""Pure functions that turn one instance mask into an RGBA cutout, and decide if it is usable.

Nothing here reads files or knows about detectors: the pipeline calls :func:`assess` on every
mask, keeps the accepted ones, and calls :func:`cut_out` on them.

Feathering choice: the alpha edge is softened *inwards only*. The alpha channel is blurred with
a Gaussian and then clipped by the hard mask (``min(blurred, mask)``), so no pixel outside the
mask ever becomes visible. Blurring outwards would paint background pixels that the detector
said are not part of the object (a halo of road or wall around a bench), which is exactly the
artefact an occluder library must not carry into person images.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Why an instance was rejected; the pipeline counts these for the summary.
REJECT_EMPTY = "empty"
REJECT_TRUNCATED = "truncated"
REJECT_SMALL = "small"
REJECT_LOW_SCORE = "low_score"
REJECT_FRAGMENTED = "fragmented"
REJECT_UNMAPPED = "not_an_occlusion_class"
REJECT_DUPLICATE = "near_duplicate"
REJECT_OVER_CAP = "over_per_class_cap"


@dataclass(frozen=True)
class CutoutFilter:
    """Thresholds that decide whether a detected instance becomes a library candidate.

    Attributes:
        min_score: lowest detector score accepted (ground truth scores 1.0).
        min_area: fewest mask pixels; tiny instances blow up into blocky occluders.
        min_side: shortest side of the tight box, in pixels.
        border_margin: a mask pixel closer than this to the image edge means the object is cut
            off by the frame (a truncated car pasted on a person looks like a wall).
        min_component_share: the largest connected component must hold at least this share of
            the mask area; lower means a fragmented mask (several pieces, or specks).
    """

    min_score: float = 0.7
    min_area: int = 1024
    min_side: int = 24
    border_margin: int = 1
    min_component_share: float = 0.9


@dataclass(frozen=True)
class Assessment:
    """The verdict on one mask: accepted or the reason why not, and the measures behind it."""

    reason: str | None  # None when accepted
    box: tuple[int, int, int, int]  # x, y, w, h of the tight box (0s when empty)
    area: int
    component_share: float
    quality: float

    @property
    def accepted(self) -> bool:
        return self.reason is None


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box ``(x, y, w, h)`` around the True pixels; all zero for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return 0, 0, 0, 0
    y0, y1 = int(rows[0]), int(rows[-1])
    x0, x1 = int(cols[0]), int(cols[-1])
    return x0, y0, x1 - x0 + 1, y1 - y0 + 1


def touches_border(mask: np.ndarray, margin: int = 1) -> bool:
    """Whether any mask pixel lies within ``margin`` pixels of the image edge."""
    if margin <= 0:
        return False
    height, width = mask.shape
    x, y, w, h = mask_box(mask)
    if w == 0:
        return False
    return x < margin or y < margin or x + w > width - margin or y + h > height - margin


def largest_component_share(mask: np.ndarray) -> float:
    """Share of the mask area held by its largest 8-connected component (1.0 = one piece)."""
    area = int(mask.sum())
    if area == 0:
        return 0.0
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return 0.0
    return float(stats[1:, cv2.CC_STAT_AREA].max()) / area


def quality_score(score: float, area: int, component_share: float) -> float:
    """A ranking key for candidates of one class: higher is a better occluder.

    The detector's confidence, times how much of the mask is one piece, times a size factor
    that saturates at 128 x 128 pixels: bigger instances down-scale cleanly onto person crops,
    while beyond that size the detail no longer matters.
    """
    size_factor = min(1.0, float(np.sqrt(area)) / 128.0)
    return float(score) * float(component_share) * size_factor


def assess(mask: np.ndarray, score: float, rules: CutoutFilter) -> Assessment:
    """Measure a mask and apply the rules, cheapest tests first."""
    box = mask_box(mask)
    area = int(mask.sum())
    if area == 0:
        return Assessment(REJECT_EMPTY, box, 0, 0.0, 0.0)
    if score < rules.min_score:
        return Assessment(REJECT_LOW_SCORE, box, area, 0.0, 0.0)
    if area < rules.min_area or min(box[2], box[3]) < rules.min_side:
        return Assessment(REJECT_SMALL, box, area, 0.0, 0.0)
    if touches_border(mask, rules.border_margin):
        return Assessment(REJECT_TRUNCATED, box, area, 0.0, 0.0)
    share = largest_component_share(mask)
    if share < rules.min_component_share:
        return Assessment(REJECT_FRAGMENTED, box, area, share, 0.0)
    return Assessment(None, box, area, share, quality_score(score, area, share))


def feather_alpha(alpha: np.ndarray, sigma: float) -> np.ndarray:
    """Soften the edge of an alpha channel inwards only (see the module docstring).

    Args:
        alpha: H x W uint8, 255 inside the mask and 0 outside.
        sigma: Gaussian standard deviation in pixels; 0 returns ``alpha`` unchanged.
    """
    if sigma <= 0:
        return alpha
    # Pad with zeros so the frame of the crop counts as outside the mask: an object edge lying
    # on the crop border gets feathered like any other edge.
    pad = int(np.ceil(3 * sigma)) + 1
    padded = np.pad(alpha, pad, mode="constant").astype(np.float32)
    blurred = cv2.GaussianBlur(padded, (0, 0), sigmaX=sigma, sigmaY=sigma)[pad:-pad, pad:-pad]
    return np.minimum(np.rint(blurred), alpha.astype(np.float32)).astype(np.uint8)


def cut_out(
    image_rgb: np.ndarray,
    mask: np.ndarray,
    *,
    feather: float = 0.0,
    box: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Crop an instance to its tight box and return it as H x W x 4 uint8 RGBA.

    Alpha is 255 inside the mask and 0 outside (softened inwards by ``feather``); RGB outside
    the mask is zeroed so that no background colour hides in transparent pixels (it would leak
    through any later resampling that does not premultiply alpha).
    """
    x, y, w, h = box if box is not None else mask_box(mask)
    if w == 0 or h == 0:
        raise ValueError("cannot cut out an empty mask")
    crop_mask = mask[y : y + h, x : x + w]
    rgba = np.zeros((h, w, 4), dtype=np.uint8)
    rgba[..., :3] = np.where(crop_mask[..., None], image_rgb[y : y + h, x : x + w, :3], 0)
    rgba[..., 3] = feather_alpha(crop_mask.astype(np.uint8) * 255, feather)
    return rgba
