"""The embedded default occluder library, drawn by code: 15 classes, 4 variants each.

The paper's own occluders (MGCC repository) carry no licence, so the project ships occluders it
makes itself. Each class has a registered renderer that draws a recognisable silhouette from
simple parts (polygons, ellipses, thick lines) with shading (gradients, cylinder and sphere
light), a little seeded texture and soft anti-aliased alpha edges: every part is drawn at
``SUPERSAMPLE`` times the final size and area-averaged down, so edge pixels get partial alpha.

Everything is deterministic: the random stream of an instance is seeded from
``(DEFAULT_SEED, "<class>/<variant>")`` and PNGs are written by :func:`ogor.oil.encode_png`
(fixed compression, no metadata), so ``ogor render-default-oil`` reproduces the shipped files
byte for byte.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from ogor.errors import LibraryError
from ogor.io import stable_seed
from ogor.oil import LibraryWriter
from ogor.taxonomy import load_taxonomy

#: Seed of the shipped default library; changing it changes every shipped PNG.
DEFAULT_SEED = 20240101
#: Instances rendered per class.
VARIANTS = 4
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


# ------------------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------------------

Renderer = Callable[[np.random.Generator, int], np.ndarray]
RENDERERS: dict[str, Renderer] = {}


def register(class_name: str) -> Callable[[Renderer], Renderer]:
    """Register the renderer of one taxonomy class."""

    def wrap(func: Renderer) -> Renderer:
        RENDERERS[class_name] = func
        return func

    return wrap


def list_renderers() -> list[str]:
    """Classes that have a procedural renderer."""
    return list(RENDERERS)


def render_instance(class_name: str, variant: int, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Render variant ``variant`` of a class as H x W x 4 uint8 RGBA.

    Raises:
        LibraryError: no renderer for the class (the message lists those there are).
    """
    renderer = RENDERERS.get(class_name)
    if renderer is None:
        raise LibraryError(
            f"no procedural renderer for class '{class_name}'; renderers: " + ", ".join(RENDERERS)
        )
    rng = np.random.default_rng(stable_seed(seed, f"{class_name}/{variant}"))
    return renderer(rng, variant)


def render_default_library(
    out: str | Path, *, seed: int = DEFAULT_SEED, variants: int = VARIANTS, overwrite: bool = False
) -> Path:
    """Render every class's variants into a library folder (atomically, via LibraryWriter)."""
    taxonomy = load_taxonomy()
    missing = [name for name in taxonomy.classes if name not in RENDERERS]
    if missing:
        raise LibraryError("no procedural renderer for: " + ", ".join(missing))
    description = (
        f"OGOR default occluders: procedurally rendered by ogor.oil_render, seed {seed}, "
        f"{variants} variants per class; made by this project, not the paper's images"
    )
    with LibraryWriter(out, overwrite, taxonomy=taxonomy, description=description) as writer:
        for name in taxonomy.classes:
            for variant in range(variants):
                writer.add(name, render_instance(name, variant, seed), detector="procedural")
    return Path(out)


# ------------------------------------------------------------------------------------------
# Shared parts
# ------------------------------------------------------------------------------------------

BLACK: Colour = (32.0, 32.0, 34.0)
TYRE: Colour = (28.0, 28.0, 30.0)
STEEL: Colour = (170.0, 172.0, 176.0)
CHROME: Colour = (205.0, 208.0, 212.0)
SKIN_TONES: tuple[Colour, ...] = ((224, 182, 150), (198, 150, 112), (160, 112, 80), (236, 198, 170))


def _wheel(
    c: Canvas,
    cx: float,
    cy: float,
    r: float,
    tyre: float,
    rim: Colour,
    spokes: int,
    spoke_width: float = 0.6,
    disc: bool = False,
) -> None:
    """A tyre ring with a rim, spokes (or a disc) and a hub."""
    c.fill(c.ring(cx, cy, r - tyre / 2, tyre), TYRE, "sphere", texture=0.08, outline=0.1)
    c.fill(c.ring(cx, cy, r - tyre - 0.6, 1.4), rim, "sphere", texture=0.02, outline=0.0)
    inner = r - tyre - 1.2
    if disc:
        c.fill(c.circle(cx, cy, inner * 0.95), darker(rim, 0.75), "sphere", texture=0.04)
        for i in range(spokes):
            a = 2 * math.pi * i / spokes
            p = (cx + inner * 0.8 * math.cos(a), cy + inner * 0.8 * math.sin(a))
            c.fill(c.line((cx, cy), p, max(1.5, inner * 0.22)), rim, "flat", outline=0.15)
    else:
        for i in range(spokes):
            a = 2 * math.pi * i / spokes + 0.13
            p = (cx + inner * math.cos(a), cy + inner * math.sin(a))
            c.fill(c.line((cx, cy), p, spoke_width), STEEL, "flat", texture=0.0, outline=0.0)
    c.fill(c.circle(cx, cy, max(1.8, r * 0.1)), darker(rim, 0.8), "sphere", outline=0.2)


# ------------------------------------------------------------------------------------------
# Up set
# ------------------------------------------------------------------------------------------


@register("umbrella")
def _umbrella(rng: np.random.Generator, variant: int) -> np.ndarray:
    rainbow = [
        (226, 60, 52),
        (240, 140, 40),
        (246, 214, 60),
        (86, 180, 80),
        (50, 150, 210),
        (70, 90, 200),
        (140, 80, 180),
        (220, 80, 150),
    ]
    styles = [
        dict(rx=78, ry=40, shaft=44, panels=8, colours=rainbow, rotate=6, handle=(60, 40, 30)),
        dict(
            rx=64,
            ry=38,
            shaft=52,
            panels=6,
            colours=[(48, 58, 72), (58, 68, 84)],
            rotate=-28,
            handle=(30, 30, 30),
        ),
        dict(
            rx=56,
            ry=34,
            shaft=46,
            panels=8,
            colours=[(150, 190, 235), (170, 205, 240)],
            rotate=0,
            handle=(60, 90, 200),
            opacity=0.85,
        ),
        dict(
            rx=72,
            ry=36,
            shaft=40,
            panels=10,
            colours=[(200, 50, 60), (240, 236, 230)],
            rotate=14,
            handle=(120, 70, 40),
        ),
    ]
    s = styles[variant % len(styles)]
    rx, ry, shaft = float(s["rx"]), float(s["ry"]), float(s["shaft"])
    c = Canvas(2 * rx + 12, ry + shaft + 24, rng)
    cx, top = rx + 6, 10.0
    base = top + ry
    colours = [jitter(rng, col, 8) for col in s["colours"]]
    # shaft and handle first: the canopy covers the top of the shaft
    hook_y = base + shaft
    c.fill(c.line((cx, base - 4), (cx, hook_y), 2.4), STEEL, "cylinder", outline=0.2)
    c.fill(c.arc(cx - 5, hook_y, 5, 5, 0, 180, 3.6), s["handle"], "flat", outline=0.3)
    n = int(s["panels"])
    us = np.linspace(-1.0, 1.0, n + 1)
    ts = np.linspace(0.0, math.pi / 2, 18)
    depth = ry * 0.13
    canopy = np.zeros_like(c.alpha)
    for i in range(n):
        rib_a = [(cx + us[i] * rx * math.sin(t), base - ry * math.cos(t)) for t in ts]
        rib_b = [(cx + us[i + 1] * rx * math.sin(t), base - ry * math.cos(t)) for t in ts]
        scallop = [
            (cx + (us[i] + (us[i + 1] - us[i]) * f) * rx, base - depth * math.sin(math.pi * f))
            for f in np.linspace(0.0, 1.0, 9)
        ]
        panel = c.poly(rib_a + scallop + rib_b[::-1])
        canopy = np.maximum(canopy, panel)
        c.fill(
            panel,
            colours[i % len(colours)],
            "flat",
            texture=0.04,
            outline=0.0,
            opacity=float(s.get("opacity", 1.0)),
        )
    c.light(canopy, "sphere", 0.9)
    for u in us[1:-1]:
        rib = [(cx + u * rx * math.sin(t), base - ry * math.cos(t)) for t in ts]
        c.fill(c.polyline(rib, 0.8), (40, 40, 40), "flat", outline=0.0, opacity=0.45)
    for u in us:
        c.fill(c.circle(cx + u * rx, base, 1.4), (60, 60, 60), "flat", outline=0.0)
    c.fill(c.line((cx, top + 1), (cx, top - 7), 2.2), (50, 50, 50), "cylinder", outline=0.0)
    return c.finish(rotate=float(s["rotate"]))


