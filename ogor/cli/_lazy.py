"""A click group that imports each command's module only when that command is used."""

from __future__ import annotations

import importlib
from typing import Any

import click

from toreid.cli import user_errors

__all__ = ["LazyGroup", "user_errors"]


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
