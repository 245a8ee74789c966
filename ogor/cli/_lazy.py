"""A click group that imports each command's module only when that command is used."""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ogor.errors import ToreidError

F = TypeVar("F", bound=Callable[..., Any])


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