@register("kite")
def _kite(rng: np.random.Generator, variant: int) -> np.ndarray:
    palettes = [
        [(230, 50, 60), (250, 210, 50), (40, 120, 220), (60, 180, 90)],
        [(245, 245, 240), (220, 220, 215), (245, 245, 240), (220, 220, 215)],
        [(250, 225, 40), (250, 225, 40), (240, 200, 30), (240, 200, 30)],
        [(240, 80, 150), (80, 200, 220), (250, 200, 60), (120, 220, 110)],
    ]
    hw = [40, 30, 36, 46][variant % 4]
    kh = [78, 86, 70, 64][variant % 4]
    tail = [70, 80, 60, 50][variant % 4]
    c = Canvas(2 * hw + 40, kh + tail + 16, rng)
    cx, y0 = hw + 20.0, 6.0
    cross = y0 + kh * 0.34
    colours = [jitter(rng, col, 8) for col in palettes[variant % 4]]
    top, right, bottom, left = (cx, y0), (cx + hw, cross), (cx, y0 + kh), (cx - hw, cross)
    centre = (cx, cross)
    # the tail first, so the sail covers its knot
    tail_top = y0 + kh * (0.58 if variant == 3 else 1.0)
    tail_pts = []
    for i in range(30):
        f = i / 29
        tail_pts.append((cx + 9 * math.sin(f * 3 * math.pi) - f * 14, tail_top + f * tail))
    c.fill(c.polyline(tail_pts, 1.2), (60, 60, 60), "flat", outline=0.0)
    for k in range(1, 4):
        x, y = tail_pts[k * 8]
        bow = colours[k % 4]
        c.fill(c.poly([(x, y), (x - 6, y - 4), (x - 6, y + 4)]), bow, "flat", outline=0.2)
        c.fill(c.poly([(x, y), (x + 6, y - 4), (x + 6, y + 4)]), bow, "flat", outline=0.2)
    sail = np.zeros_like(c.alpha)
    if variant == 3:  # delta kite with stripes
        body = c.poly(
            [top, (cx + hw, y0 + kh * 0.72), (cx, y0 + kh * 0.58), (cx - hw, y0 + kh * 0.72)]
        )
        for i, col in enumerate(colours):
            band = c.rect(cx - hw + i * hw / 2, 0, cx - hw + (i + 1) * hw / 2, y0 + kh, 0)
            c.fill(body * band, col, "flat", texture=0.04, outline=0.0)
        sail = body
        c.fill(c.line(top, (cx, y0 + kh * 0.58), 1.4), (50, 50, 50), "flat", outline=0.0)
        c.fill(
            c.line((cx - hw * 0.6, y0 + kh * 0.45), (cx + hw * 0.6, y0 + kh * 0.45), 1.2),
            (50, 50, 50),
            "flat",
            outline=0.0,
        )
    else:
        for col, tri in zip(
            colours, [(top, right), (right, bottom), (bottom, left), (left, top)], strict=True
        ):
            piece = c.poly([centre, tri[0], tri[1]])
            sail = np.maximum(sail, piece)
            c.fill(piece, col, "flat", texture=0.04, outline=0.0)
        c.fill(c.line(top, bottom, 1.5), (90, 60, 40), "flat", outline=0.0)
        c.fill(c.line(left, right, 1.5), (90, 60, 40), "flat", outline=0.0)
        c.fill(
            c.polyline([top, right, bottom, left], 1.0, closed=True),
            (50, 50, 50),
            "flat",
            outline=0.0,
            opacity=0.7,
        )
    c.light(sail, "sphere", 0.5)
    return c.finish(rotate=[12, -8, 20, -15][variant % 4])


# ------------------------------------------------------------------------------------------
# Middle set
# ------------------------------------------------------------------------------------------


@register("bag")
def _bag(rng: np.random.Generator, variant: int) -> np.ndarray:
    colour = jitter(rng, [(120, 70, 40), (35, 35, 40), (95, 100, 60), (40, 55, 95)][variant % 4])
    if variant % 4 == 0:  # handbag: trapezoid body, arched handle, flap and clasp
        c = Canvas(84, 78, rng)
        c.fill(c.arc(42, 34, 20, 26, 180, 360, 4.0), darker(colour, 0.8), "flat", outline=0.3)
        body = c.poly([(14, 32), (70, 32), (80, 76), (4, 76)])
        c.fill(body, colour, "vertical", texture=0.07)
        c.fill(c.poly([(14, 32), (70, 32), (74, 50), (10, 50)]), darker(colour, 0.85), "vertical")
        c.fill(c.rect(38, 46, 46, 54, 1.5), (215, 180, 90), "sphere", outline=0.3)
    elif variant % 4 == 1:  # backpack: rounded body, pocket, strap, grab loop
        c = Canvas(70, 96, rng)
        c.fill(c.arc(35, 14, 8, 7, 180, 360, 2.5), darker(colour, 0.9), "flat")
        c.fill(
            c.polyline([(60, 20), (68, 45), (66, 80), (58, 92)], 7), darker(colour, 0.8), "cylinder"
        )
        c.fill(c.rect(6, 12, 62, 94, 20), colour, "cylinder", texture=0.08)
        c.fill(c.rect(14, 54, 54, 90, 9), darker(colour, 1.15), "cylinder", texture=0.08)
        c.fill(c.arc(34, 58, 18, 8, 180, 360, 1.0), (180, 180, 180), "flat", outline=0.0)
        c.fill(c.rect(26, 24, 42, 30, 2), (60, 60, 60), "flat")
    elif variant % 4 == 2:  # tote: straight body, two long straps, a band
        c = Canvas(76, 100, rng)
        for x0, x1 in ((16, 34), (42, 60)):
            c.fill(c.arc((x0 + x1) / 2 + 1, 40, (x1 - x0) / 2, 34, 180, 360, 3.2), colour, "flat")
        c.fill(c.poly([(6, 40), (70, 40), (74, 98), (2, 98)]), colour, "horizontal", texture=0.09)
        c.fill(c.poly([(5, 64), (71, 64), (72, 74), (4, 74)]), (210, 190, 150), "horizontal")
    else:  # satchel: long strap, flap with two buckles
        c = Canvas(92, 96, rng)
        c.fill(c.arc(46, 44, 40, 42, 180, 360, 3.0), darker(colour, 0.75), "flat")
        c.fill(c.rect(4, 44, 88, 94, 8), colour, "vertical", texture=0.07)
        c.fill(
            c.poly([(4, 50), (88, 50), (86, 72), (46, 76), (6, 72)]),
            darker(colour, 1.2),
            "vertical",
            texture=0.07,
        )
        for x in (26, 66):
            c.fill(c.rect(x - 3, 60, x + 3, 82, 1), darker(colour, 0.6), "flat")
            c.fill(c.rect(x - 4, 72, x + 4, 78, 1), (200, 190, 150), "sphere")
    return c.finish(rotate=float(rng.uniform(-6, 6)))


