"""The person renderer of the synthetic demo dataset: one view of one identity, with region boxes.

Regions are drawn as large flat areas of the identity's colours with a little shading, so that
the colour a caption names is the colour in the pixels (``synth-attributes.json`` keeps each
region's box and a ``sample`` box that only that region's colour covers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from ogor.synth.attributes import (
    HAIR_COLOURS,
    PALETTE,
    SKIN_TONES,
    PersonAttributes,
    ViewParams,
)

_SHIFT = 4  # sub-pixel bits for OpenCV drawing: smooth edges even at 64x32
_ONE = 1 << _SHIFT
Point = tuple[float, float]


class _Canvas:
    """A premultiplied RGB layer plus its coverage, drawn in a person's body frame.

    The body frame measures in ``u`` = 1/7.5 of the person's height, ``y`` down from the top of
    the head and ``x`` from the body's axis towards the right of the picture (towards the left
    when the view is flipped), so the geometry below reads like a figure drawing.
    """

    def __init__(self, height: int, width: int, cx: float, top: float, u: float, flip: bool):
        self.rgb = np.zeros((height, width, 3), np.uint8)
        self.alpha = np.zeros((height, width), np.uint8)
        self.cx, self.top, self.u = cx, top, u
        self.sign = -1.0 if flip else 1.0

    def p(self, x: float, y: float) -> Point:
        return (self.cx + self.sign * x * self.u, self.top + y * self.u)

    def box(self, points: Sequence[Point]) -> list[int]:
        """Pixel bounding box ``[x, y, w, h]`` of body-frame points (outward-rounded)."""
        xy = np.array([self.p(x, y) for x, y in points])
        x0, y0 = np.floor(xy.min(axis=0))
        x1, y1 = np.ceil(xy.max(axis=0))
        return [int(x0), int(y0), int(x1 - x0), int(y1 - y0)]

    def inner_box(self, x0: float, y0: float, x1: float, y1: float) -> list[int]:
        """Pixel box ``[x, y, w, h]`` of whole pixels inside a body-frame rectangle."""
        (ax, ay), (bx, by) = self.p(x0, y0), self.p(x1, y1)
        left, right = math.ceil(min(ax, bx)), math.floor(max(ax, bx))
        upper, lower = math.ceil(min(ay, by)), math.floor(max(ay, by))
        return [left, upper, max(1, right - left), max(1, lower - upper)]

    def poly(self, points: Sequence[Point], colour: Sequence[int]) -> None:
        pts = [np.round(np.array([self.p(x, y) for x, y in points]) * _ONE).astype(np.int32)]
        cv2.fillPoly(self.rgb, pts, tuple(int(c) for c in colour), cv2.LINE_AA, _SHIFT)
        cv2.fillPoly(self.alpha, pts, 255, cv2.LINE_AA, _SHIFT)

    def ellipse(
        self, x: float, y: float, ax: float, ay: float, colour: Sequence[int],
        start: float = 0, end: float = 360,
    ) -> None:
        cx, cy = self.p(x, y)
        centre = (round(cx * _ONE), round(cy * _ONE))
        axes = (max(1, round(ax * self.u * _ONE)), max(1, round(ay * self.u * _ONE)))
        if self.sign < 0:  # mirror the arc
            start, end = 180 - end, 180 - start
        colour = tuple(int(c) for c in colour)
        cv2.ellipse(self.rgb, centre, axes, 0, start, end, colour, -1, cv2.LINE_AA, _SHIFT)
        cv2.ellipse(self.alpha, centre, axes, 0, start, end, 255, -1, cv2.LINE_AA, _SHIFT)

    def line(self, a: Point, b: Point, colour: Sequence[int], width: float) -> None:
        pa, pb = self.p(*a), self.p(*b)
        thickness = max(1, round(width * self.u))
        start = (round(pa[0] * _ONE), round(pa[1] * _ONE))
        end = (round(pb[0] * _ONE), round(pb[1] * _ONE))
        colour = tuple(int(c) for c in colour)
        cv2.line(self.rgb, start, end, colour, thickness, cv2.LINE_AA, _SHIFT)
        cv2.line(self.alpha, start, end, 255, thickness, cv2.LINE_AA, _SHIFT)


def _shade(colour: Sequence[int], factor: float) -> tuple[int, int, int]:
    r, g, b = (min(255, max(0, round(c * factor))) for c in colour)
    return (r, g, b)


def _lerp(a: Point, b: Point, t: float) -> Point:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


# Body-frame landmarks (units of u; the person is 7.5 u tall).
_WAIST, _CROTCH, _ANKLE, _SOLE = 3.1, 3.85, 7.05, 7.5
_COAT_HEM, _SHORTS_HEM, _SKIRT_HEM, _DRESS_HEM = 4.2, 5.1, 5.15, 5.2
_SHOULDER = (0.92, 1.42)  # arm pivot (x, y)
_ARM_LENGTH = 2.45
#: Boxes inside a region that only that region's colour covers, whatever the pose.
_TORSO_SAMPLE = (-0.48, 1.9, -0.12, 2.6)
_LEGS_SAMPLE_Y = (4.4, 4.9)


def _leg(side: float, foot: float, lift: float) -> tuple[Point, Point, Point, Point]:
    """Quad of one leg: hip-inner, hip-outer, ankle-outer, ankle-inner (side -1 left, +1 right)."""
    ankle_x = side * (0.43 + foot)
    ankle_y = _ANKLE - lift
    return (
        (side * 0.02, _CROTCH - 0.05),
        (side * 0.86, _CROTCH - 0.05),
        (ankle_x + side * 0.24, ankle_y),
        (ankle_x - side * 0.24, ankle_y),
    )


def _cut_leg(quad: tuple[Point, Point, Point, Point], y: float) -> list[Point]:
    """The part of a leg quad above height ``y``."""
    inner_top, outer_top, outer_bottom, inner_bottom = quad
    t_outer = (y - outer_top[1]) / (outer_bottom[1] - outer_top[1])
    t_inner = (y - inner_top[1]) / (inner_bottom[1] - inner_top[1])
    return [
        inner_top, outer_top,
        _lerp(outer_top, outer_bottom, t_outer), _lerp(inner_top, inner_bottom, t_inner),
    ]


def _arm(side: float, degrees: float) -> tuple[Point, Point, Point]:
    """Shoulder pivot, hand centre and unit direction of one arm, swung out by ``degrees``."""
    angle = math.radians(degrees)
    direction = (side * math.sin(angle), math.cos(angle))
    pivot = (side * _SHOULDER[0], _SHOULDER[1])
    hand = (pivot[0] + direction[0] * _ARM_LENGTH, pivot[1] + direction[1] * _ARM_LENGTH)
    return pivot, hand, direction


def _arm_quad(pivot: Point, direction: Point, start: float, end: float, w0: float, w1: float):
    nx, ny = direction[1], -direction[0]  # perpendicular

    def at(t: float, w: float, s: float) -> Point:
        return (
            pivot[0] + direction[0] * t + s * nx * w / 2,
            pivot[1] + direction[1] * t + s * ny * w / 2,
        )

    return [at(start, w0, 1), at(end, w1, 1), at(end, w1, -1), at(start, w0, -1)]


def _background(rng: np.random.Generator, kind: str, height: int, width: int) -> np.ndarray:
    """A float RGB background (street, brick wall, park or indoor) with texture noise."""
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    horizon = int(height * rng.uniform(0.58, 0.74))
    muted = rng.uniform(70, 190, 3).astype(np.float32)
    muted = muted.mean() + (muted - muted.mean()) * 0.35  # low saturation
    image = np.empty((height, width, 3), np.float32)
    if kind == "street":
        image[:] = muted * (1.08 - 0.2 * rows)
        for _ in range(int(rng.integers(1, 4))):  # windows
            x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, max(1, horizon - 8)))
            w, h = int(width * rng.uniform(0.15, 0.35)), int(height * rng.uniform(0.08, 0.18))
            image[y0 : y0 + h, x0 : x0 + w] = muted * 0.55
        image[horizon:] = rng.uniform(95, 150) + np.zeros(3, np.float32)
        image[horizon : horizon + max(1, height // 64)] = 200.0  # kerb
    elif kind == "wall":
        brick = np.array([rng.uniform(130, 175), rng.uniform(70, 100), rng.uniform(55, 80)])
        image[:] = brick.astype(np.float32)
        course = max(3, height // 16)
        mortar = np.float32(rng.uniform(170, 200))
        for row, y in enumerate(range(0, horizon, course)):
            image[y : y + max(1, course // 5)] = mortar
            offset = (row % 2) * (width // 6)
            for x in range(offset, width, width // 3):
                image[y : y + course, x : x + max(1, course // 5)] = mortar
        image[horizon:] = muted * 0.8
    elif kind == "park":
        sky = np.array([150, 185, 225], np.float32)
        image[:] = sky * (0.95 + 0.1 * rows)
        tree_line = int(horizon * rng.uniform(0.35, 0.6))
        image[tree_line:horizon] = np.array([45, 85, 45], np.float32) * rng.uniform(0.8, 1.2)
        image[horizon:] = np.array([85, 140, 60], np.float32) * rng.uniform(0.85, 1.15)
    else:  # indoor
        image[:] = muted * (0.9 + 0.2 * rows)
        image[horizon:] = muted[::-1] * 0.75
    image += rng.normal(0.0, 6.0, image.shape).astype(np.float32)
    return image


Regions = dict[str, dict[str, list[int]]]


def render_person(
    person: PersonAttributes, view: ViewParams, size: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, Regions]:
    """Render one view as an RGB uint8 image and return it with its region boxes.

    Regions: ``head``, ``torso``, ``legs``, ``shoes``, and ``hat``, ``bag``, ``backpack`` when
    carried; each ``{"box": [x, y, w, h]}`` in pixels, and for the coloured garments a ``sample``
    box that only that garment's colour covers.
    """
    height, width = size
    person_h = view.scale * min(0.92 * height, 1.84 * width)
    u = person_h / 7.5
    half_width = (2.2 if person.handbag else 1.8) * u  # keep hands and bag inside the picture
    free_x = max(0.0, width / 2 - half_width)
    cx = width / 2 + view.shift_x * free_x
    top = (height - person_h) / 2 + view.shift_y * (height - person_h) / 2
    body = _Canvas(height, width, cx, top, u, view.flip)
    # The handbag gets its own layer: the body's rounding shade must not darken it.
    front = _Canvas(height, width, cx, top, u, view.flip)
    regions: Regions = {}

    # Back to front.
    if person.backpack:
        _draw_backpack(body, person.backpack, regions)
    legs = _draw_lower(body, person, view, regions)
    _draw_shoes(body, person.shoes_colour, legs, regions)
    _draw_upper(body, person, regions)
    hands = _draw_arms(body, person, view)
    if person.backpack:
        for side in (-1.0, 1.0):
            body.line((side * 0.6, 1.25), (side * 0.7, 2.9),
                      _shade(PALETTE[person.backpack], 0.9), 0.17)
    _draw_head(body, person, regions)
    if person.handbag:
        _draw_handbag(front, person.handbag, hands[1.0], SKIN_TONES[person.skin_tone], regions)

    # Soft shading across the body (rounder look), ground shadow, composite, lighting, noise.
    xs = np.arange(width, dtype=np.float32) + 0.5
    shading = np.clip(1.0 - 0.16 * ((xs - cx) / (1.3 * u)) ** 2, 0.78, 1.0)[None, :, None]
    background = _background(rng, view.background, height, width)
    shadow = np.zeros((height, width), np.uint8)
    foot_y = top + (_SOLE - 0.05) * u
    cv2.ellipse(shadow, (round(cx * _ONE), round(foot_y * _ONE)),
                (round(1.3 * u * _ONE), round(0.22 * u * _ONE)), 0, 0, 360, 255, -1,
                cv2.LINE_AA, _SHIFT)
    background *= (1.0 - 0.35 * shadow.astype(np.float32) / 255.0)[:, :, None]
    image = _over(body.rgb.astype(np.float32) * shading, body.alpha, background)
    image = _over(front.rgb.astype(np.float32), front.alpha, image)
    image = image * view.gain + np.asarray(view.cast, np.float32)
    image += rng.normal(0.0, 2.5, image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), regions


def _over(premultiplied: np.ndarray, alpha: np.ndarray, under: np.ndarray) -> np.ndarray:
    """Composite a premultiplied layer over ``under``."""
    return premultiplied + under * (1.0 - alpha.astype(np.float32)[:, :, None] / 255.0)


def _draw_backpack(cv: _Canvas, colour: str, regions: Regions) -> None:
    """The pack sits behind the body: it shows above the shoulders and beside the torso."""
    points = [(-1.12, 1.02), (1.12, 1.02), (1.12, 3.3), (-1.12, 3.3)]
    cv.poly(points, PALETTE[colour])
    regions["backpack"] = {"box": cv.box(points)}


def _draw_lower(
    cv: _Canvas, person: PersonAttributes, view: ViewParams, regions: Regions
) -> dict[float, tuple[Point, Point, Point, Point]]:
    """Bare legs, then the lower garment over them; returns the leg quads by side."""
    skin = SKIN_TONES[person.skin_tone]
    lower = PALETTE[person.lower_colour]
    legs = {
        -1.0: _leg(-1.0, view.left_foot, max(0.0, view.foot_lift)),
        1.0: _leg(1.0, view.right_foot, max(0.0, -view.foot_lift)),
    }
    for quad in legs.values():
        cv.poly(quad, _shade(skin, 0.95))
    hip = [(-0.8, _WAIST), (0.8, _WAIST), (0.88, _CROTCH), (-0.88, _CROTCH)]
    garment: list[Point]
    if person.lower_type in ("trousers", "jeans"):
        cv.poly(hip, lower)
        for quad in legs.values():
            cv.poly(quad, lower)
        if person.lower_type == "jeans":  # light outer seams
            seam = _shade(lower, 1.3 if person.lower_colour != "white" else 0.8)
            for quad in legs.values():
                cv.line(_lerp(quad[1], quad[2], 0.05), _lerp(quad[1], quad[2], 0.95), seam, 0.07)
        garment = hip + [p for quad in legs.values() for p in quad]
    elif person.lower_type == "shorts":
        cv.poly(hip, lower)
        garment = list(hip)
        for quad in legs.values():
            part = _cut_leg(quad, _SHORTS_HEM)
            cv.poly(part, lower)
            garment += part
    elif person.lower_type == "skirt":
        garment = [(-0.8, _WAIST), (0.8, _WAIST), (1.12, _SKIRT_HEM), (-1.12, _SKIRT_HEM)]
        cv.poly(garment, lower)
    else:  # dress: drawn with the upper garment
        garment = [(-0.66, 3.0), (0.66, 3.0), (1.15, _DRESS_HEM), (-1.15, _DRESS_HEM)]

    # Colour sample: on the left leg's axis, below any coat hem and above any shorts hem.
    left = legs[-1.0]
    y0, y1 = _LEGS_SAMPLE_Y
    axis_top, axis_bottom = _lerp(left[0], left[1], 0.5), _lerp(left[2], left[3], 0.5)
    t = ((y0 + y1) / 2 - axis_top[1]) / (axis_bottom[1] - axis_top[1])
    axis_x = _lerp(axis_top, axis_bottom, t)[0]
    regions["legs"] = {
        "box": cv.box(garment),
        "sample": cv.inner_box(axis_x - 0.13, y0, axis_x + 0.13, y1),
    }
    return legs


def _draw_shoes(
    cv: _Canvas, colour: str, legs: dict[float, tuple[Point, Point, Point, Point]],
    regions: Regions,
) -> None:
    corners: list[Point] = []
    for quad in legs.values():
        ankle = _lerp(quad[2], quad[3], 0.5)
        cv.ellipse(ankle[0], ankle[1] + 0.2, 0.36, 0.25, PALETTE[colour])
        corners += [(ankle[0] - 0.36, ankle[1] - 0.05), (ankle[0] + 0.36, ankle[1] + 0.45)]
    left = _lerp(legs[-1.0][2], legs[-1.0][3], 0.5)
    regions["shoes"] = {
        "box": cv.box(corners),
        "sample": cv.inner_box(left[0] - 0.17, left[1] + 0.09, left[0] + 0.17, left[1] + 0.31),
    }


def _draw_upper(cv: _Canvas, person: PersonAttributes, regions: Regions) -> None:
    """Neck, then the upper garment (a dress flares down over the legs) and its details."""
    upper = PALETTE[person.upper_colour]
    cv.poly([(-0.14, 0.85), (0.14, 0.85), (0.15, 1.3), (-0.15, 1.3)], SKIN_TONES[person.skin_tone])
    if person.upper_type == "dress":
        bodice = [(-0.28, 1.12), (0.28, 1.12), (0.82, 1.32), (0.74, 2.1), (0.66, 3.0),
                  (-0.66, 3.0), (-0.74, 2.1), (-0.82, 1.32)]
        outline = bodice[:5] + [(1.15, _DRESS_HEM), (-1.15, _DRESS_HEM)] + bodice[5:]
    else:
        hem = _COAT_HEM if person.upper_type == "coat" else 3.25
        hem_x = 0.93 if person.upper_type == "coat" else 0.8
        bodice = outline = [(-0.28, 1.12), (0.28, 1.12), (0.95, 1.32), (0.86, 2.1),
                            (hem_x, hem), (-hem_x, hem), (-0.86, 2.1), (-0.95, 1.32)]
    cv.poly(outline, upper)
    _garment_details(cv, person, upper)
    regions["torso"] = {"box": cv.box(bodice), "sample": cv.inner_box(*_TORSO_SAMPLE)}


def _draw_arms(cv: _Canvas, person: PersonAttributes, view: ViewParams) -> dict[float, Point]:
    """Sleeves in the garment colour, skin below short sleeves, hands; returns hand centres."""
    skin = SKIN_TONES[person.skin_tone]
    sleeve = {"t-shirt": 0.8, "dress": 0.55}.get(person.upper_type, _ARM_LENGTH - 0.1)
    hands: dict[float, Point] = {}
    for side, degrees in ((-1.0, view.left_arm_deg), (1.0, view.right_arm_deg)):
        pivot, hand, direction = _arm(side, degrees)
        hands[side] = hand
        cv.poly(_arm_quad(pivot, direction, -0.15, _ARM_LENGTH, 0.34, 0.28), skin)
        cv.poly(_arm_quad(pivot, direction, -0.2, sleeve, 0.44, 0.36),
                PALETTE[person.upper_colour])
        cv.ellipse(hand[0], hand[1], 0.19, 0.19, skin)
    return hands


def _draw_head(cv: _Canvas, person: PersonAttributes, regions: Regions) -> None:
    """Long hair falls in front of the shoulders; short hair and hats sit on top."""
    skin = SKIN_TONES[person.skin_tone]
    hair = HAIR_COLOURS[person.hair_colour] if person.hair_colour else skin
    if person.hair_style == "long":
        cv.poly([(-0.5, 0.35), (0.5, 0.35), (0.54, 1.75), (-0.54, 1.75)], hair)
    if person.hair_style == "ponytail":
        cv.ellipse(0.44, 0.62, 0.17, 0.36, hair)
    cv.ellipse(0.0, 0.55, 0.36, 0.48, skin)
    if person.hair_style in ("short", "long", "ponytail"):
        cv.ellipse(0.0, 0.42, 0.4, 0.38, hair, 180, 360)
    for eye in (-0.14, 0.14):
        cv.ellipse(eye, 0.58, 0.05, 0.04, (40, 30, 30))
    head_right = 0.62 if person.hair_style == "ponytail" else 0.45
    regions["head"] = {"box": cv.box([(-0.45, 0.0), (head_right, 1.05)])}
    if person.hat:
        colour = PALETTE[person.hat]
        cv.ellipse(0.0, 0.34, 0.43, 0.32, colour, 180, 360)
        cv.poly([(-0.46, 0.26), (0.62, 0.26), (0.62, 0.38), (-0.46, 0.38)], colour)
        regions["hat"] = {"box": cv.box([(-0.46, 0.0), (0.62, 0.38)]),
                          "sample": cv.inner_box(-0.2, 0.1, 0.2, 0.24)}


def _draw_handbag(
    cv: _Canvas, colour_name: str, hand: Point, skin: Sequence[int], regions: Regions
) -> None:
    """A handbag hanging from the hand at the hip; the hand is drawn again over its handle."""
    colour = PALETTE[colour_name]
    hx, hy = hand
    points = [(hx - 0.38, hy + 0.18), (hx + 0.38, hy + 0.18), (hx + 0.45, hy + 0.9),
              (hx - 0.45, hy + 0.9)]
    cv.line((hx - 0.22, hy + 0.2), (hx, hy), _shade(colour, 0.7), 0.08)
    cv.line((hx + 0.22, hy + 0.2), (hx, hy), _shade(colour, 0.7), 0.08)
    cv.poly(points, colour)
    cv.ellipse(hx, hy, 0.17, 0.17, skin)
    regions["bag"] = {"box": cv.box(points),
                      "sample": cv.inner_box(hx - 0.2, hy + 0.36, hx + 0.2, hy + 0.74)}


def _garment_details(cv: _Canvas, person: PersonAttributes, colour: Sequence[int]) -> None:
    """Collars, zips, buttons and hems: small cues of the garment type, never over the sample."""
    dark = _shade(colour, 0.6) if sum(colour) > 120 else _shade((90, 90, 90), 1.0)
    kind = person.upper_type
    if kind == "jacket":
        cv.line((0.0, 1.2), (0.0, 3.2), dark, 0.07)
        cv.poly([(-0.3, 1.12), (-0.12, 1.5), (0.0, 1.2), (0.12, 1.5), (0.3, 1.12)], dark)
        for side in (-1.0, 1.0):
            cv.poly([(side * 0.3, 2.75), (side * 0.65, 2.75), (side * 0.65, 3.05),
                     (side * 0.3, 3.05)], dark)
    elif kind == "coat":
        cv.poly([(-0.3, 1.12), (0.0, 1.75), (0.3, 1.12), (0.36, 1.2), (0.0, 1.85),
                 (-0.36, 1.2)], dark)
        for y in (2.0, 2.5, 3.0, 3.5):
            cv.ellipse(0.0, y, 0.06, 0.06, dark)
        cv.line((-0.9, 3.2), (0.9, 3.2), dark, 0.08)  # belt
    elif kind == "shirt":
        cv.poly([(-0.3, 1.12), (0.0, 1.35), (0.3, 1.12), (0.2, 1.45), (0.0, 1.38),
                 (-0.2, 1.45)], dark)
        for y in (1.7, 2.2, 2.7):
            cv.ellipse(0.0, y, 0.05, 0.05, dark)
    elif kind == "sweater":
        cv.poly([(-0.8, 3.0), (0.8, 3.0), (0.8, 3.25), (-0.8, 3.25)], dark)
        cv.ellipse(0.0, 1.12, 0.3, 0.12, dark, 0, 180)
    elif kind in ("t-shirt", "dress"):
        cv.ellipse(0.0, 1.12, 0.28, 0.1, dark, 0, 180)
