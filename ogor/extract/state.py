"""The resumable state folder of ``extract-oil``: ``<out>.extract-state/`` beside the output.

It holds ``settings.json`` (what changes the candidates) and one record per processed image; a
rerun reuses it only when the settings match (see the ``ogor.extract.pipeline`` docstring).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ogor.errors import ToreidError
from ogor.extract.base import ExtractionError
from toreid.io import atomic_write_json, read_json

STATE_SUFFIX = ".extract-state"
STATE_FORMAT = "ogor-extract-state"
STATE_VERSION = 1


def state_folder(out_dir: str | Path) -> Path:
    """The resumable work folder of an output library (a sibling, see the module docstring)."""
    out_dir = Path(out_dir)
    return out_dir.parent / f"{out_dir.name}{STATE_SUFFIX}"


def open_state(state: Path, settings: dict[str, Any], overwrite: bool) -> Path:
    """Create the state folder, or reuse it when its settings match; return ``records/``."""
    settings_file = state / "settings.json"
    wanted = {"format": STATE_FORMAT, "version": STATE_VERSION, **settings}
    if state.exists():
        stored = None
        if settings_file.is_file():
            try:
                stored = read_json(settings_file, "extraction state")
            except ToreidError:
                stored = None
        if stored != wanted:
            if not overwrite:
                differing = _differences(stored, wanted)
                raise ExtractionError(
                    f"{state}: left by an earlier run with other settings ({differing}); "
                    "pass --overwrite to discard it and start again"
                )
            shutil.rmtree(state)
    if not settings_file.is_file():
        atomic_write_json(settings_file, wanted)  # first, so no state exists without it
    records = state / "records"
    records.mkdir(parents=True, exist_ok=True)
    return records


def _differences(stored: Any, wanted: dict[str, Any]) -> str:
    if not isinstance(stored, dict):
        return "settings.json missing or unreadable"
    keys = [k for k in wanted if stored.get(k) != wanted[k]]
    return ", ".join(f"{k}: {stored.get(k)!r} -> {wanted[k]!r}" for k in keys[:3]) or "format"