@register("suitcase")
def _suitcase(rng: np.random.Generator, variant: int) -> np.ndarray:
    colour = jitter(rng, [(185, 188, 195), (90, 60, 45), (190, 50, 50), (40, 50, 80)][variant % 4])
    w = [60, 70, 64, 76][variant % 4]
    h = [84, 92, 78, 70][variant % 4]
    handle = [40, 36, 0, 34][variant % 4]
    c = Canvas(w + 8, h + handle + 14, rng)
    x0, y0 = 4.0, handle + 6.0
    x1, y1 = x0 + w, y0 + h
    if handle:
        for x in (x0 + w * 0.32, x1 - w * 0.32):
            c.fill(c.line((x, y0 + 2), (x, y0 - handle), 2.4), STEEL, "cylinder", outline=0.2)
        c.fill(
            c.rect(x0 + w * 0.27, y0 - handle - 5, x1 - w * 0.27, y0 - handle + 2, 3),
            BLACK,
            "vertical",
        )
    else:
        c.fill(c.arc((x0 + x1) / 2, y0, w * 0.18, 8, 180, 360, 3.0), BLACK, "flat")
    for x in (x0 + 8, x1 - 8):
        c.fill(c.circle(x, y1 + 1, 5), TYRE, "sphere")
    c.fill(c.rect(x0, y0, x1, y1, 8), colour, "cylinder", texture=0.05)
    if variant % 4 in (0, 2):  # hard shell: vertical ribs
        for i in range(1, 5):
            x = x0 + w * i / 5
            c.fill(
                c.line((x, y0 + 6), (x, y1 - 6), 1.6),
                darker(colour, 0.8),
                "flat",
                outline=0.0,
                opacity=0.8,
            )
    else:  # soft case: front pocket with zip
        c.fill(
            c.rect(x0 + 7, y0 + h * 0.35, x1 - 7, y1 - 7, 6),
            darker(colour, 0.9),
            "vertical",
            texture=0.08,
        )
        c.fill(
            c.line((x0 + 9, y0 + h * 0.42), (x1 - 9, y0 + h * 0.42), 1.0),
            (200, 200, 200),
            "flat",
            outline=0.0,
        )
    c.fill(c.rect(x0 - 1, y0 + h * 0.47, x0 + 3, y0 + h * 0.62, 1), BLACK, "flat")
    return c.finish()


@register("post")
def _post(rng: np.random.Generator, variant: int) -> np.ndarray:
    colour = jitter(
        rng, [(236, 232, 224), (222, 204, 168), (172, 172, 170), (240, 226, 200)][variant % 4], 6
    )
    h = [200, 180, 210, 170][variant % 4]
    sw = [11, 14, 9, 16][variant % 4]
    bw = sw + [8, 8, 7, 5][variant % 4]
    c = Canvas(2 * bw + 6, h + 4, rng)
    cx, bottom = bw + 3.0, h + 2.0
    if variant % 4 == 3:  # square pillar: lit face and shaded side face, cap slab
        c.fill(c.rect(cx - sw, 14, cx + sw * 0.45, bottom, 0), colour, "vertical", texture=0.06)
        c.fill(
            c.poly(
                [
                    (cx + sw * 0.45, 14),
                    (cx + sw, 10),
                    (cx + sw, bottom - 3),
                    (cx + sw * 0.45, bottom),
                ]
            ),
            darker(colour, 0.72),
            "vertical",
            texture=0.06,
        )
        c.fill(c.rect(cx - bw, 4, cx + bw, 14, 1), darker(colour, 0.95), "vertical", texture=0.06)
        return c.finish()
    c.fill(c.rect(cx - bw, bottom - 10, cx + bw, bottom, 1), colour, "cylinder", texture=0.05)
    c.fill(c.rect(cx - bw + 2, bottom - 17, cx + bw - 2, bottom - 9, 4), colour, "cylinder")
    c.fill(c.rect(cx - sw, 22, cx + sw, bottom - 16, 0), colour, "cylinder", texture=0.05)
    if variant % 4 != 2:  # fluting
        for i in range(1, 6):
            x = cx - sw + 2 * sw * i / 6
            c.fill(
                c.line((x, 26), (x, bottom - 20), 1.0),
                darker(colour, 0.7),
                "flat",
                outline=0.0,
                opacity=0.55,
            )
    c.fill(
        c.poly([(cx - sw, 22), (cx + sw, 22), (cx + bw - 1, 13), (cx - bw + 1, 13)]),
        colour,
        "cylinder",
    )
    c.fill(c.rect(cx - bw, 4, cx + bw, 13, 1), colour, "cylinder", texture=0.05)
    return c.finish()


# ------------------------------------------------------------------------------------------
# Bottom set
# ------------------------------------------------------------------------------------------


@register("car")
def _car(rng: np.random.Generator, variant: int) -> np.ndarray:
    colour = jitter(
        rng, [(200, 30, 36), (40, 90, 170), (236, 236, 232), (250, 200, 40)][variant % 4], 8
    )
    w = [200, 176, 196, 202][variant % 4]
    h = [78, 76, 96, 84][variant % 4]
    # body outline in unit coordinates (x forward to the right, y down), per body style
    sedan = [
        (0.02, 0.84),
        (0.0, 0.55),
        (0.04, 0.42),
        (0.22, 0.39),
        (0.34, 0.12),
        (0.58, 0.10),
        (0.72, 0.38),
        (0.95, 0.44),
        (1.0, 0.58),
        (0.99, 0.84),
    ]
    hatch = [
        (0.02, 0.84),
        (0.0, 0.5),
        (0.05, 0.16),
        (0.16, 0.08),
        (0.55, 0.08),
        (0.72, 0.36),
        (0.95, 0.44),
        (1.0, 0.58),
        (0.99, 0.84),
    ]
    suv = [
        (0.01, 0.86),
        (0.0, 0.42),
        (0.04, 0.08),
        (0.62, 0.06),
        (0.76, 0.36),
        (0.97, 0.42),
        (1.0, 0.6),
        (0.99, 0.86),
    ]
    shape = [sedan, hatch, suv, sedan][variant % 4]
    glass = [
        [(0.25, 0.40), (0.35, 0.16), (0.57, 0.15), (0.69, 0.40)],
        [(0.07, 0.40), (0.09, 0.16), (0.18, 0.13), (0.53, 0.13), (0.68, 0.40)],
        [(0.05, 0.38), (0.07, 0.12), (0.6, 0.11), (0.72, 0.38)],
        [(0.25, 0.40), (0.35, 0.16), (0.57, 0.15), (0.69, 0.40)],
    ][variant % 4]
    c = Canvas(w + 4, h + 4, rng)

    def pts(points: list[Point]) -> list[Point]:
        return [(2 + x * w, 2 + y * h) for x, y in points]

    r = h * 0.2
    wheel_y = 2 + h - r
    wheels = (2 + w * 0.19, 2 + w * 0.81)
    c.fill(c.poly(pts(shape)), colour, "vertical", texture=0.03, outline=0.3)
    if variant % 4 == 3:  # taxi roof sign
        c.fill(
            c.rect(2 + w * 0.40, 2 + h * 0.02, 2 + w * 0.52, 2 + h * 0.1, 2),
            (245, 245, 235),
            "vertical",
        )
    c.fill(c.poly(pts(glass)), (60, 75, 95), "horizontal", texture=0.02, outline=0.2)
    pillar_x = [0.47, 0.37, 0.38, 0.47][variant % 4]
    c.fill(
        c.line((2 + w * pillar_x, 2 + h * 0.12), (2 + w * pillar_x, 2 + h * 0.42), 2.5),
        colour,
        "flat",
        outline=0.0,
    )
    c.fill(
        c.poly(pts([(0.0, 0.6), (1.0, 0.6), (1.0, 0.64), (0.0, 0.64)])),
        darker(colour, 1.25),
        "flat",
        outline=0.0,
        opacity=0.5,
    )
    for x in (pillar_x, pillar_x + 0.24):
        c.fill(
            c.line((2 + w * x, 2 + h * 0.42), (2 + w * x, 2 + h * 0.8), 0.8),
            darker(colour, 0.5),
            "flat",
            outline=0.0,
        )
        c.fill(
            c.rect(2 + w * (x + 0.03), 2 + h * 0.47, 2 + w * (x + 0.07), 2 + h * 0.5, 0.8),
            darker(colour, 0.6),
            "flat",
            outline=0.0,
        )
    c.fill(c.ellipse(2 + w * 0.965, 2 + h * 0.5, w * 0.025, h * 0.05), (250, 245, 210), "sphere")
    c.fill(c.rect(2, 2 + h * 0.45, 2 + w * 0.02, 2 + h * 0.56, 1), (200, 30, 30), "vertical")
    c.fill(
        c.poly(pts([(0.02, 0.78), (0.99, 0.78), (0.99, 0.86), (0.02, 0.86)])),
        (40, 40, 42),
        "flat",
        outline=0.0,
    )
    for x in wheels:
        c.fill(
            c.ellipse(x, wheel_y, r * 1.15, r * 1.15, 0, 180, 360),
            (25, 25, 25),
            "flat",
            outline=0.0,
        )
        _wheel(c, x, wheel_y, r, r * 0.32, (190, 192, 196), 5, disc=True)
    return c.finish(flip=variant % 2 == 1)


