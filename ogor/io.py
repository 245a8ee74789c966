"""The small file primitives, under the name ``ogor`` code has always used.

They live in :mod:`toreid.io` (hashing, atomic writes, strict JSON, stable seeds) so that
``benchmark/`` shares them without importing ``ogor``; this module re-exports them.
"""

from __future__ import annotations

from toreid.io import (
    atomic_write_bytes,
    atomic_write_json,
    dumps_json,
    read_json,
    sha256_bytes,
    sha256_file,
    stable_seed,
)

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "dumps_json",
    "read_json",
    "sha256_bytes",
    "sha256_file",
    "stable_seed",
]
