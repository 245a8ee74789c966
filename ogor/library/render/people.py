"""The renderer of another person in front of the target: pedestrian.
"""

from __future__ import annotations

import numpy as np

from ogor.library.render.canvas import (
    SKIN_TONES,
    Canvas,
    Colour,
    Point,
    darker,
    jitter,
)
from ogor.library.render.registry import register


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