def _bike_frame(
    c: Canvas, rear: Point, front: Point, r: float, colour: Colour, step_through: bool
) -> tuple[Point, Point, Point]:
    """Tubes of a diamond or step-through frame; returns (bottom bracket, seat top, bar top)."""
    base = front[0] - rear[0]
    bb = (rear[0] + 0.42 * base, rear[1] + 0.08 * r)
    seat = (bb[0] - 0.14 * base, rear[1] - 1.35 * r)
    head_top = (front[0] - 0.2 * base, rear[1] - 1.3 * r)
    head_bottom = (front[0] - 0.16 * base, rear[1] - 0.95 * r)
    tube = 2.6
    c.fill(c.line(rear, bb, tube * 0.8), colour, "flat", outline=0.2)
    c.fill(c.line(rear, seat, tube * 0.8), colour, "flat", outline=0.2)
    c.fill(c.line(bb, seat, tube), colour, "flat", outline=0.2)
    if step_through:
        mid = (bb[0] + 0.2 * base, bb[1] - 0.2 * r)
        c.fill(c.polyline([bb, mid, head_bottom], tube * 1.1), colour, "flat", outline=0.2)
    else:
        c.fill(c.line(seat, head_top, tube), colour, "flat", outline=0.2)
        c.fill(c.line(bb, head_bottom, tube * 1.1), colour, "flat", outline=0.2)
    c.fill(c.line(head_top, head_bottom, tube * 1.3), colour, "flat", outline=0.2)
    c.fill(c.line(head_bottom, front, tube * 0.9), darker(colour, 0.9), "flat", outline=0.2)
    return bb, seat, head_top


@register("bike")
def _bike(rng: np.random.Generator, variant: int) -> np.ndarray:
    colour = jitter(
        rng, [(30, 30, 32), (235, 235, 230), (245, 200, 30), (30, 90, 160)][variant % 4]
    )
    r = [31.0, 29.0, 30.0, 33.0][variant % 4]
    w = [178, 170, 176, 188][variant % 4]
    c = Canvas(w, 2 * r + 48, rng)
    wheel_y = c.height - r - 2
    rear, front = (r + 2, wheel_y), (w - r - 2, wheel_y)
    for centre in (rear, front):
        _wheel(
            c,
            centre[0],
            centre[1],
            r,
            r * (0.11 if variant != 3 else 0.17),
            (200, 200, 205),
            24,
            spoke_width=0.5,
        )
    bb, seat, head_top = _bike_frame(c, rear, front, r, colour, step_through=variant == 1)
    if variant in (0, 1):  # mudguards
        for centre in (rear, front):
            c.fill(
                c.arc(centre[0], centre[1], r + 2.5, r + 2.5, 200, 330, 2.0),
                darker(colour, 0.9),
                "flat",
                outline=0.2,
            )
    post_top = (seat[0] - 2, seat[1] - 8)
    c.fill(c.line(seat, post_top, 2.0), STEEL, "cylinder", outline=0.2)
    c.fill(
        c.poly(
            [
                (post_top[0] - 10, post_top[1] - 1),
                (post_top[0] + 9, post_top[1] - 3),
                (post_top[0] + 10, post_top[1] + 1),
                (post_top[0] - 8, post_top[1] + 4),
            ]
        ),
        (50, 35, 30),
        "vertical",
        outline=0.2,
    )
    stem = (head_top[0] - 1, head_top[1] - 9)
    c.fill(c.line(head_top, stem, 2.4), STEEL, "flat", outline=0.2)
    bar_end = (stem[0] - 14, stem[1] + (2 if variant != 2 else -3))
    c.fill(
        c.polyline([stem, (stem[0] - 4, stem[1] - 2), bar_end], 2.2),
        (40, 40, 40),
        "flat",
        outline=0.1,
    )
    if variant == 1:  # basket in front of the bars
        basket = c.rect(head_top[0] + 3, stem[1] - 6, head_top[0] + 24, stem[1] + 12, 2)
        c.fill(basket, (150, 110, 60), "vertical", texture=0.2)
        for i in range(1, 4):
            y = stem[1] - 6 + i * 4.5
            c.fill(
                c.line((head_top[0] + 4, y), (head_top[0] + 23, y), 0.8),
                (100, 70, 40),
                "flat",
                outline=0.0,
            )
    c.fill(c.ring(bb[0], bb[1], r * 0.22, 2.0), (60, 60, 60), "flat", outline=0.1)
    pedal = (bb[0] + r * 0.35, bb[1] + r * 0.3)
    c.fill(c.line(bb, pedal, 2.2), (70, 70, 70), "flat", outline=0.1)
    c.fill(c.rect(pedal[0] - 4, pedal[1] - 1.2, pedal[0] + 4, pedal[1] + 1.2, 0.5), BLACK, "flat")
    c.fill(
        c.line((bb[0] + r * 0.22, bb[1]), (rear[0], rear[1] + 2), 0.9),
        (90, 90, 90),
        "flat",
        outline=0.0,
    )
    return c.finish(flip=variant % 2 == 0)


@register("stone")
def _stone(rng: np.random.Generator, variant: int) -> np.ndarray:
    if variant % 4 == 0:  # painted ball on a square stone base
        c = Canvas(62, 78, rng)
        c.fill(c.rect(6, 40, 56, 77, 2), (196, 184, 160), "horizontal", texture=0.18)
        c.fill(c.rect(4, 36, 58, 44, 2), (210, 198, 176), "vertical", texture=0.15)
        c.fill(c.circle(31, 22, 21), jitter(rng, (236, 180, 20)), "sphere", texture=0.03)
    elif variant % 4 == 1:  # granite ball on a round plinth
        c = Canvas(56, 70, rng)
        grey = jitter(rng, (176, 178, 180), 6)
        c.fill(c.rect(8, 50, 48, 69, 3), darker(grey, 0.95), "cylinder", texture=0.25)
        c.fill(c.ellipse(28, 50, 20, 5), grey, "vertical", texture=0.2)
        c.fill(c.circle(28, 27, 24), grey, "sphere", texture=0.28)
    elif variant % 4 == 2:  # rough stone block
        c = Canvas(66, 62, rng)
        angles = np.linspace(0, 2 * math.pi, 11)[:-1] + rng.uniform(-0.12, 0.12, 10)
        radii = rng.uniform(0.85, 1.0, 10)
        outline = [
            (33 + 31 * rr * math.cos(a), 31 + 29 * rr * math.sin(a))
            for a, rr in zip(angles, radii, strict=True)
        ]
        outline = [(x, min(y, 58.0)) for x, y in outline]
        block = c.poly(outline)
        c.fill(block, jitter(rng, (168, 150, 120), 8), "sphere", texture=0.45, outline=0.35)
        c.fill(
            block * c.rect(0, 0, 66, 16, 0),
            (200, 186, 160),
            "flat",
            texture=0.4,
            outline=0.0,
            opacity=0.5,
        )
    else:  # concrete cylinder bollard with dome and reflective band
        c = Canvas(40, 74, rng)
        grey = jitter(rng, (150, 150, 146), 6)
        c.fill(c.rect(4, 16, 36, 73, 2), grey, "cylinder", texture=0.2)
        c.fill(c.ellipse(20, 17, 16, 13, 0, 180, 360), grey, "sphere", texture=0.2)
        c.fill(c.rect(4, 26, 36, 32, 0), (240, 240, 235), "cylinder", texture=0.05, outline=0.0)
        c.fill(c.rect(4, 34, 36, 40, 0), (230, 60, 40), "cylinder", texture=0.05, outline=0.0)
    return c.finish()


