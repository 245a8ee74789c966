"""The severity table (``severities.json``): every corruption's parameters at severities 1-5.

One data file rather than constants in code, so the docs, the contact sheet and a reader all see
the numbers the sweep used, and the table's sha256 enters every derived set's recipe (a changed
number makes new derived sets, never a stale cache hit).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from toreid.errors import ToreidError

TABLE_FILE = Path(__file__).resolve().parent / "severities.json"
MODALITIES: tuple[str, ...] = ("image", "text")
MAX_SEVERITY = 5


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ToreidError(f"{path}: cannot read the corruption table ({exc})") from None
    for modality in MODALITIES:
        section = data.get(modality)
        if not isinstance(section, dict) or not section:
            raise ToreidError(f"{path}: field '{modality}': missing or empty")
        for name, entry in section.items():
            levels = entry.get("severities") if isinstance(entry, dict) else None
            if not isinstance(levels, list) or len(levels) != MAX_SEVERITY:
                raise ToreidError(f"{path}: field '{modality}.{name}.severities': expected "
                                  f"{MAX_SEVERITY} entries (severities 1-{MAX_SEVERITY})")
    return data


def load_table(path: Path = TABLE_FILE) -> dict[str, Any]:
    """The parsed table (validated: each corruption has exactly five severities)."""
    return _load(str(path))


def table_sha256(path: Path = TABLE_FILE) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def list_corruptions(modality: str | None = None) -> list[str]:
    """``image:<name>`` and ``text:<name>`` of every corruption in the table, table order."""
    table = load_table()
    return [f"{m}:{name}" for m in MODALITIES if modality in (None, m) for name in table[m]]


def severity_params(modality: str, name: str, severity: int,
                    table: dict[str, Any] | None = None) -> Any:
    """The parameters of ``name`` at ``severity`` (1-5)."""
    table = table or load_table()
    if name not in table[modality]:
        valid = ", ".join(table[modality])
        raise ToreidError(f"unknown {modality} corruption '{name}' (valid: {valid})")
    if not 1 <= severity <= MAX_SEVERITY:
        raise ToreidError(f"severity {severity} is outside 1-{MAX_SEVERITY}")
    return table[modality][name]["severities"][severity - 1]


def parse_corruptions(text: str) -> tuple[str, ...]:
    """``--corruptions``: ``all``, ``image`` / ``text`` (every one of that kind), or a comma list
    of ``image:<name>`` / ``text:<name>``; an unknown name is a one-line error listing the valid
    ones."""
    valid = list_corruptions()
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part == "all":
            out += valid
        elif part in MODALITIES:
            out += list_corruptions(part)
        elif part in valid:
            out.append(part)
        else:
            raise ToreidError(f"--corruptions: unknown corruption '{part}' (valid: all, image, "
                              f"text, {', '.join(valid)})")
    if not out:
        raise ToreidError("--corruptions: no corruption given")
    return tuple(dict.fromkeys(out))


def parse_severities(text: str) -> tuple[int, ...]:
    """``--severities``: ``all`` (1-5) or a comma list of integers in 1-5."""
    if text.strip() == "all":
        return tuple(range(1, MAX_SEVERITY + 1))
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            value = int(part)
        except ValueError:
            raise ToreidError(f"--severities: '{part}' is not an integer") from None
        if not 1 <= value <= MAX_SEVERITY:
            raise ToreidError(f"--severities: {value} is outside 1-{MAX_SEVERITY} (severity 0, "
                              "the clean set, is always evaluated)")
        out.append(value)
    if not out:
        raise ToreidError("--severities: no severity given")
    return tuple(sorted(set(out)))
