"""Surveillance image corruptions of the gallery: a far, blurred, noisy, dark, compressed camera.

Each corruption at each severity is a short chain of albumentations transforms whose parameters
are fixed numbers in ``severities.json`` (section ``image``): a range ``[a, a]`` pins a transform
to one strength, so the only randomness left is the transform's own draw (noise, fog blobs, rain
streaks, the blur angle). That draw is seeded per image from (seed, corruption, severity, image
key), never from order, so the same seed gives the same bytes and results do not depend on
worker count. Severity 0 is the clean image, untouched (the sweep then reads the source's own
bytes).

Albumentations works on RGB; our images are decoded BGR (``ogor.imageio``), so pixels are turned
round on the way in and out.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import numpy as np

from toreid.io import stable_seed

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check on import


@lru_cache(maxsize=128)
def _pipeline(name: str, severity: int) -> Any:
    """The albumentations chain of one (corruption, severity), built once per process."""
    import albumentations as A

    from benchmark.evaluation.corruptions.table import severity_params

    steps = []
    for transform, kwargs in severity_params("image", name, severity):
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items()}
        steps.append(getattr(A, transform)(p=1.0, **kwargs))
    return A.Compose(steps, p=1.0)


def image_key_seed(seed: int, name: str, severity: int, key: str) -> int:
    """The 32-bit seed of one image's draw (albumentations takes a 32-bit seed)."""
    return stable_seed(seed, f"image/{name}/{severity}/{key}") % (2 ** 32)


def corrupt_image(image_bgr: np.ndarray, name: str, severity: int, seed: int,
                  key: str) -> np.ndarray:
    """``image_bgr`` (H x W x 3 uint8) under ``name`` at ``severity``; severity 0 returns it.

    Args:
        key: a stable name of the image, e.g. ``test/<image path>``.
    """
    if severity == 0:
        return image_bgr
    pipeline = _pipeline(name, severity)
    pipeline.set_random_seed(image_key_seed(seed, name, severity, key))
    rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
    out = pipeline(image=rgb)["image"]
    return np.ascontiguousarray(out[:, :, ::-1]).astype(np.uint8, copy=False)