@register("motorbike")
def _motorbike(rng: np.random.Generator, variant: int) -> np.ndarray:
    colour = jitter(rng, [(200, 30, 40), (30, 30, 34), (40, 80, 170), (235, 235, 230)][variant % 4])
    if variant % 4 == 3:
        return _scooter(rng, colour)
    w, h = [196, 204, 190][variant % 4], [118, 112, 120][variant % 4]
    c = Canvas(w, h, rng)
    r = h * 0.24
    wheel_y = h - r - 2
    rear, front = (r + 3, wheel_y), (w - r - 3, wheel_y)
    head = (front[0] - r * 0.75, wheel_y - r * 2.1)
    for centre in (rear, front):
        _wheel(
            c,
            centre[0],
            centre[1],
            r,
            r * 0.3,
            (170, 170, 175),
            6,
            disc=variant != 1,
            spoke_width=0.8,
        )
    frame = (45.0, 45.0, 48.0)
    c.fill(c.line((w * 0.44, wheel_y - r * 0.2), rear, 4.5), frame, "flat", outline=0.2)
    c.fill(
        c.polyline([head, (w * 0.62, wheel_y - r * 0.5), (w * 0.5, wheel_y + r * 0.1)], 3.6),
        frame,
        "flat",
        outline=0.2,
    )
    c.fill(
        c.poly(
            [
                (w * 0.27, wheel_y - r * 1.25),
                (w * 0.44, wheel_y - r * 1.25),
                (w * 0.44, wheel_y - r * 0.35),
                (w * 0.33, wheel_y - r * 0.55),
            ]
        ),
        darker(colour, 0.7),
        "vertical",
        texture=0.05,
    )
    c.fill(
        c.polyline(
            [
                (w * 0.52, wheel_y + r * 0.35),
                (w * 0.3, wheel_y + r * 0.2),
                (rear[0] + r * 0.2, wheel_y - r * 0.25),
            ],
            5.0,
        ),
        CHROME,
        "hcylinder",
        outline=0.2,
    )
    c.fill(c.line(front, head, 4.2), CHROME, "cylinder", outline=0.25)
    c.fill(
        c.rect(w * 0.4, wheel_y - r * 1.15, w * 0.6, wheel_y + r * 0.25, 5),
        (70, 70, 74),
        "vertical",
        texture=0.08,
    )
    for i in range(4):
        y = wheel_y - r * 1.0 + i * r * 0.28
        c.fill(c.line((w * 0.42, y), (w * 0.58, y), 1.2), (150, 150, 155), "flat", outline=0.0)
    c.fill(
        c.arc(front[0], front[1], r * 1.12, r * 1.12, 190, 300, 3.5), colour, "flat", outline=0.3
    )
    tank = [
        (w * 0.42, wheel_y - r * 1.2),
        (w * 0.47, wheel_y - r * 1.75),
        (w * 0.64, wheel_y - r * 1.85),
        (w * 0.72, wheel_y - r * 1.45),
        (w * 0.66, wheel_y - r * 1.1),
    ]
    c.fill(c.poly(tank), colour, "vertical", texture=0.03, outline=0.3)
    seat = [
        (w * 0.2, wheel_y - r * 1.5),
        (w * 0.44, wheel_y - r * 1.5),
        (w * 0.46, wheel_y - r * 1.25),
        (w * 0.22, wheel_y - r * 1.2),
    ]
    tail = [
        (w * 0.06, wheel_y - r * 1.65),
        (w * 0.24, wheel_y - r * 1.45),
        (w * 0.42, wheel_y - r * 1.2),
        (w * 0.34, wheel_y - r * 0.85),
        (w * 0.12, wheel_y - r * 1.3),
    ]
    c.fill(c.poly(tail), colour, "vertical", outline=0.3)
    c.fill(c.poly(seat), (28, 26, 26), "vertical", texture=0.06, outline=0.2)
    c.fill(
        c.polyline(
            [(head[0] + 2, head[1]), (head[0] - 6, head[1] - 10), (head[0] - 16, head[1] - 8)], 2.6
        ),
        (40, 40, 40),
        "flat",
        outline=0.1,
    )
    c.fill(c.circle(head[0] + 7, head[1] + 6, 6.5), CHROME, "sphere", outline=0.3)
    c.fill(c.circle(head[0] + 9, head[1] + 6, 4.0), (250, 245, 200), "sphere", outline=0.0)
    return c.finish(flip=variant % 2 == 1)


def _scooter(rng: np.random.Generator, colour: Colour) -> np.ndarray:
    w, h = 150, 118
    c = Canvas(w, h, rng)
    r = 17.0
    wheel_y = h - r - 2
    rear, front = (r + 10, wheel_y), (w - r - 4, wheel_y)
    for centre in (rear, front):
        _wheel(c, centre[0], centre[1], r, r * 0.4, (160, 160, 165), 5, disc=True)
    shell = [
        (4, wheel_y - r * 1.6),
        (30, wheel_y - r * 2.6),
        (60, wheel_y - r * 2.4),
        (68, wheel_y - r * 0.9),
        (92, wheel_y - r * 0.6),
        (96, wheel_y - r * 0.1),
        (50, wheel_y + r * 0.2),
        (20, wheel_y - r * 0.3),
    ]
    c.fill(c.poly(shell), colour, "vertical", texture=0.03, outline=0.3)
    c.fill(
        c.poly(
            [
                (22, wheel_y - r * 2.55),
                (62, wheel_y - r * 2.45),
                (60, wheel_y - r * 2.2),
                (24, wheel_y - r * 2.25),
            ]
        ),
        (35, 32, 32),
        "vertical",
        outline=0.2,
    )
    shield = [
        (92, wheel_y - r * 0.4),
        (104, wheel_y - r * 4.3),
        (116, wheel_y - r * 4.4),
        (114, wheel_y - r * 1.6),
        (124, wheel_y - r * 0.7),
    ]
    c.fill(c.line(front, (110, wheel_y - r * 4.6), 3.4), (120, 120, 125), "cylinder", outline=0.2)
    c.fill(c.poly(shield), colour, "horizontal", texture=0.03, outline=0.3)
    c.fill(
        c.arc(front[0], front[1], r * 1.15, r * 1.15, 190, 330, 3.2), colour, "flat", outline=0.3
    )
    top = (110, wheel_y - r * 4.7)
    c.fill(
        c.polyline([(top[0] - 14, top[1] + 2), top, (top[0] + 8, top[1] - 1)], 2.6),
        (40, 40, 40),
        "flat",
    )
    c.fill(c.ellipse(top[0] + 4, top[1] + 6, 5, 4), (250, 245, 200), "sphere", outline=0.3)
    return c.finish()


