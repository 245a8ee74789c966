"""The one error type of the models package."""

from __future__ import annotations

from toreid.errors import ToreidError


class ModelError(ToreidError):
    """A model request a user can fix: unknown name or option, missing or unusable weights.

    A subclass of :class:`toreid.errors.ToreidError` so that every command line prints it as one
    line and exits non-zero; the message is always a single line.
    """
