"""The command-line error wrapper that ``ogor`` and ``bench`` share."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from toreid.errors import ToreidError

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn a :class:`ToreidError` into one line on stderr and exit status 2.

    Commands wrap their body with this so that bad input never shows a traceback, while real
    bugs (any other exception) still do.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ToreidError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