@register("bench")
def _bench(rng: np.random.Generator, variant: int) -> np.ndarray:
    wood = jitter(rng, (176, 116, 62), 10)
    metal = jitter(rng, (36, 36, 38), 4)
    if variant % 4 == 1:  # concrete slab on two blocks
        grey = jitter(rng, (190, 188, 182), 6)
        c = Canvas(190, 58, rng)
        c.fill(c.rect(20, 22, 48, 57, 1), darker(grey, 0.8), "horizontal", texture=0.15)
        c.fill(c.rect(142, 22, 170, 57, 1), darker(grey, 0.8), "horizontal", texture=0.15)
        c.fill(c.poly([(2, 16), (14, 6), (188, 6), (176, 16)]), grey, "vertical", texture=0.15)
        c.fill(c.rect(2, 16, 176, 26, 1), darker(grey, 0.85), "vertical", texture=0.15)
        return c.finish()
    w = [196, 0, 180, 150][variant % 4]
    depth = [16, 0, 20, 14][variant % 4]
    seat_y = [28.0, 0.0, 24.0, 30.0][variant % 4]
    c = Canvas(w + depth + 4, seat_y + 44, rng)
    x0 = 2.0
    legs = (x0 + w * 0.12, x0 + w * 0.86)
    for lx in legs:  # rear legs, partly hidden behind the seat
        c.fill(
            c.line((lx + depth * 0.6, seat_y - 2), (lx + depth * 0.6, seat_y + 40), 3.0),
            darker(metal, 0.8),
            "flat",
        )
    slats = 4 if variant != 3 else 3
    for i in range(slats):  # top surface in perspective, back slat first
        f0, f1 = (slats - 1 - i) / slats, (slats - 1 - i + 0.8) / slats
        ya, yb = seat_y - depth * f1, seat_y - depth * f0
        c.fill(
            c.poly(
                [
                    (x0 + depth * f1, ya),
                    (x0 + w + depth * f1, ya),
                    (x0 + w + depth * f0, yb),
                    (x0 + depth * f0, yb),
                ]
            ),
            jitter(rng, wood, 6),
            "horizontal",
            texture=0.12,
            outline=0.25,
        )
    c.fill(
        c.rect(x0, seat_y, x0 + w, seat_y + 5, 1), darker(wood, 0.75), "horizontal", texture=0.12
    )
    for lx in legs:
        if variant == 2:  # cast scroll legs
            c.fill(
                c.polyline([(lx - 8, seat_y + 40), (lx - 2, seat_y + 26), (lx, seat_y + 4)], 3.4),
                metal,
                "flat",
            )
            c.fill(c.arc(lx - 8, seat_y + 36, 4, 4, 90, 360, 2.0), metal, "flat")
        else:
            c.fill(
                c.polyline(
                    [
                        (lx - 6, seat_y + 40),
                        (lx - 6, seat_y + 5),
                        (lx + 6, seat_y + 5),
                        (lx + 6, seat_y + 40),
                    ],
                    3.0,
                ),
                metal,
                "flat",
            )
    return c.finish(flip=variant == 3)


@register("road_sign")
def _road_sign(rng: np.random.Generator, variant: int) -> np.ndarray:
    h = [190, 200, 176, 184][variant % 4]
    sign_w = [58, 42, 60, 72][variant % 4]
    c = Canvas(sign_w + 8, h + 2, rng)
    cx = sign_w / 2 + 4
    c.fill(c.rect(cx - 2.5, 20, cx + 2.5, h, 1), STEEL, "cylinder", texture=0.04)
    c.fill(c.rect(cx - 6, h - 4, cx + 6, h + 1, 1), darker(STEEL, 0.7), "vertical")
    red, blue = jitter(rng, (200, 30, 36), 6), jitter(rng, (30, 90, 180), 6)
    white = (245, 245, 242)
    if variant % 4 == 0:  # stop sign
        r = sign_w / 2
        octagon = [
            (
                cx + r * math.cos(math.radians(22.5 + 45 * i)),
                4 + r + r * math.sin(math.radians(22.5 + 45 * i)),
            )
            for i in range(8)
        ]
        inner = [
            (
                cx + (r - 3) * math.cos(math.radians(22.5 + 45 * i)),
                4 + r + (r - 3) * math.sin(math.radians(22.5 + 45 * i)),
            )
            for i in range(8)
        ]
        c.fill(c.poly(octagon), white, "vertical", outline=0.3)
        c.fill(c.poly(inner), red, "sphere", texture=0.03, outline=0.0)
        text_w = c.text_width("STOP", 13)
        c.fill(c.text("STOP", cx - text_w / 2, 4 + r + 6.5, 13), white, "flat", outline=0.0)
    elif variant % 4 == 1:  # parking sign: tall blue panel, white P and an arrow
        c.fill(c.rect(cx - sign_w / 2, 2, cx + sign_w / 2, 86, 6), blue, "vertical", texture=0.03)
        c.fill(
            c.text("P", cx - c.text_width("P", 36, 0.2) / 2, 78, 36, 0.2),
            white,
            "flat",
            outline=0.0,
        )
        c.fill(
            c.poly(
                [
                    (cx - 12, 18),
                    (cx + 2, 18),
                    (cx + 2, 10),
                    (cx + 14, 24),
                    (cx + 2, 38),
                    (cx + 2, 30),
                    (cx - 12, 30),
                ]
            ),
            white,
            "flat",
            outline=0.0,
        )
    elif variant % 4 == 2:  # warning diamond
        r = sign_w / 2
        c.fill(
            c.poly([(cx, 2), (cx + r, 2 + r), (cx, 2 + 2 * r), (cx - r, 2 + r)]),
            (30, 30, 30),
            "flat",
        )
        c.fill(
            c.poly([(cx, 6), (cx + r - 4, 2 + r), (cx, 2 * r - 2), (cx - r + 4, 2 + r)]),
            jitter(rng, (250, 200, 20), 6),
            "sphere",
            texture=0.03,
            outline=0.0,
        )
        c.fill(
            c.text("!", cx - c.text_width("!", 26, 0.22) / 2, 2 + r + 10, 26, 0.22),
            (30, 30, 30),
            "flat",
            outline=0.0,
        )
    else:  # direction sign: white plate with black border, arrow and a word
        c.fill(
            c.poly(
                [
                    (cx - sign_w / 2, 6),
                    (cx + sign_w / 2 - 10, 6),
                    (cx + sign_w / 2, 20),
                    (cx + sign_w / 2 - 10, 34),
                    (cx - sign_w / 2, 34),
                ]
            ),
            (30, 30, 30),
            "flat",
        )
        c.fill(
            c.poly(
                [
                    (cx - sign_w / 2 + 2, 8),
                    (cx + sign_w / 2 - 11, 8),
                    (cx + sign_w / 2 - 3, 20),
                    (cx + sign_w / 2 - 11, 32),
                    (cx - sign_w / 2 + 2, 32),
                ]
            ),
            white,
            "vertical",
            outline=0.0,
        )
        c.fill(c.text("CITY", cx - sign_w / 2 + 6, 26, 13, 0.14), (30, 30, 30), "flat", outline=0.0)
    return c.finish()


