"""The command-line error wrapper that ``ogor`` and ``bench`` share.

Every failure a user can meet prints one line on stderr and exits non-zero; the traceback is
for developers and stays behind ``--debug`` (a top-level option of both command lines) or the
environment variable ``TOREID_DEBUG=1``. The variable is also how debug mode reaches worker
processes, which inherit the environment. Errors raised in worker processes arrive here too:
``multiprocessing`` re-raises them as they are, and PyTorch's DataLoader wraps them in its own
traceback text, from which :func:`worker_error_line` takes the worker's one line.

Exit statuses: 2 for input the user can fix (:class:`ToreidError`: the message names the file
and the field), 1 for a failing environment (an :class:`OSError` such as a full disk or a
denied permission: the message names the path), 130 for Ctrl-C.
"""

from __future__ import annotations

import errno
import functools
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from toreid.errors import ToreidError

F = TypeVar("F", bound=Callable[..., Any])

DEBUG_ENV = "TOREID_DEBUG"

#: What to do about an OSError, by errno; the rest get the system's own message.
_OS_HINTS = {
    errno.ENOSPC: "free some space and run the command again",
    errno.EDQUOT: "free some space (disk quota) and run the command again",
    errno.EACCES: "check the permissions of that path",
    errno.EPERM: "check the permissions of that path",
    errno.EROFS: "choose a writable location",
}


def debug_enabled() -> bool:
    """Whether tracebacks are shown: ``--debug`` or ``TOREID_DEBUG`` set to a true value."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _enable_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        os.environ[DEBUG_ENV] = "1"


def debug_option(func: F) -> F:
    """The top-level ``--debug`` flag of a click group (sets ``TOREID_DEBUG=1``)."""
    return click.option(
        "--debug", is_flag=True, expose_value=False, is_eager=True, callback=_enable_debug,
        help=f"Show full tracebacks instead of one-line errors (or set {DEBUG_ENV}=1).",
    )(func)


def os_error_line(exc: OSError) -> str:
    """``PATH: reason (what to do)``: one line for an :class:`OSError`, naming its path."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = [str(name) for name in (exc.filename, exc.filename2) if name is not None]
    hint = _OS_HINTS.get(exc.errno or -1)
    line = f"{' -> '.join(where)}: {reason}" if where else reason
    return f"{line} ({hint})" if hint else line


def _single_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _subclass_names(cls: type) -> set[str]:
    names = {cls.__name__}
    for sub in cls.__subclasses__():
        names |= _subclass_names(sub)
    return names


def worker_error_line(exc: BaseException) -> tuple[str, int] | None:
    """(line, exit status) of a user error that a PyTorch DataLoader worker re-raised.

    The DataLoader re-raises a worker's exception as ``type(msg)`` with the worker's whole
    traceback in ``msg`` (and as a ``RuntimeError`` when the type cannot be rebuilt from one
    string). The original error is the traceback's last line, ``module.Type: message``: a user
    error when ``Type`` is a :class:`ToreidError` or an :class:`OSError`; anything else is a
    bug and keeps its traceback (``None``).
    """
    text = str(exc)
    if "Original Traceback" not in text:
        return None
    last = text.strip().splitlines()[-1]
    type_name, _, message = last.partition(": ")
    type_name = type_name.rsplit(".", 1)[-1]
    if type_name in _subclass_names(ToreidError):
        return message, 2
    if type_name in _subclass_names(OSError):
        return message, 1
    return None


def user_errors(func: F) -> F:
    """Turn a :class:`ToreidError` or an :class:`OSError` into one line on stderr.

    Commands wrap their body with this so that bad input or a failing disk never shows a
    traceback, while real bugs (any other exception) still do. In debug mode everything is
    re-raised as it is. An error raised in a worker process reaches here unchanged
    (``multiprocessing`` re-raises it in the parent), so it is reported the same way.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            if debug_enabled():
                raise
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            report = user_error_report(exc)
            if report is None or debug_enabled():
                raise
            line, status = report
            click.echo(f"error: {line}", err=True)
            sys.exit(status)

    return wrapper  # type: ignore[return-value]


def user_error_report(exc: BaseException) -> tuple[str, int] | None:
    """(one line, exit status) for a user-facing failure; ``None`` for a bug."""
    from_worker = worker_error_line(exc)
    if from_worker is not None:
        return _single_line(from_worker[0]), from_worker[1]
    if isinstance(exc, ToreidError):
        return _single_line(str(exc)), 2
    if isinstance(exc, OSError):
        return _single_line(os_error_line(exc)), 1
    return None


class LazyGroup(click.Group):
    """``click.Group`` with commands given as ``{"name": "module:attribute"}``."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._lazy = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self._lazy:
            module_name, attribute = self._lazy[name].split(":")
            return getattr(importlib.import_module(module_name), attribute)
        return super().get_command(ctx, name)
