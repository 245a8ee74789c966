"""Dataset formats behind one registry: detect, read, validate and write T-ReID datasets.

Image checks and per-split counts live in :mod:`ogor.datasets.validate` (it imports OpenCV, which
reading an annotation file does not need).
"""

from __future__ import annotations

from pathlib import Path

from ogor.datasets.base import SPLITS, Dataset, DatasetFormat, Record
from ogor.datasets.formats import CUHK_PEDES, ICFG_PEDES, RSTPREID, JsonListFormat
from ogor.errors import DatasetError
from toreid.io import read_json

FORMATS: dict[str, JsonListFormat] = {f.name: f for f in (CUHK_PEDES, ICFG_PEDES, RSTPREID)}


def list_formats() -> list[str]:
    """Names of the registered dataset formats."""
    return list(FORMATS)


def get_format(name: str) -> JsonListFormat:
    """The format called ``name``; the error lists the valid names."""
    try:
        return FORMATS[name]
    except KeyError:
        raise DatasetError(
            name, f"unknown dataset format (valid: {', '.join(FORMATS)})", field="format"
        ) from None


def detect_format(root: str | Path) -> JsonListFormat:
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


def read_dataset(root: str | Path, format: str | None = None) -> Dataset:
    """Read and validate the annotation of a dataset root (images are checked by ``check``)."""
    root = Path(root)
    fmt = get_format(format) if format else detect_format(root)
    annotation = fmt.annotation_path(root)
    records = fmt.parse(read_json(annotation, "annotation file"), annotation)
    return Dataset(root=root, format=fmt, annotation_path=annotation, records=tuple(records))


__all__ = [
    "FORMATS",
    "SPLITS",
    "Dataset",
    "DatasetFormat",
    "Record",
    "detect_format",
    "get_format",
    "list_formats",
    "read_dataset",
]
