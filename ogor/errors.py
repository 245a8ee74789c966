"""One exception family for every error a user can fix by changing their input.

The command lines catch :class:`ToreidError` and print its message as a single line with a
non-zero exit, so the message itself must name the file and the field at fault. Programming
errors (bugs) are left as ordinary exceptions so that they keep their traceback.
"""

from __future__ import annotations

from pathlib import Path

from toreid.errors import ToreidError

__all__ = ["DatasetError", "GenerationError", "LibraryError", "ToreidError"]


class DatasetError(ToreidError):
    """A dataset annotation or image that cannot be used as it is."""

    def __init__(
        self,
        file: str | Path,
        message: str,
        *,
        index: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file)
        self.index = index
        self.field = field
        parts = [self.file]
        if index is not None:
            parts.append(f"record {index}")
        if field is not None:
            parts.append(f"field '{field}'")
        super().__init__(": ".join(parts) + f": {message}")


class LibraryError(ToreidError):
    """An occlusion instance library (OIL) that is missing, malformed or tampered with."""


class GenerationError(ToreidError):
    """A refused or failed ``ogor generate`` / ``ogor verify``."""
