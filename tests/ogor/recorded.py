"""The image libraries that fix the bytes ``ogor`` writes, and what a recorded-bytes test does
when it runs under other versions than its record was made with.

Why: PNG and JPEG bytes (and the default library's anti-aliased text) depend on OpenCV, NumPy,
Pillow and the zlib Python was built with. ``requirements.lock`` pins the first three to the
versions the records were made under, so on the README's install the records hold. Under other
versions a comparison says nothing about our code, so outside CI it is skipped with the way to
re-record; under ``CI=true`` it fails with the same message, because CI installs the lock and a
mismatch there means the lock and the records have drifted apart, which must never pass silently.
"""

from __future__ import annotations

import os
import zlib

import pytest

#: What refreshes every record after a version move (README, "Reproducible across machines").
RERECORD = (
    "install the lock (pip install -r requirements.lock); or, after a lock refresh and a check "
    "that the differences are the libraries' (README, 'Reproducible across machines'), re-record: "
    "ogor render-default-oil && OGOR_RECORD_GOLDEN=1 pytest -q "
    "tests/ogor/test_golden_bytes.py tests/ogor/library/test_oil_default.py"
)


def image_library_versions() -> dict[str, str]:
    """The versions of the libraries that decide the bytes of the images ``ogor`` writes."""
    import cv2
    import numpy as np
    import PIL

    return {
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
    }


def in_ci() -> bool:
    """Whether the tests run in CI (``CI`` set to true / 1 / yes, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_recorded_versions(what: str, recorded: dict[str, str]) -> None:
    """Go on only under the versions ``what`` was recorded with: else fail in CI, skip outside.

    Args:
        what: the record, in words (its file), for the message.
        recorded: the versions stored with the record.
    """
    running = image_library_versions()
    if recorded == running:
        return
    moved = ", ".join(
        f"{name} {recorded.get(name, '?')} recorded, {running.get(name, '?')} here"
        for name in sorted(set(recorded) | set(running)) if recorded.get(name) != running.get(name)
    )
    message = f"{what} recorded under other library versions ({moved}): {RERECORD}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
