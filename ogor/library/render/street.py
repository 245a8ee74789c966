"""Renderers of street furniture and ground objects: post, stone, bench, road sign, chair,
fire hydrant.
"""

from __future__ import annotations

import math

import numpy as np

from ogor.library.render.canvas import (
    STEEL,
    Canvas,
    darker,
    jitter,
)
from ogor.library.render.registry import register


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
