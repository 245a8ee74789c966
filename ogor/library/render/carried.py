"""Renderers of carried and held things: umbrella, kite, bag, suitcase, card.
"""

from __future__ import annotations

import math

import numpy as np

from ogor.library.render.canvas import (
    BLACK,
    STEEL,
    TYRE,
    Canvas,
    darker,
    jitter,
)
from ogor.library.render.registry import register


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
