"""Paste an occluder onto an image as a :class:`~ogor.occlude.placement.Placement` says: pure code.

Why premultiplied alpha: resizing a straight-alpha RGBA image mixes the colour of opaque pixels
with the (usually black) colour of transparent ones, so a shrunken occluder gets a dark fringe.
Resizing colour-times-alpha and alpha together, then blending ``out = src * (1 - a) + premul``,
weights every colour by its own opacity and leaves no fringe.

The occluded fraction is alpha-weighted: ``sum(alpha) / (H * W)`` with alpha in ``[0, 1]`` over the
pasted pixels inside the canvas, so a half-transparent edge counts half and the part of an
mgcc-code box clipped by the canvas counts nothing. The manifest field is ``occluded_fraction``.
"""

from __future__ import annotations

import cv2
import numpy as np

from ogor.occlude.placement import Placement


def rgba_to_premultiplied_bgra(rgba: np.ndarray) -> np.ndarray:
    """An occluder as float32 ``h x w x 4``: B, G, R times alpha (0..255), then alpha (0..1).

    Libraries give RGBA in RGB order; OpenCV images are BGR. Converting once per instance (callers
    cache the result) keeps the per-image cost to one resize and one blend.
    """
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"expected an h x w x 4 uint8 RGBA array, got {rgba.shape} {rgba.dtype}")
    alpha = rgba[:, :, 3].astype(np.float32) / 255.0
    out = np.empty(rgba.shape, dtype=np.float32)
    for dst, src in ((0, 2), (1, 1), (2, 0)):
        out[:, :, dst] = rgba[:, :, src].astype(np.float32) * alpha
    out[:, :, 3] = alpha
    return out


def resize_premultiplied(occluder: np.ndarray, w: int, h: int) -> np.ndarray:
    """Resize a premultiplied occluder: area interpolation to shrink, bilinear to enlarge."""
    inst_h, inst_w = occluder.shape[:2]
    if (w, h) == (inst_w, inst_h):
        return occluder
    shrinking = w * h < inst_w * inst_h
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(occluder, (w, h), interpolation=interpolation)


def feather_alpha(premul: np.ndarray, sigma: float) -> np.ndarray:
    """Soften the occluder's edges inward with a Gaussian of ``sigma`` pixels.

    The new alpha is ``min(alpha, blur(alpha))`` with zero outside the box, so edges (the box
    edges of opaque occluders included) fade while the support never grows; colours are rescaled
    to the new alpha so they stay premultiplied.
    """
    alpha = premul[:, :, 3]
    blurred = cv2.GaussianBlur(
        alpha, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT
    )
    softened = np.minimum(alpha, blurred)
    scale = np.divide(softened, alpha, out=np.zeros_like(alpha), where=alpha > 0)
    out = premul * scale[:, :, None]
    out[:, :, 3] = softened
    return out


def paste(
    image_bgr: np.ndarray, occluder: np.ndarray, placement: Placement, feather: float = 0.0
) -> float:
    """Paste in place (the hot path of ``ogor generate``); returns the occluded fraction.

    Same pixels as :func:`apply_placement` without the copy of the image and the full-size
    alpha map, which matter at tens of thousands of images.
    """
    height, width = image_bgr.shape[:2]
    x0, y0 = max(placement.x, 0), max(placement.y, 0)
    x1, y1 = min(placement.x + placement.w, width), min(placement.y + placement.h, height)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    premul = resize_premultiplied(occluder, placement.w, placement.h)
    if feather > 0:
        premul = feather_alpha(premul, feather)
    crop = premul[y0 - placement.y : y1 - placement.y, x0 - placement.x : x1 - placement.x]
    alpha = crop[:, :, 3]
    region = image_bgr[y0:y1, x0:x1]
    blended = region.astype(np.float32)
    blended *= 1.0 - alpha[:, :, None]
    blended += crop[:, :, :3]
    # The blend lies in [0, 255] (premultiplied colour <= 255 * alpha); convertScaleAbs rounds to
    # nearest and saturates, faster than numpy's rint + clip + astype on small regions.
    region[...] = cv2.convertScaleAbs(blended)
    return float(alpha.sum(dtype=np.float64)) / (height * width)


def apply_placement(
    image_bgr: np.ndarray,
    occluder: np.ndarray,
    placement: Placement,
    feather: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Paste ``occluder`` onto a copy of ``image_bgr`` at ``placement``.

    Args:
        image_bgr: ``H x W x 3`` uint8 image (OpenCV order).
        occluder: the instance as premultiplied float32 BGRA from
            :func:`rgba_to_premultiplied_bgra` (a uint8 RGBA array is converted on the fly).
        placement: where and how large; parts outside the canvas are clipped.
        feather: Gaussian sigma in pixels for soft edges; 0 keeps the mask as it is.

    Returns:
        ``(image, alpha)``: the occluded uint8 image and the pasted alpha (float32 ``H x W`` in
        ``[0, 1]``); :func:`occluded_fraction` of the alpha is the manifest's measure.
    """
    if occluder.dtype == np.uint8:
        occluder = rgba_to_premultiplied_bgra(occluder)
    height, width = image_bgr.shape[:2]
    out = image_bgr.copy()
    paste(out, occluder, placement, feather)
    alpha_map = np.zeros((height, width), dtype=np.float32)
    x0, y0 = max(placement.x, 0), max(placement.y, 0)
    x1, y1 = min(placement.x + placement.w, width), min(placement.y + placement.h, height)
    if x1 > x0 and y1 > y0:
        premul = resize_premultiplied(occluder, placement.w, placement.h)
        if feather > 0:
            premul = feather_alpha(premul, feather)
        crop = premul[y0 - placement.y : y1 - placement.y, x0 - placement.x : x1 - placement.x]
        alpha_map[y0:y1, x0:x1] = crop[:, :, 3]
    return out, alpha_map


def occluded_fraction(alpha: np.ndarray) -> float:
    """Alpha-weighted share of the image covered by the occluder: ``sum(alpha) / (H * W)``."""
    return float(alpha.sum(dtype=np.float64) / alpha.size)
