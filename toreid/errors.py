"""The one exception base for every error a user can fix by changing their input.

The command lines catch :class:`ToreidError` and print its message as a single line with a
non-zero exit, so the message itself must name the file and the field at fault. Programming
errors (bugs) are left as ordinary exceptions so that they keep their traceback.
"""

from __future__ import annotations


class ToreidError(Exception):
    """A user-facing error; ``str(error)`` is the one line the command line prints."""
