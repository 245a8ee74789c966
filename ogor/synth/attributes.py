"""Who is drawn and how: the identities' visible attributes and each view's parameters.

Each identity has a distinct tuple of visible attributes drawn from few, well separated named
colours, so a small model can tell identities apart from what the captions name; views vary pose,
scale, shift, flip, lighting and background but keep the attributes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ogor.errors import DatasetError
from toreid.io import stable_seed

#: Garment colours (RGB). Few and far apart so that they survive lighting, JPEG and 64x32.
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (28, 28, 30),
    "white": (238, 238, 236),
    "gray": (128, 128, 128),
    "red": (200, 30, 35),
    "orange": (245, 135, 25),
    "yellow": (240, 220, 50),
    "green": (40, 145, 60),
    "blue": (35, 75, 195),
    "purple": (125, 50, 165),
    "pink": (240, 110, 170),
    "brown": (115, 70, 35),
}
HAIR_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (22, 20, 20),
    "brown": (95, 58, 32),
    "blonde": (225, 195, 120),
    "gray": (165, 165, 165),
}
SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (242, 205, 175), (222, 174, 135), (180, 124, 84), (115, 78, 52),
)
#: Colours jeans come in.
JEANS_COLOURS: tuple[str, ...] = ("blue", "black", "gray", "white")
UPPER_TYPES: dict[str, tuple[str, ...]] = {
    "male": ("t-shirt", "shirt", "sweater", "jacket", "coat"),
    "female": ("t-shirt", "shirt", "sweater", "jacket", "coat", "dress"),
}
LOWER_TYPES: dict[str, tuple[str, ...]] = {
    "male": ("trousers", "jeans", "shorts"),
    "female": ("trousers", "jeans", "shorts", "skirt"),
}
HAIR_STYLES: dict[str, tuple[tuple[str, float], ...]] = {
    "male": (("short", 0.75), ("long", 0.13), ("bald", 0.12)),
    "female": (("long", 0.55), ("ponytail", 0.25), ("short", 0.20)),
}
P_HAT, P_HANDBAG, P_BACKPACK = 0.25, 0.3, 0.3
BACKGROUNDS: tuple[str, ...] = ("street", "wall", "park", "indoor")


@dataclass(frozen=True)
class PersonAttributes:
    """What an identity looks like; constant over its views. ``None`` means "not carried"."""

    gender: str
    hair_style: str
    hair_colour: str | None
    skin_tone: int
    upper_type: str
    upper_colour: str
    lower_type: str
    lower_colour: str
    shoes_colour: str
    hat: str | None
    handbag: str | None
    backpack: str | None

    def identity_key(self) -> tuple[Any, ...]:
        """The visible attributes the captions name (skin tone is neither named nor unique)."""
        values = asdict(self)
        del values["skin_tone"]
        return tuple(values.values())


def sample_attributes(rng: np.random.Generator) -> PersonAttributes:
    """Draw one identity's attributes."""
    colours = list(PALETTE)
    gender = str(rng.choice(("male", "female")))
    styles, weights = zip(*HAIR_STYLES[gender], strict=True)
    hair_style = str(rng.choice(styles, p=np.asarray(weights) / sum(weights)))
    hair_colour = None if hair_style == "bald" else str(
        rng.choice(list(HAIR_COLOURS), p=[0.45, 0.3, 0.15, 0.1])
    )
    upper_type = str(rng.choice(UPPER_TYPES[gender]))
    upper_colour = str(rng.choice(colours))
    if upper_type == "dress":
        lower_type, lower_colour = "dress", upper_colour
    else:
        lower_type = str(rng.choice(LOWER_TYPES[gender]))
        # The lower garment differs from the upper one so that the two regions stay distinct.
        choices = JEANS_COLOURS if lower_type == "jeans" else tuple(colours)
        lower_colour = str(rng.choice([c for c in choices if c != upper_colour]))
    return PersonAttributes(
        gender=gender,
        hair_style=hair_style,
        hair_colour=hair_colour,
        skin_tone=int(rng.integers(len(SKIN_TONES))),
        upper_type=upper_type,
        upper_colour=upper_colour,
        lower_type=lower_type,
        lower_colour=lower_colour,
        shoes_colour=str(rng.choice(colours)),
        hat=str(rng.choice(colours)) if rng.random() < P_HAT else None,
        handbag=str(rng.choice(colours)) if rng.random() < P_HANDBAG else None,
        backpack=str(rng.choice(colours)) if rng.random() < P_BACKPACK else None,
    )


def sample_identities(seed: int, count: int) -> list[PersonAttributes]:
    """``count`` identities with pairwise different visible attributes.

    Identity ``i`` draws from ``stable_seed(seed, "identity/i/attempt")`` and redraws (next
    attempt) while its tuple is taken, so identities are distinguishable from their captions.
    """
    taken: set[tuple[Any, ...]] = set()
    people: list[PersonAttributes] = []
    for index in range(count):
        for attempt in range(1000):
            rng = np.random.default_rng(stable_seed(seed, f"identity/{index}/{attempt}"))
            person = sample_attributes(rng)
            if person.identity_key() not in taken:
                break
        else:  # pragma: no cover - the attribute space is ~10^8 tuples
            raise DatasetError("synth", f"cannot draw {count} distinct identities", field="ids")
        taken.add(person.identity_key())
        people.append(person)
    return people


@dataclass(frozen=True)
class ViewParams:
    """How one view of an identity differs from the others (all randomness of one render)."""

    scale: float
    shift_x: float
    shift_y: float
    flip: bool
    left_foot: float
    right_foot: float
    foot_lift: float
    left_arm_deg: float
    right_arm_deg: float
    gain: float
    cast: tuple[float, float, float]
    background: str


def sample_view(rng: np.random.Generator) -> ViewParams:
    """Draw pose, framing, lighting and background of one view."""
    return ViewParams(
        scale=float(rng.uniform(0.8, 1.0)),
        shift_x=float(rng.uniform(-1.0, 1.0)),
        shift_y=float(rng.uniform(-1.0, 1.0)),
        flip=bool(rng.random() < 0.5),
        left_foot=float(rng.uniform(-0.12, 0.35)),
        right_foot=float(rng.uniform(-0.12, 0.35)),
        foot_lift=float(rng.uniform(-0.15, 0.15)),
        left_arm_deg=float(rng.uniform(4.0, 20.0)),
        right_arm_deg=float(rng.uniform(4.0, 20.0)),
        gain=float(rng.uniform(0.85, 1.15)),
        cast=(
            float(rng.uniform(-6, 6)), float(rng.uniform(-6, 6)), float(rng.uniform(-6, 6))
        ),
        background=str(rng.choice(BACKGROUNDS)),
    )
