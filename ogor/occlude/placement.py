"""Where an occluder goes: MGCC's Algorithm 1 made well defined, and the released code.

Sampling is kept apart from compositing (``ogor.occlude.compose``): :func:`sample_placement`
turns a random stream, the image size and an occlusion instance into a :class:`Placement`, a
frozen record that the manifest stores and that :func:`ogor.occlude.compose.apply_placement`
applies without any further randomness. Re-deriving a placement from the seed is therefore
cheap, which ``ogor verify`` uses.

Paper protocol (``paper``), the rules made explicit:

* area fraction ``delta ~ U(0.1, 0.6)``, ``S_o = delta * H * W``, aspect ``gamma = h / w`` of the
  instance, ``h_o = round(sqrt(S_o * gamma))`` and ``w_o = round(sqrt(S_o / gamma))`` (round half
  to even, as Python's ``round``; at least 1 pixel);
* fit: ``h_o <= H`` and ``w_o <= W``; the middle set also needs ``h_o <= H // 2`` because its top
  edge is drawn from ``[0, H // 2 - h_o]`` (the paper's ``<`` is replaced by ``<=``: taken literally
  a bottom-aligned occluder never fits);
* up: ``y = 0``; bottom: ``y = H - h_o``; middle: ``y ~ U{0 .. H // 2 - h_o}``; all three
  ``x ~ U{0 .. W - w_o}`` (the main text places up and bottom occluders along the horizontal);
* the instance is drawn once (uniform over the library) and only ``delta`` is redrawn, so the class
  mix stays uniform over the library instead of drifting towards narrow instances;
* at most :data:`MAX_ATTEMPTS` draws of ``delta``. After the bound (or at once when no ``delta`` in
  ``[0.1, 0.6]`` can fit, which a wide car on a 128 x 64 crop shows), the occluder is scaled to
  the largest box of its aspect ratio that fits, and the placement records ``fallback`` with the
  reason; ``delta`` is then that box's area fraction.

Released-code protocol (``mgcc-code``): fixed area fraction and corner per class, no fit check, the
part outside the canvas is clipped by the compositor (see :func:`mgcc_code_placement`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ogor.library.taxonomy import MGCC_CORNERS, POSITION_SETS

#: Bounds of the paper's area fraction delta.
DELTA_LOW = 0.1
DELTA_HIGH = 0.6
#: Draws of delta before the fallback (Algorithm 1 loops forever; we do not).
MAX_ATTEMPTS = 100


class InstanceLike(Protocol):
    """What placement needs from an occlusion instance (``ogor.library.OcclusionInstance``)."""

    id: str
    class_name: str
    position_set: str
    width: int
    height: int


@dataclass(frozen=True)
class Placement:
    """One pasted occluder: which instance, how large and where, in image pixels.

    Attributes:
        instance_id: the library instance pasted.
        class_name: its taxonomy class.
        position_set: ``up``, ``middle`` or ``bottom``.
        delta: the area fraction used (drawn, the fallback box's, or the mgcc-code class fraction).
        x, y: top-left corner of the resized occluder in the image (may be negative in mgcc-code).
        w, h: size of the resized occluder (may extend past the canvas only in mgcc-code, where
            the part outside is clipped).
        attempts: draws of delta made (0 when the fallback was taken without drawing).
        fallback: why the placement is not a plain accepted draw (``None`` when it is).
    """

    instance_id: str
    class_name: str
    position_set: str
    delta: float
    x: int
    y: int
    w: int
    h: int
    attempts: int = 1
    fallback: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The manifest form: fields in a fixed order, the box as ``[x, y, w, h]``."""
        return {
            "instance_id": self.instance_id,
            "class": self.class_name,
            "set": self.position_set,
            "delta": self.delta,
            "box": [self.x, self.y, self.w, self.h],
            "attempts": self.attempts,
            "fallback": self.fallback,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Placement:
        x, y, w, h = (int(v) for v in data["box"])
        return cls(
            instance_id=data["instance_id"],
            class_name=data["class"],
            position_set=data["set"],
            delta=float(data["delta"]),
            x=x,
            y=y,
            w=w,
            h=h,
            attempts=int(data["attempts"]),
            fallback=data["fallback"],
        )


def occluder_size(
    delta: float, image_hw: tuple[int, int], instance_hw: tuple[int, int]
) -> tuple[int, int]:
    """``(h_o, w_o)`` of an occluder covering ``delta`` of the image with the instance's aspect."""
    height, width = image_hw
    inst_h, inst_w = instance_hw
    area = delta * height * width
    gamma = inst_h / inst_w
    return max(1, round(math.sqrt(area * gamma))), max(1, round(math.sqrt(area / gamma)))


def _max_height(position_set: str, height: int) -> int:
    return height // 2 if position_set == "middle" else height


def largest_fitting_box(
    image_hw: tuple[int, int], instance_hw: tuple[int, int], position_set: str
) -> tuple[int, int]:
    """The largest ``(h_o, w_o)`` with the instance's aspect that fits the set's region.

    Sizes are floored so that the box always fits; both are at least 1 pixel.
    """
    height, width = image_hw
    inst_h, inst_w = instance_hw
    max_h = max(1, _max_height(position_set, height))
    scale = min(max_h / inst_h, width / inst_w)
    return max(1, min(max_h, math.floor(inst_h * scale))), max(
        1, min(width, math.floor(inst_w * scale))
    )


def _position(
    rng: np.random.Generator, position_set: str, image_hw: tuple[int, int], h_o: int, w_o: int
) -> tuple[int, int]:
    height, width = image_hw
    x = int(rng.integers(0, width - w_o + 1))
    if position_set == "up":
        y = 0
    elif position_set == "bottom":
        y = height - h_o
    else:
        y = int(rng.integers(0, height // 2 - h_o + 1))
    return x, y


def sample_placement(
    rng: np.random.Generator,
    image_hw: tuple[int, int],
    instance: InstanceLike,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    delta_range: tuple[float, float] = (DELTA_LOW, DELTA_HIGH),
) -> Placement:
    """Draw the paper protocol's placement of ``instance`` on an image of size ``image_hw``.

    Args:
        rng: the image's own random stream (seeded from the seed and the image path).
        image_hw: ``(H, W)`` of the image.
        instance: the occluder (already drawn from the library with the same ``rng``).
        max_attempts: bound on the draws of delta.
        delta_range: the uniform range of delta.

    Returns:
        The placement; ``fallback`` says when it is the largest fitting box instead of a draw.
    """
    height, width = image_hw
    if instance.position_set not in POSITION_SETS:
        raise ValueError(f"unknown position set {instance.position_set!r}")
    instance_hw = (instance.height, instance.width)
    max_h = _max_height(instance.position_set, height)
    low, high = delta_range
    # Without rounding, the largest fitting delta is min(max_h^2 / (H W gamma), W gamma / H); when
    # even the rounded box of delta = low cannot fit, no draw can, so the retries are skipped.
    attempts, fallback = 0, None
    if _fits(occluder_size(low, image_hw, instance_hw), max_h, width):
        for attempts in range(1, max_attempts + 1):  # noqa: B007 (read after the loop)
            delta = float(rng.uniform(low, high))
            h_o, w_o = occluder_size(delta, image_hw, instance_hw)
            if _fits((h_o, w_o), max_h, width):
                break
        else:
            fallback = f"no fitting delta in {max_attempts} draws: largest fitting box"
    else:
        fallback = f"no delta >= {low} fits: largest fitting box"
    if fallback is not None:
        h_o, w_o = largest_fitting_box(image_hw, instance_hw, instance.position_set)
        delta = h_o * w_o / (height * width)
    x, y = _position(rng, instance.position_set, image_hw, h_o, w_o)
    return Placement(
        instance.id, instance.class_name, instance.position_set, delta, x, y, w_o, h_o,
        attempts=attempts, fallback=fallback,
    )


def _fits(size: tuple[int, int], max_h: int, width: int) -> bool:
    h_o, w_o = size
    return h_o <= max_h and w_o <= width


def mgcc_code_placement(
    image_hw: tuple[int, int],
    instance: InstanceLike,
    *,
    area_fraction: float,
    corner: str,
) -> Placement:
    """The released MGCC generator's placement: fixed area and corner per class, no fit check.

    With ``r = w / h`` of the instance and ``A = area_fraction * H * W``:
    ``h = round(sqrt(A / r))`` and ``w = round(sqrt(A * r))``. Corners (top-left x, y):
    left-bottom ``(0, H - h)``, right-bottom ``(W - w, H - h)``, top-left ``(0, 0)``, left-middle
    ``(0, H // 2 - h)``, right-middle ``(W - w, H // 2 - h)``. The box may leave the canvas; the
    compositor clips it, as the released code's paste did.
    """
    height, width = image_hw
    ratio = instance.width / instance.height
    area = area_fraction * height * width
    h = max(1, round(math.sqrt(area / ratio)))
    w = max(1, round(math.sqrt(area * ratio)))
    corners = {
        "left-bottom": (0, height - h),
        "right-bottom": (width - w, height - h),
        "top-left": (0, 0),
        "left-middle": (0, height // 2 - h),
        "right-middle": (width - w, height // 2 - h),
    }
    if corner not in corners:
        raise ValueError(f"unknown mgcc corner {corner!r} (valid: {', '.join(MGCC_CORNERS)})")
    x, y = corners[corner]
    return Placement(
        instance.id,
        instance.class_name,
        instance.position_set,
        float(area_fraction),
        x,
        y,
        w,
        h,
        attempts=0,
        fallback=None,
    )
