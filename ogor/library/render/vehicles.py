"""Renderers of vehicles: car, bike, motorbike (or scooter), with the wheel they share.
"""

from __future__ import annotations

import math

import numpy as np

from ogor.library.render.canvas import (
    BLACK,
    CHROME,
    STEEL,
    TYRE,
    Canvas,
    Colour,
    Point,
    darker,
    jitter,
)
from ogor.library.render.registry import register


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