@register("chair")
def _chair(rng: np.random.Generator, variant: int) -> np.ndarray:
    metal = jitter(rng, (34, 34, 36), 4)
    if variant % 4 in (0, 1):  # park bench with a backrest (the paper's "chair" images)
        wood = jitter(rng, [(180, 120, 64), (70, 110, 70)][variant % 4], 10)
        w = [170, 184][variant % 4]
        c = Canvas(w + 24, 104, rng)
        x0, seat_y = 12.0, 60.0
        ends = (x0 + 6, x0 + w - 6)
        for ex in ends:  # back legs and back posts
            c.fill(c.polyline([(ex + 8, 102), (ex + 10, seat_y), (ex + 14, 6)], 3.2), metal, "flat")
        for i in range(4):  # back slats
            y = 10 + i * 11
            c.fill(
                c.poly(
                    [
                        (x0 + 12 + i, y),
                        (x0 + w + 12 + i, y),
                        (x0 + w + 11 + i, y + 8),
                        (x0 + 11 + i, y + 8),
                    ]
                ),
                jitter(rng, wood, 6),
                "vertical",
                texture=0.12,
            )
        for i in range(3):  # seat slats in perspective
            y = seat_y - 10 + i * 5
            c.fill(
                c.poly(
                    [
                        (x0 + 10 - i * 3, y),
                        (x0 + w + 10 - i * 3, y),
                        (x0 + w + 8 - i * 3, y + 4),
                        (x0 + 8 - i * 3, y + 4),
                    ]
                ),
                jitter(rng, wood, 6),
                "horizontal",
                texture=0.12,
            )
        for ex in ends:  # front legs and armrests
            c.fill(
                c.polyline(
                    [(ex - 4, 102), (ex, seat_y), (ex - 2, seat_y - 16), (ex + 14, seat_y - 20)],
                    3.6,
                ),
                metal,
                "flat",
            )
            c.fill(c.arc(ex - 6, 98, 4, 4, 180, 450, 2.0), metal, "flat")
        return c.finish(flip=variant == 1)
    if variant % 4 == 2:  # wooden chair, front view
        wood = jitter(rng, (150, 96, 52), 10)
        c = Canvas(64, 112, rng)
        for x in (10, 54):
            c.fill(c.line((x, 4), (x - 1 if x < 32 else x + 1, 60), 4.0), wood, "cylinder")
        for y in (10, 22, 34):
            c.fill(c.rect(10, y, 54, y + 6, 1), darker(wood, 1.1), "vertical", texture=0.15)
        for x0, x1 in ((8, 6), (56, 58), (14, 15), (50, 49)):
            c.fill(
                c.line((x0, 64), (x1, 110), 3.6),
                darker(wood, 0.9 if x0 in (14, 50) else 1.0),
                "cylinder",
            )
        c.fill(c.poly([(12, 58), (52, 58), (60, 68), (4, 68)]), wood, "vertical", texture=0.15)
        c.fill(c.rect(4, 68, 60, 73, 1), darker(wood, 0.75), "vertical")
        return c.finish()
    # plastic patio chair with slotted back
    white = jitter(rng, (238, 238, 234), 4)
    c = Canvas(72, 104, rng)
    back = c.poly([(12, 60), (8, 18), (20, 4), (52, 4), (64, 18), (60, 60)])
    c.fill(back, white, "cylinder", texture=0.03)
    for x in (24, 32, 40, 48):
        c.erase(c.rect(x - 2, 14, x + 2, 46, 2))
    for x0, x1 in ((10, 4), (62, 68), (18, 20), (54, 52)):
        c.fill(
            c.line((x0, 70), (x1, 102), 4.0),
            darker(white, 0.9 if x0 in (18, 54) else 1.0),
            "cylinder",
        )
    c.fill(c.poly([(10, 56), (62, 56), (70, 70), (2, 70)]), white, "vertical", texture=0.03)
    c.fill(c.polyline([(2, 48), (4, 66)], 3.0), white, "flat")
    c.fill(c.polyline([(70, 48), (68, 66)], 3.0), white, "flat")
    return c.finish()


@register("card")
def _card(rng: np.random.Generator, variant: int) -> np.ndarray:
    if variant % 4 == 0:  # A-frame chalkboard with a wooden frame
        wood = jitter(rng, (150, 100, 56), 10)
        c = Canvas(74, 124, rng)
        c.fill(c.line((56, 10), (70, 122), 3.0), darker(wood, 0.7), "flat")  # rear leg
        c.fill(
            c.poly(
                [(14, 2), (60, 2), (66, 122), (60, 122), (58, 108), (16, 108), (14, 122), (8, 122)]
            ),
            wood,
            "vertical",
            texture=0.15,
        )
        c.fill(c.poly([(18, 8), (56, 8), (58, 102), (16, 102)]), (38, 42, 40), "flat", texture=0.12)
        c.fill(c.text("MENU", 20, 22, 8, 0.12), (240, 240, 235), "flat", outline=0.0)
        for i, col in enumerate(
            [(240, 200, 90), (240, 240, 235), (140, 210, 230), (240, 240, 235)]
        ):
            y = 36 + i * 14
            c.fill(
                c.polyline([(21, y), (30, y - 1), (42, y + 1), (52, y)], 1.1),
                col,
                "flat",
                outline=0.0,
            )
        return c.finish()
    if variant % 4 == 1:  # poster in a metal frame on a stand
        c = Canvas(72, 152, rng)
        c.fill(c.rect(33, 100, 39, 146, 1), STEEL, "cylinder")
        c.fill(c.ellipse(36, 147, 22, 4), darker(STEEL, 0.6), "vertical")
        c.fill(c.rect(2, 2, 70, 102, 2), (150, 152, 158), "cylinder", texture=0.03)
        c.fill(c.rect(6, 6, 66, 98, 0), (246, 244, 238), "flat", texture=0.02, outline=0.0)
        c.fill(c.rect(10, 10, 62, 24, 0), jitter(rng, (200, 40, 50), 10), "horizontal", outline=0.0)
        c.fill(
            c.rect(10, 28, 62, 62, 0),
            jitter(rng, (70, 140, 200), 10),
            "sphere",
            texture=0.1,
            outline=0.0,
        )
        for i in range(4):
            y = 68 + i * 7
            c.fill(c.rect(10, y, 62 - 12 * (i % 2), y + 3, 0), (120, 120, 120), "flat", outline=0.0)
        return c.finish()
    if variant % 4 == 2:  # roll-up banner on a cassette base
        c = Canvas(56, 192, rng)
        top = jitter(rng, (40, 150, 90), 10)
        c.fill(c.rect(2, 180, 54, 190, 3), (120, 122, 126), "hcylinder")
        c.fill(c.rect(4, 2, 52, 182, 0), (248, 248, 246), "flat", texture=0.02)
        c.fill(c.rect(4, 2, 52, 64, 0), top, "vertical", texture=0.03, outline=0.0)
        c.fill(c.circle(28, 40, 13), (250, 250, 250), "flat", outline=0.0)
        c.fill(c.circle(28, 40, 8), top, "sphere", outline=0.0)
        for i in range(8):
            y = 76 + i * 11
            c.fill(
                c.rect(10, y, 46 - 8 * (i % 3 == 2), y + 4, 0),
                darker(top, 0.8),
                "flat",
                outline=0.0,
            )
        c.fill(c.rect(2, 1, 54, 4, 1), (110, 110, 112), "flat")
        return c.finish()
    # information board with a coloured header on two legs
    c = Canvas(72, 136, rng)
    for x in (12, 60):
        c.fill(c.rect(x - 2.5, 70, x + 2.5, 135, 1), STEEL, "cylinder")
    c.fill(c.rect(2, 2, 70, 96, 3), (200, 40, 40), "vertical", texture=0.03)
    c.fill(c.rect(6, 22, 66, 92, 1), (248, 246, 240), "flat", texture=0.02, outline=0.0)
    c.fill(c.text("BUS", 20, 17, 13, 0.16), (250, 250, 250), "flat", outline=0.0)
    for i in range(6):
        y = 30 + i * 10
        c.fill(c.rect(10, y, 22, y + 5, 0), (200, 40, 40), "flat", outline=0.0)
        c.fill(c.rect(26, y + 1, 62, y + 4, 0), (90, 90, 90), "flat", outline=0.0)
    return c.finish()


