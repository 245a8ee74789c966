"""The one rule for where a command may write.

A command never writes inside a folder it reads as a dataset (a source, an occluded version,
parsing maps, a photo folder), and never outside its ``--out``: labels that become folder
names are plain names (:func:`check_name`). Every writing command of ``ogor`` and ``bench``
calls :func:`check_writes` before it starts work; ``tests/faults/test_writing_rule.py`` runs
each of them with an output inside each input.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from toreid.errors import ToreidError


def _inside(path: Path, folder: Path) -> bool:
    path, folder = Path(path).expanduser().resolve(), Path(folder).expanduser().resolve()
    return path == folder or path.is_relative_to(folder)


def check_writes(out_option: str, out: Path | None,
                 reads: Mapping[str, Path | None]) -> None:
    """Refuse, in one line, an output ``out`` (given as ``out_option``) that lies inside (or
    is) any folder of ``reads`` (``{option: folder}``; ``None`` values are skipped)."""
    if out is None:
        return
    for option, folder in reads.items():
        if folder is None or not Path(folder).is_dir():
            continue
        if _inside(Path(out), Path(folder)):
            raise ToreidError(f"{out_option} {out}: inside {option} {folder}, a folder this "
                              "command reads (nothing is ever written inside a dataset); "
                              "choose an output elsewhere")


def check_name(option: str, name: str) -> str:
    """A label that names a folder under ``--out`` is a plain name: no separators, no '..'."""
    if (not name or name in (".", "..") or "/" in name or "\\" in name or ".." in name
            or Path(name).is_absolute()):
        raise ToreidError(f"{option}: label {name!r} is not a plain name (no '/', '\\' or "
                          "'..': it names a folder under --out)")
    return name
