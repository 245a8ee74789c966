"""The drawing surface of the procedural occluders: supersampled parts, shading, soft alpha.

Every part is drawn at ``SUPERSAMPLE`` times the final size and area-averaged down, so edge pixels
get partial alpha; shading (gradients, cylinder and sphere light) and a little seeded texture make
a silhouette read as an object. The colours shared by several families live here too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from ogor.errors import LibraryError

#: Parts are drawn at this multiple of the final size, then area-averaged down.
SUPERSAMPLE = 4
Colour = tuple[float, float, float]
Point = tuple[float, float]


class Canvas:
    """An RGBA drawing surface in output-pixel coordinates, supersampled internally.

    Parts are painted in order (painter's algorithm) with premultiplied colour, so a later part
    covers an earlier one exactly as far as its anti-aliased mask reaches.
    """

    def __init__(self, width: float, height: float, rng: np.random.Generator) -> None:
        self.width = int(math.ceil(width))
        self.height = int(math.ceil(height))
        self.scale = SUPERSAMPLE
        self.rng = rng
        big_h, big_w = self.height * self.scale, self.width * self.scale
        self.premul = np.zeros((big_h, big_w, 3), dtype=np.float32)
        self.alpha = np.zeros((big_h, big_w), dtype=np.float32)
        self.grain = self._make_grain(big_h, big_w)

    def _make_grain(self, big_h: int, big_w: int) -> np.ndarray:
        """Smooth value noise plus a little fine grain, in about [-1, 1], quantised to 1/1024."""
        coarse = self.rng.standard_normal((big_h // 24 + 3, big_w // 24 + 3)).astype(np.float32)
        smooth = _upsample_bilinear(coarse, big_h, big_w)
        fine = self.rng.standard_normal((big_h // 4 + 1, big_w // 4 + 1)).astype(np.float32)
        fine = np.repeat(np.repeat(fine, 4, axis=0), 4, axis=1)[:big_h, :big_w]
        grain = np.clip(0.7 * smooth + 0.3 * fine, -2.5, 2.5) / 2.5
        return np.round(grain * 1024.0) / 1024.0

    # ---------------------------------------------------------------- mask builders (0..1)

    def _blank(self) -> np.ndarray:
        return np.zeros(self.alpha.shape, dtype=np.uint8)

    def _pts(self, points: Sequence[Point]) -> np.ndarray:
        array = np.asarray(points, dtype=np.float64) * self.scale * 16.0
        return np.round(array).astype(np.int32).reshape(-1, 1, 2)

    @staticmethod
    def _float(mask: np.ndarray) -> np.ndarray:
        return mask.astype(np.float32) / 255.0

    def poly(self, points: Sequence[Point]) -> np.ndarray:
        """Filled polygon."""
        mask = self._blank()
        cv2.fillPoly(mask, [self._pts(points)], 255, cv2.LINE_AA, shift=4)
        return self._float(mask)

    def ellipse(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        angle: float = 0.0,
        start: float = 0.0,
        end: float = 360.0,
    ) -> np.ndarray:
        """Filled ellipse (or pie slice between ``start`` and ``end`` degrees)."""
        points = ellipse_points(cx, cy, rx, ry, angle, start, end)
        if end - start < 360:
            points = [(cx, cy), *points]
        return self.poly(points)

    def circle(self, cx: float, cy: float, r: float) -> np.ndarray:
        """Filled circle."""
        return self.ellipse(cx, cy, r, r)

    def rect(self, x0: float, y0: float, x1: float, y1: float, radius: float = 0.0) -> np.ndarray:
        """Filled rectangle with optionally rounded corners."""
        return self.poly(rounded_rect_points(x0, y0, x1, y1, radius))

    def polyline(self, points: Sequence[Point], width: float, closed: bool = False) -> np.ndarray:
        """A thick line through ``points`` with round joins and caps."""
        mask = self._blank()
        thickness = max(1, int(round(width * self.scale)))
        pts = self._pts(points)
        cv2.polylines(mask, [pts], closed, 255, thickness, cv2.LINE_AA, shift=4)
        radius = int(round(width * self.scale * 8))  # shift 4: 1/16 units, half the width
        for x, y in pts.reshape(-1, 2):
            cv2.circle(mask, (int(x), int(y)), radius, 255, -1, cv2.LINE_AA, shift=4)
        return self._float(mask)

    def line(self, p0: Point, p1: Point, width: float) -> np.ndarray:
        """A thick straight segment with round caps."""
        return self.polyline([p0, p1], width)

    def ring(self, cx: float, cy: float, r: float, width: float) -> np.ndarray:
        """A circle outline of the given stroke width (a tyre, a rim)."""
        return np.clip(
            self.circle(cx, cy, r + width / 2) - self.circle(cx, cy, r - width / 2), 0, 1
        )

    def arc(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        start: float,
        end: float,
        width: float,
        angle: float = 0.0,
    ) -> np.ndarray:
        """A thick elliptical arc (handles, straps, fenders)."""
        return self.polyline(ellipse_points(cx, cy, rx, ry, angle, start, end), width)

    def text(self, text: str, x: float, y: float, height: float, bold: float = 0.12) -> np.ndarray:
        """Text whose baseline starts at (x, y), about ``height`` pixels tall."""
        mask = self._blank()
        font = cv2.FONT_HERSHEY_SIMPLEX
        font_scale = height * self.scale / 22.0
        thickness = max(1, int(round(height * self.scale * bold)))
        origin = (int(round(x * self.scale)), int(round(y * self.scale)))
        cv2.putText(mask, text, origin, font, font_scale, 255, thickness, cv2.LINE_AA)
        return self._float(mask)

    def text_width(self, text: str, height: float, bold: float = 0.12) -> float:
        """Width in output pixels of :meth:`text` drawn at this height."""
        font_scale = height * self.scale / 22.0
        thickness = max(1, int(round(height * self.scale * bold)))
        (width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        return width / self.scale

    # ---------------------------------------------------------------- painting

    def fill(
        self,
        mask: np.ndarray,
        colour: Colour,
        shade: str = "vertical",
        texture: float = 0.05,
        outline: float = 0.25,
        opacity: float = 1.0,
    ) -> None:
        """Paint ``colour`` through ``mask`` with a shading model, texture and a dark rim.

        Args:
            mask: coverage 0..1 from a mask builder.
            colour: base RGB 0..255.
            shade: "flat", "vertical" (lit from above), "horizontal" (lit from the left),
                "cylinder" (vertical cylinder lit from the left), "sphere", "hcylinder"
                (horizontal cylinder lit from above).
            texture: amplitude of the seeded noise, as a fraction of the colour.
            outline: how much darker the part's rim is (0 = no rim).
            opacity: part opacity (glass, thin fabric).
        """
        ys, xs = np.nonzero(mask > 0)
        if len(ys) == 0:
            return
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        m = mask[y0:y1, x0:x1] * opacity
        factor = shading(shade, y1 - y0, x1 - x0)
        factor = factor * (1.0 + texture * self.grain[y0:y1, x0:x1])
        if outline > 0:
            size = max(3, int(round(self.scale * 1.6)) | 1)
            inner = cv2.erode(
                m, np.ones((size, size), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0
            )
            rim = np.clip(m - inner, 0.0, 1.0)
            factor = factor * (1.0 - outline * rim)
        rgb = np.asarray(colour, dtype=np.float32)[None, None, :] * factor[:, :, None]
        rgb = np.clip(rgb, 0.0, 255.0)
        keep = 1.0 - m
        self.premul[y0:y1, x0:x1] = (
            self.premul[y0:y1, x0:x1] * keep[:, :, None] + rgb * m[:, :, None]
        )
        self.alpha[y0:y1, x0:x1] = self.alpha[y0:y1, x0:x1] * keep + m

    def light(self, mask: np.ndarray, shade: str, strength: float = 1.0) -> None:
        """Multiply what is already painted under ``mask`` by a shading field.

        Used to give one overall light to a part made of many coloured pieces (an umbrella's
        panels), which per-piece shading would break up.
        """
        ys, xs = np.nonzero(mask > 0)
        if len(ys) == 0:
            return
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        m = mask[y0:y1, x0:x1]
        factor = 1.0 + strength * (shading(shade, y1 - y0, x1 - x0) - 1.0)
        factor = 1.0 + m * (factor - 1.0)
        region = self.premul[y0:y1, x0:x1] * factor[:, :, None]
        limit = 255.0 * self.alpha[y0:y1, x0:x1, None]
        self.premul[y0:y1, x0:x1] = np.minimum(region, limit)

    def erase(self, mask: np.ndarray) -> None:
        """Cut a hole (make pixels transparent again), e.g. the gap inside a handle."""
        keep = 1.0 - np.clip(mask, 0.0, 1.0)
        self.premul *= keep[:, :, None]
        self.alpha *= keep

    def finish(self, rotate: float = 0.0, flip: bool = False) -> np.ndarray:
        """Rotate (degrees, counter-clockwise), mirror, downsample, crop: RGBA uint8."""
        premul, alpha = self.premul, self.alpha
        if flip:
            premul, alpha = premul[:, ::-1], alpha[:, ::-1]
        if rotate:
            premul, alpha = _rotate(premul, alpha, rotate, self.scale)
        premul = _downsample(premul, self.scale)
        alpha = _downsample(alpha, self.scale)
        alpha8 = np.clip(np.round(alpha * 255.0), 0, 255).astype(np.uint8)
        safe = np.maximum(alpha, 1e-6)[:, :, None]
        rgb = np.clip(np.round(premul / safe), 0, 255).astype(np.uint8)
        rgb[alpha8 == 0] = 0
        rgba = np.concatenate([rgb, alpha8[:, :, None]], axis=2)
        ys, xs = np.nonzero(alpha8)
        if len(ys) == 0:
            raise LibraryError("procedural renderer drew nothing")
        return np.ascontiguousarray(rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


def _downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks, summing the block's pixels in a fixed order.

    Written out as plain element-wise adds (instead of ``cv2.resize`` or ``mean``) because
    those may vectorise differently per CPU and change the last bit of a float, and the default
    library must come out byte-identical everywhere.
    """
    out_h, out_w = image.shape[0] // factor, image.shape[1] // factor
    image = image[: out_h * factor, : out_w * factor]
    total = np.zeros((out_h, out_w) + image.shape[2:], dtype=np.float32)
    for dy in range(factor):
        for dx in range(factor):
            total = total + image[dy::factor, dx::factor]
    return total * np.float32(1.0 / (factor * factor))


def _upsample_bilinear(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of a coarse grid to ``height`` x ``width`` with element-wise ops."""
    ys = np.arange(height, dtype=np.float64) * (grid.shape[0] - 1) / max(height - 1, 1)
    xs = np.arange(width, dtype=np.float64) * (grid.shape[1] - 1) / max(width - 1, 1)
    return _sample_bilinear(grid, ys[:, None] + 0 * xs[None, :], xs[None, :] + 0 * ys[:, None])


def _sample_bilinear(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Sample ``image`` at float coordinates; outside the image counts as zero."""
    height, width = image.shape[:2]
    y0 = np.floor(ys).astype(np.int64)
    x0 = np.floor(xs).astype(np.int64)
    fy = (ys - y0).astype(np.float32)
    fx = (xs - x0).astype(np.float32)
    if image.ndim == 3:
        fy, fx = fy[..., None], fx[..., None]
    out = np.zeros(ys.shape + image.shape[2:], dtype=np.float32)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy, xx = y0 + dy, x0 + dx
            inside = (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
            values = image[np.clip(yy, 0, height - 1), np.clip(xx, 0, width - 1)]
            if image.ndim == 3:
                inside = inside[..., None]
            out = out + np.where(inside, values, 0).astype(np.float32) * (wy * wx)
    return out


def _rotate(
    premul: np.ndarray, alpha: np.ndarray, degrees: float, scale: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate both layers counter-clockwise about their centre into an enlarged canvas."""
    height, width = alpha.shape
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    new_w = int(math.ceil((height * abs(sin) + width * abs(cos)) / scale)) * scale
    new_h = int(math.ceil((height * abs(cos) + width * abs(sin)) / scale)) * scale
    oy, ox = np.mgrid[0:new_h, 0:new_w].astype(np.float64)
    dx, dy = ox + 0.5 - new_w / 2.0, oy + 0.5 - new_h / 2.0
    # inverse of a counter-clockwise turn on screen (y down): x' = x cos + y sin, y' = y cos - x sin
    xs = dx * cos - dy * sin + width / 2.0 - 0.5
    ys = dx * sin + dy * cos + height / 2.0 - 0.5
    return _sample_bilinear(premul, ys, xs), _sample_bilinear(alpha, ys, xs)


def _profile(count: int, func: Callable[[float], float]) -> np.ndarray:
    """``func`` at the centres of ``count`` cells of [0, 1], quantised to 1/4096.

    Transcendental functions are evaluated in Python (one libm call per cell, not a vectorised
    approximation that may differ by CPU) and quantised, so shading is identical everywhere.
    """
    values = [func((i + 0.5) / max(count, 1)) for i in range(count)]
    return np.round(np.asarray(values, dtype=np.float64) * 4096.0).astype(np.float32) / 4096.0


def _cylinder_light(t: float) -> float:
    body = 0.62 + 0.45 * math.sin(math.pi * min(max(t, 0.0), 1.0)) ** 0.7
    return body + 0.28 * math.exp(-(((t - 0.32) / 0.09) ** 2))


def _hcylinder_light(t: float) -> float:
    body = 0.62 + 0.45 * math.sin(math.pi * min(max(t, 0.0), 1.0)) ** 0.7
    return body + 0.25 * math.exp(-(((t - 0.3) / 0.1) ** 2))


def shading(shade: str, height: int, width: int) -> np.ndarray:
    """A brightness factor field (about 0.5..1.3) of one of the named light models."""
    v = (np.arange(height, dtype=np.float32)[:, None] + 0.5) / max(height, 1)
    u = (np.arange(width, dtype=np.float32)[None, :] + 0.5) / max(width, 1)
    if shade == "flat":
        field = np.ones((height, width), np.float32)
    elif shade == "vertical":
        field = (1.12 - 0.30 * v) * np.ones_like(u)
    elif shade == "horizontal":
        field = (1.12 - 0.30 * u) * np.ones_like(v)
    elif shade == "cylinder":
        field = _profile(width, _cylinder_light)[None, :] * np.ones_like(v)
    elif shade == "hcylinder":
        field = _profile(height, _hcylinder_light)[:, None] * np.ones_like(u)
    elif shade == "sphere":
        du, dv = u - np.float32(0.38), v - np.float32(0.33)
        squared = du * du + dv * dv
        distance = np.sqrt(squared)  # correctly rounded everywhere, unlike exp or pow
        glow = 1.0 + squared / np.float32(0.12 * 0.12)
        field = 1.3 - 0.85 * distance + 0.25 / (glow * glow)
    else:
        raise ValueError(f"unknown shading '{shade}'")
    return field.astype(np.float32)


def ellipse_points(
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    angle: float = 0.0,
    start: float = 0.0,
    end: float = 360.0,
    steps: int | None = None,
) -> list[Point]:
    """Points along an ellipse (angles in degrees, y down, 0 = +x, 90 = +y)."""
    steps = steps or max(12, int(abs(end - start) / 4))
    rot = math.radians(angle)
    points = []
    for i in range(steps + 1):
        t = math.radians(start + (end - start) * i / steps)
        x, y = rx * math.cos(t), ry * math.sin(t)
        points.append(
            (cx + x * math.cos(rot) - y * math.sin(rot), cy + x * math.sin(rot) + y * math.cos(rot))
        )
    return points


def rounded_rect_points(x0: float, y0: float, x1: float, y1: float, radius: float) -> list[Point]:
    """Outline of a rectangle with rounded corners (radius clipped to fit)."""
    radius = max(0.0, min(radius, (x1 - x0) / 2, (y1 - y0) / 2))
    if radius == 0:
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    points: list[Point] = []
    for cx, cy, a0 in (
        (x1 - radius, y0 + radius, 270),
        (x1 - radius, y1 - radius, 0),
        (x0 + radius, y1 - radius, 90),
        (x0 + radius, y0 + radius, 180),
    ):
        points.extend(ellipse_points(cx, cy, radius, radius, 0, a0, a0 + 90, steps=8))
    return points


def jitter(rng: np.random.Generator, colour: Colour, amount: float = 10.0) -> Colour:
    """A colour moved a little at random, so variants of one palette differ slightly."""
    moved = np.clip(np.asarray(colour, dtype=np.float64) + rng.uniform(-amount, amount, 3), 0, 255)
    return (float(moved[0]), float(moved[1]), float(moved[2]))


def darker(colour: Colour, factor: float = 0.6) -> Colour:
    """The colour scaled towards black."""
    return (colour[0] * factor, colour[1] * factor, colour[2] * factor)


BLACK: Colour = (32.0, 32.0, 34.0)
TYRE: Colour = (28.0, 28.0, 30.0)
STEEL: Colour = (170.0, 172.0, 176.0)
CHROME: Colour = (205.0, 208.0, 212.0)
SKIN_TONES: tuple[Colour, ...] = ((224, 182, 150), (198, 150, 112), (160, 112, 80), (236, 198, 170))