@register("pedestrian")
def _pedestrian(rng: np.random.Generator, variant: int) -> np.ndarray:
    """A person seen from the front (standing) or the side (walking), dressed differently."""
    styles = [
        dict(
            top=(40, 44, 52),
            bottom=(110, 110, 116),
            coat=True,
            skirt=False,
            side=True,
            hair=(30, 25, 20),
            long_hair=False,
            backpack=False,
        ),
        dict(
            top=(236, 236, 230),
            bottom=(30, 30, 34),
            coat=False,
            skirt=True,
            side=False,
            hair=(60, 40, 25),
            long_hair=True,
            backpack=False,
        ),
        dict(
            top=(245, 245, 245),
            bottom=(50, 80, 130),
            coat=False,
            skirt=False,
            side=False,
            hair=(20, 20, 20),
            long_hair=False,
            backpack=False,
        ),
        dict(
            top=(190, 40, 40),
            bottom=(40, 40, 44),
            coat=False,
            skirt=False,
            side=True,
            hair=(90, 60, 30),
            long_hair=False,
            backpack=True,
        ),
    ]
    s = styles[variant % 4]
    h = [204.0, 192.0, 210.0, 198.0][variant % 4]
    top, bottom = jitter(rng, s["top"], 8), jitter(rng, s["bottom"], 8)
    skin = jitter(rng, SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], 6)
    hair = jitter(rng, s["hair"], 6)
    shoe = (30.0, 28.0, 28.0)
    side = bool(s["side"])
    c = Canvas(h * (0.36 if side else 0.3), h + 3, rng)
    cx = c.width / 2
    legs = darker(skin, 0.9) if s["skirt"] else bottom
    leg_w, arm_w = h * (0.05 if s["skirt"] else 0.066), h * 0.048

    def limb(points: list[Point], width: float, colour: Colour) -> None:
        c.fill(
            c.polyline([(cx + x * h, y * h) for x, y in points], width),
            colour,
            "cylinder",
            texture=0.06,
        )

    def dot(x: float, y: float, rx: float, ry: float, colour: Colour) -> None:
        c.fill(c.ellipse(cx + x * h, y * h, rx * h, ry * h), colour, "sphere", outline=0.15)

    if side:  # walking, facing right: far limbs first and darker
        limb([(0.0, 0.5), (-0.03, 0.73), (-0.1, 0.93)], leg_w, darker(legs, 0.8))
        dot(-0.09, 0.955, 0.035, 0.014, shoe)
        limb([(0.0, 0.2), (-0.05, 0.33), (-0.075, 0.44)], arm_w, darker(top, 0.75))
        dot(-0.077, 0.455, 0.019, 0.021, darker(skin, 0.85))
        if s["backpack"]:
            c.fill(
                c.rect(cx - h * 0.14, h * 0.19, cx - h * 0.04, h * 0.42, 6),
                (40, 50, 70),
                "cylinder",
                texture=0.08,
            )
        limb([(0.0, 0.5), (0.06, 0.72), (0.1, 0.93)], leg_w, legs)
        dot(0.125, 0.955, 0.037, 0.014, shoe)
        torso_w = 0.062
    else:  # standing, seen from the front
        for sign in (-1.0, 1.0):
            limb([(sign * 0.042, 0.5), (sign * 0.046, 0.73), (sign * 0.055, 0.93)], leg_w, legs)
            dot(sign * 0.062, 0.955, 0.03, 0.015, shoe)
        torso_w = 0.1
    torso_bottom = 0.64 if s["coat"] else 0.52
    if s["skirt"]:
        c.fill(
            c.poly(
                [
                    (cx - h * 0.075, h * 0.48),
                    (cx + h * 0.075, h * 0.48),
                    (cx + h * 0.11, h * 0.68),
                    (cx - h * 0.11, h * 0.68),
                ]
            ),
            bottom,
            "cylinder",
            texture=0.06,
        )
    else:
        c.fill(
            c.rect(cx - h * torso_w * 0.82, h * 0.46, cx + h * torso_w * 0.82, h * 0.57, 3),
            bottom,
            "cylinder",
            texture=0.06,
        )
    c.fill(
        c.rect(cx - h * 0.018, h * 0.12, cx + h * 0.018, h * 0.18, 1),
        darker(skin, 0.85),
        "cylinder",
    )
    shoulders = c.rect(cx - h * torso_w, h * 0.165, cx + h * torso_w, h * 0.3, h * 0.03)
    waist = c.poly(
        [
            (cx - h * torso_w, h * 0.25),
            (cx + h * torso_w, h * 0.25),
            (cx + h * torso_w * 0.85, h * torso_bottom),
            (cx - h * torso_w * 0.85, h * torso_bottom),
        ]
    )
    c.fill(np.maximum(shoulders, waist), top, "cylinder", texture=0.06)
    if side:
        limb([(0.005, 0.2), (0.035, 0.33), (0.085, 0.43)], arm_w, top)
        dot(0.092, 0.445, 0.019, 0.021, skin)
    else:
        for sign in (-1.0, 1.0):
            limb([(sign * 0.095, 0.195), (sign * 0.115, 0.33), (sign * 0.11, 0.45)], arm_w, top)
            dot(sign * 0.11, 0.465, 0.019, 0.022, skin)
    if s["long_hair"]:
        c.fill(
            c.rect(cx - h * 0.052, h * 0.05, cx + h * 0.052, h * 0.2, h * 0.02),
            hair,
            "cylinder",
            texture=0.1,
        )
    dot(0.0 if not side else 0.006, 0.075, 0.046, 0.058, skin)
    c.fill(
        c.ellipse(cx - (h * 0.008 if side else 0), h * 0.066, h * 0.049, h * 0.05, 0, 175, 365),
        hair,
        "sphere",
        texture=0.1,
    )
    if side:
        c.fill(
            c.ellipse(cx - h * 0.025, h * 0.08, h * 0.03, h * 0.04),
            hair,
            "sphere",
            texture=0.1,
            outline=0.0,
        )
    return c.finish(flip=variant % 2 == 1)


@register("fire_hydrant")
def _fire_hydrant(rng: np.random.Generator, variant: int) -> np.ndarray:
    body = jitter(
        rng, [(200, 30, 30), (240, 190, 30), (240, 200, 40), (226, 150, 160)][variant % 4], 6
    )
    cap = [body, body, jitter(rng, (60, 150, 70), 6), (200, 200, 205)][variant % 4]
    h = [100.0, 112.0, 92.0, 104.0][variant % 4]
    w = [58.0, 56.0, 64.0, 54.0][variant % 4]
    c = Canvas(w + 4, h + 2, rng)
    cx = c.width / 2
    bw = w * 0.28
    nozzle_y = h * 0.5
    for sign in (-1.0, 1.0):
        c.fill(
            c.rect(
                min(cx + sign * bw, cx + sign * w * 0.42),
                nozzle_y - 6,
                max(cx + sign * bw, cx + sign * w * 0.42),
                nozzle_y + 6,
                1,
            ),
            body,
            "hcylinder",
            texture=0.05,
        )
        x_end = cx + sign * w * 0.44
        c.fill(
            c.rect(x_end - 3, nozzle_y - 8, x_end + 3, nozzle_y + 8, 1.5),
            cap,
            "hcylinder",
            texture=0.05,
        )
    c.fill(
        c.rect(cx - w * 0.46, h - 8, cx + w * 0.46, h, 1.5),
        darker(body, 0.85),
        "cylinder",
        texture=0.06,
    )
    c.fill(c.rect(cx - bw, h * 0.3, cx + bw, h - 7, 2), body, "cylinder", texture=0.06)
    c.fill(
        c.rect(cx - bw - 4, h * 0.28, cx + bw + 4, h * 0.36, 2),
        darker(body, 0.9),
        "cylinder",
        texture=0.06,
    )
    c.fill(c.rect(cx - bw - 3, h * 0.8, cx + bw + 3, h * 0.85, 1.5), darker(body, 0.9), "cylinder")
    c.fill(c.ellipse(cx, h * 0.29, bw + 1, h * 0.17, 0, 180, 360), cap, "sphere", texture=0.05)
    c.fill(c.rect(cx - 4, h * 0.07, cx + 4, h * 0.14, 1), darker(cap, 0.85), "cylinder")
    c.fill(c.circle(cx, nozzle_y + 2, 8), darker(body, 0.95), "sphere")
    c.fill(c.circle(cx, nozzle_y + 2, 4.5), cap, "sphere")
    if variant % 2 == 0:
        c.fill(
            c.arc(cx - bw * 0.5, nozzle_y + 10, bw * 0.9, 6, 0, 180, 1.0),
            (150, 150, 150),
            "flat",
            outline=0.0,
        )
    return c.finish()
