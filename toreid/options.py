"""Checking user-given values against a config dataclass before any work starts.

``bench run --model-opt KEY=VALUE`` and the training overrides end up as keyword arguments of a
config dataclass (a model's ``*Config``, :class:`benchmark.records.spec.TrainConfig`). A dataclass
checks neither types nor ranges, so a bad value used to surface deep inside training as a
traceback (``rho_image=abc``), or only after a run was written. This module checks each value
against its field's default (the type a field holds) and a small table of range rules by field
name, and raises one :class:`ToreidError` line naming the option and the value.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from toreid.errors import ToreidError

#: Range rules by field name, first match wins: (pattern, lower bound, inclusive, upper bound).
#: Sizes and counts are positive; weights, margins and rates are non-negative; fractions and
#: ratios (MGCC's rho) lie in [0, 1].
RANGE_RULES: tuple[tuple[str, float, bool, float], ...] = (
    (r"(^|_)(rho|ratio|dropout|momentum|prob|keep)(_|$)", 0.0, True, 1.0),
    (r"(^|_)(dim|dims|size|heads|layers|num|count|classes|epochs|workers_per|width|depth)(_|$)",
     1.0, True, math.inf),
    (r"(^|_)(weight|weights|margin|lr|decay|eps|temperature|scale|clip|gamma|factor)(_|$)",
     0.0, True, math.inf),
)


def _kind(default: Any) -> type | None:
    """The type a field holds, read from its default (``None`` when it can hold anything)."""
    if default is None or default is dataclasses.MISSING:
        return None
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, str):
        return str
    if isinstance(default, (tuple, list)):
        return list
    if isinstance(default, dict):
        return dict
    return None


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def check_value(option: str, key: str, value: Any, field: dataclasses.Field) -> None:
    """Refuse ``value`` for ``field`` in one line naming ``option``, ``key`` and the value."""
    kind = _kind(_default(field))
    bad = f"{option}: {key}={value!r}"
    if value is None or kind is None:
        return
    if kind is bool and not isinstance(value, bool):
        raise ToreidError(f"{bad} is not true/false")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ToreidError(f"{bad} is not an integer")
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ToreidError(f"{bad} is not a number")
    if kind is str and not isinstance(value, str):
        raise ToreidError(f"{bad} is not a text value")
    if kind is list and not isinstance(value, (list, tuple)):
        raise ToreidError(f"{bad} is not a list (give it as JSON, e.g. [1, 2])")
    if kind is dict and not isinstance(value, dict):
        raise ToreidError(f"{bad} is not an object (give it as JSON)")
    if kind in (int, float):
        if not math.isfinite(float(value)):
            raise ToreidError(f"{bad} is not a finite number")
        for pattern, low, _inclusive, high in RANGE_RULES:
            if re.search(pattern, key):
                if not low <= float(value) <= high:
                    upper = "" if math.isinf(high) else f" and <= {high:g}"
                    raise ToreidError(f"{bad} is out of range (must be >= {low:g}{upper})")
                break


def check_fields(option: str, config_cls: type, values: dict[str, Any], *,
                 reserved: dict[str, str] | None = None, owner: str = "") -> None:
    """Check every ``key=value`` of ``values`` against the fields of ``config_cls``.

    Args:
        option: the command-line option the values came from (named in the error).
        config_cls: the dataclass the values will build.
        values: the user's values.
        reserved: keys the command sets itself, with the reason (refused when given).
        owner: what the fields belong to, for the unknown-key message (e.g. "model 'mgcc'").
    """
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    for key, value in values.items():
        if reserved and key in reserved:
            raise ToreidError(f"{option}: {key} is set by the command itself ({reserved[key]}); "
                              "remove it")
        if key not in fields:
            valid = ", ".join(sorted(k for k in fields if not (reserved and k in reserved)))
            raise ToreidError(f"{option}: unknown key {key!r}"
                              + (f" for {owner}" if owner else "") + f"; valid: {valid}")
        check_value(option, key, value, fields[key])
