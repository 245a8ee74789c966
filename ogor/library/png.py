"""PNG bytes of occluders: a metadata-free encoder (reproducible bytes) and an RGBA decoder.

Every PNG this project writes goes through :func:`encode_png`, so a library's bytes depend only on
its pixels and zlib; :func:`decode_rgba` reads any occluder PNG (from this project or imported)
and refuses one without an alpha channel.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np

from ogor.errors import LibraryError

#: zlib level for every PNG this project writes; fixed so output bytes are reproducible.
PNG_COMPRESSION = 9


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _filtered_scanlines(rgba: np.ndarray) -> bytes:
    """PNG-filter every row, choosing per row the filter with the smallest absolute sum.

    All five filters depend only on the raw pixels, so they are computed for the whole image at
    once; the choice rule (the usual minimum-sum-of-absolute-differences heuristic, ties to the
    lowest filter number) is deterministic.
    """
    height, width, channels = rgba.shape
    raw = rgba.reshape(height, width * channels).astype(np.int16)
    left = np.zeros_like(raw)
    left[:, channels:] = raw[:, :-channels]
    up = np.zeros_like(raw)
    up[1:] = raw[:-1]
    up_left = np.zeros_like(raw)
    up_left[1:, channels:] = raw[:-1, :-channels]
    estimate = left + up - up_left
    dist_left = np.abs(estimate - left)
    dist_up = np.abs(estimate - up)
    dist_up_left = np.abs(estimate - up_left)
    paeth = np.where(
        (dist_left <= dist_up) & (dist_left <= dist_up_left),
        left,
        np.where(dist_up <= dist_up_left, up, up_left),
    )
    candidates = np.stack(
        [raw, raw - left, raw - up, raw - ((left + up) >> 1), raw - paeth]
    ).astype(np.uint8)  # wraps modulo 256, as PNG filters do
    signed = candidates.view(np.int8).astype(np.int32)
    cost = np.abs(signed).sum(axis=2)  # (5, height)
    choice = np.argmin(cost, axis=0)
    rows = candidates[choice, np.arange(height)]
    out = np.empty((height, width * channels + 1), dtype=np.uint8)
    out[:, 0] = choice
    out[:, 1:] = rows
    return out.tobytes()


def encode_png(rgba: np.ndarray) -> bytes:
    """Encode an H x W x 4 uint8 RGBA array as a PNG with no metadata chunks.

    A hand-written encoder (IHDR, one IDAT, IEND) is used instead of an image library so that
    the bytes depend only on the pixels and zlib: no timestamps, no encoder version strings, no
    change when OpenCV or Pillow is upgraded. That is what makes the default library regenerate
    byte-identically.
    """
    rgba = np.ascontiguousarray(rgba)
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"expected an H x W x 4 uint8 array, got {rgba.dtype} {rgba.shape}")
    height, width = rgba.shape[:2]
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    data = zlib.compress(_filtered_scanlines(rgba), PNG_COMPRESSION)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def decode_rgba(data: bytes, name: str | Path) -> np.ndarray:
    """Decode PNG bytes to H x W x 4 uint8 RGBA.

    OpenCV reads the common cases (RGBA, grey + alpha, 16-bit); palette and other modes with
    transparency go through Pillow. An image with no alpha channel is refused, because an
    occluder without a mask would paste its whole rectangle.

    Raises:
        LibraryError: the bytes are not a decodable image or carry no alpha channel.
    """
    import cv2

    array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise LibraryError(f"{name}: not a decodable PNG image")
    if array.ndim == 3 and array.shape[2] == 4:
        if array.dtype == np.uint16:
            array = (array >> 8).astype(np.uint8)
        return cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA)
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            if not has_alpha:
                raise LibraryError(
                    f"{name}: field 'alpha': the PNG has no alpha channel (mode {image.mode})"
                )
            return np.asarray(image.convert("RGBA"), dtype=np.uint8).copy()
    except OSError as exc:
        raise LibraryError(f"{name}: not a decodable PNG image ({exc})") from exc
