"""Images as generation sees them: one reader, one size probe, one encoder, one per-image seed.

``ogor generate``, ``ogor verify`` and ``ogor preview`` all decode and encode through here, so a
rebuilt image is the same bytes as the generated one and a preview shows the pixels generation
used. The per-image seed depends on (seed, split, path) only, never on order or worker.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ogor.errors import GenerationError
from toreid.io import stable_seed


def image_seed(seed: int, split: str, source_path: str) -> int:
    """The seed of one image's random stream: depends on the seed, split and path only."""
    return stable_seed(seed, f"{split}/{source_path}")


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file as BGR the way generation does: EXIF orientation is ignored so that
    pixels stay where the placement's box puts them. A missing or undecodable file is a one-line
    :class:`GenerationError` naming it."""
    import cv2

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise GenerationError(f"{path}: source image not found") from None
    image = cv2.imdecode(
        np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    )
    if image is None:
        raise GenerationError(f"{path}: not a decodable image")
    return image


def encode_image(image: np.ndarray, suffix: str, quality: int, source: str | Path) -> bytes:
    """Encode in the format the file name says: JPEG at ``quality``, PNG and BMP losslessly."""
    import cv2

    suffix = suffix.lower()
    params: list[int] = []
    if suffix in (".jpg", ".jpeg", ".jpe"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    try:
        ok, buffer = cv2.imencode(suffix, image, params)
    except cv2.error:
        ok = False
    if not ok:
        raise GenerationError(f"{source}: cannot write images of type '{suffix}'")
    return buffer.tobytes()


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` from the file's header, without decoding the pixels.

    Like :func:`read_image`, it ignores EXIF orientation, so a placement re-derived from the size
    (a dry run, ``ogor verify``) matches the one made on the decoded image.

    Raises:
        GenerationError: the file is missing or not a readable image.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except OSError as exc:
        raise GenerationError(f"{path}: cannot read image ({exc})") from exc
    return height, width
