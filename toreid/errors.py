"""The one exception base for every error a user can fix by changing their input.

The command lines catch :class:`ToreidError` and print its message as a single line with a
non-zero exit, so the message itself must name the file and the field at fault. Programming
errors (bugs) are left as ordinary exceptions so that they keep their traceback.
"""

from __future__ import annotations

from typing import Any


def _restore(cls: type[ToreidError], args: tuple[Any, ...], state: dict[str, Any]) -> ToreidError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ToreidError(Exception):
    """A user-facing error; ``str(error)`` is the one line the command line prints.

    Errors cross process boundaries (``ogor generate`` raises them in worker processes and
    ``multiprocessing`` pickles them back to the parent). The default exception pickling calls
    ``cls(*args)``, which breaks subclasses whose ``__init__`` takes other arguments (e.g.
    ``DatasetError(file, message)``) and hangs the pool; so an error is rebuilt from its
    message and attributes instead, without calling ``__init__``.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.args, dict(self.__dict__)))
