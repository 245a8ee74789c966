"""Dataset formats behind one registry: detect, read, validate and write T-ReID datasets.

A format is one layout a copy of a dataset comes in (see ``docs/datasets.md``): the JSON lists of
:mod:`ogor.datasets.formats` under every file name in use, and TextReID's per-split files and the
split-less ``caption_all.json`` of :mod:`ogor.datasets.layouts`. Image checks and per-split
counts live in :mod:`ogor.datasets.validate` (it imports OpenCV, which reading an annotation file
does not need); the comparison with the published statistics in :mod:`ogor.datasets.published`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ogor.datasets.base import SPLITS, Dataset, DatasetFormat, Record
from ogor.datasets.formats import CUHK_PEDES, ICFG_PEDES, RSTPREID, JsonListFormat
from ogor.datasets.layouts import CAPTION_ALL, TEXTREID
from ogor.errors import DatasetError
from toreid.io import sha256_file

FORMATS: dict[str, DatasetFormat] = {
    f.name: f for f in (CUHK_PEDES, ICFG_PEDES, RSTPREID, TEXTREID, CAPTION_ALL)
}
#: The formats ``ogor synth`` writes: one per dataset, the layout IRRA reads.
BASE_FORMATS: tuple[str, ...] = (CUHK_PEDES.name, ICFG_PEDES.name, RSTPREID.name)


def list_formats() -> list[str]:
    """Names of the registered dataset formats (layouts)."""
    return list(FORMATS)


def base_format_name(fmt: DatasetFormat) -> str:
    """The base format of a layout's dataset (``cuhk-pedes`` for every CUHK-PEDES layout):
    per-dataset settings (MGCC's token-selection ratios) are keyed by it, not by the layout."""
    for name in BASE_FORMATS:
        if FORMATS[name].dataset == fmt.dataset:
            return name
    return fmt.name


def get_format(name: str) -> DatasetFormat:
    """The format called ``name``; the error lists the valid names."""
    try:
        return FORMATS[name]
    except KeyError:
        raise DatasetError(
            name, f"unknown dataset format (valid: {', '.join(FORMATS)})", field="format"
        ) from None


def detect_format(root: str | Path) -> DatasetFormat:
    """The one format whose annotation file is in ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "dataset root is not a folder")
    found = [f for f in FORMATS.values() if f.detect(root)]
    if len(found) == 1:
        return found[0]
    expected = "; ".join(f"{' or '.join(f.annotation_names)} ({f.name})" for f in FORMATS.values())
    if not found:
        raise DatasetError(root, f"no annotation file found (expected {expected})")
    raise DatasetError(
        root, "several annotation files found: " + ", ".join(f.name for f in found)
        + " (pass the format explicitly)"
    )


def read_dataset(
    root: str | Path, format: str | None = None, split_file: str | Path | None = None
) -> Dataset:
    """Read and validate the annotation of a dataset root (images are checked by ``check``).

    ``split_file`` gives the split of a layout without one (``caption_all.json``); layouts with
    their own split ignore it.
    """
    root = Path(root)
    fmt = get_format(format) if format else detect_format(root)
    split = Path(split_file) if split_file is not None else None
    annotation, records = fmt.load(root, split)
    return Dataset(
        root=root, format=fmt, annotation_path=annotation, records=tuple(records),
        annotation_files=tuple(fmt.annotation_files(root)),
    )


def annotation_members(path: str | Path) -> list[Path]:
    """The files an annotation path stands for: itself, or a layout folder's JSON files."""
    path = Path(path)
    return sorted(path.glob("*.json")) if path.is_dir() else [path]


def annotation_sha256(path: str | Path) -> str:
    """The sha256 that identifies an annotation: the file's own, or for a folder of per-split
    files (TextReID) the sha256 of its "name sha256" lines, so one hash covers every file."""
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    lines = "".join(f"{f.name} {sha256_file(f)}\n" for f in annotation_members(path))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


__all__ = [
    "BASE_FORMATS",
    "FORMATS",
    "JsonListFormat",
    "SPLITS",
    "Dataset",
    "DatasetFormat",
    "Record",
    "annotation_members",
    "annotation_sha256",
    "base_format_name",
    "detect_format",
    "get_format",
    "list_formats",
    "read_dataset",
]
