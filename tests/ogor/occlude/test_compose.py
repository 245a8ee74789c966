"""Compositing: premultiplied resize (no dark fringe), colour order, clipping, fraction, feather."""

from __future__ import annotations

import cv2
import numpy as np

from ogor.occlude.compose import apply_placement, occluded_fraction, rgba_to_premultiplied_bgra
from ogor.occlude.placement import Placement


def _placement(x: int, y: int, w: int, h: int) -> Placement:
    return Placement("i", "c", "bottom", 0.2, x, y, w, h)


def _soft_disc(size: int, rgb: tuple[int, int, int]) -> np.ndarray:
    """RGBA disc with a hard edge whose transparent pixels are black (as cut-outs often are)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.hypot(yy - (size - 1) / 2, xx - (size - 1) / 2) / (size / 2)
    alpha = (r < 1.0).astype(np.float32)
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[..., 3] = np.rint(alpha * 255)
    rgba[..., :3] = np.where(alpha[..., None] > 0, np.array(rgb, dtype=np.uint8), 0)
    return rgba


def test_shrunk_white_occluder_on_white_has_no_dark_fringe() -> None:
    white = np.full((64, 64, 3), 255, dtype=np.uint8)
    disc = _soft_disc(200, (255, 255, 255))
    out, alpha = apply_placement(white, disc, _placement(10, 10, 37, 37))
    assert out.min() >= 254  # every blend of white over white stays white
    # The naive way (resize straight RGBA, then blend) darkens the rim: the test would catch it.
    small = cv2.resize(disc, (37, 37), interpolation=cv2.INTER_AREA).astype(np.float32)
    a = small[..., 3:] / 255.0
    naive = 255.0 * (1 - a) + small[..., :3] * a
    assert naive.min() < 215
    assert 0 < alpha.max() <= 1.0


def test_colour_order_and_opaque_paste_is_exact() -> None:
    image = np.zeros((20, 10, 3), dtype=np.uint8)
    red = np.zeros((4, 2, 4), dtype=np.uint8)
    red[..., 0] = 255  # R in RGBA
    red[..., 3] = 255
    out, alpha = apply_placement(image, red, _placement(2, 3, 4, 8))
    assert (out[3:11, 2:6] == [0, 0, 255]).all()  # BGR red
    assert out[:3].max() == 0 and out[11:].max() == 0
    assert occluded_fraction(alpha) == 32 / 200


def test_box_outside_the_canvas_is_clipped_and_fraction_counts_inside_only() -> None:
    image = np.full((10, 10, 3), 7, dtype=np.uint8)
    opaque = np.full((5, 5, 4), 255, dtype=np.uint8)
    out, alpha = apply_placement(image, opaque, _placement(-5, 6, 10, 10))
    assert (out[6:, :5] == 255).all() and (out[:6] == 7).all() and (out[:, 5:] == 7).all()
    assert occluded_fraction(alpha) == 20 / 100


def test_fraction_is_alpha_weighted() -> None:
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    half = np.zeros((10, 10, 4), dtype=np.uint8)
    half[..., 3] = 255
    half[:, 5:, 3] = 0
    half[:, :5, 3] = 255
    _out, alpha = apply_placement(image, half, _placement(0, 0, 10, 10))
    assert abs(occluded_fraction(alpha) - 0.5) < 1e-6
    assert abs(occluded_fraction(alpha) - alpha.sum() / 100) < 1e-9


def test_feather_softens_edges_without_growing_the_support() -> None:
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    opaque = np.full((20, 20, 4), 255, dtype=np.uint8)
    sharp, a_sharp = apply_placement(image, opaque, _placement(10, 10, 20, 20))
    soft, a_soft = apply_placement(image, opaque, _placement(10, 10, 20, 20), feather=2.0)
    assert a_sharp[10, 10] == 1.0 and 0 < a_soft[10, 10] < 0.6  # corner softened
    assert a_soft[20, 20] > 0.99  # centre kept
    assert (a_soft[a_sharp == 0] == 0).all()  # never outside the box
    assert soft.sum() < sharp.sum()


def test_premultiplied_conversion_swaps_to_bgr() -> None:
    rgba = np.array([[[10, 20, 30, 255], [10, 20, 30, 0]]], dtype=np.uint8)
    pre = rgba_to_premultiplied_bgra(rgba)
    assert pre[0, 0].tolist() == [30.0, 20.0, 10.0, 1.0]
    assert pre[0, 1].tolist() == [0.0, 0.0, 0.0, 0.0]
