"""Whole-dataset checks (annotation and images) and per-split statistics.

``read_dataset`` validates the annotation file alone, because every command that reads a dataset
needs that and it is fast. Checking images means opening tens of thousands of files, so it lives
here and runs only when asked (``ogor check``) or when a command is about to depend on them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ogor.datasets import read_dataset
from ogor.datasets.base import SPLITS, Dataset, Record
from ogor.errors import DatasetError, ToreidError

_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
#: Some cameras append data after the end-of-image marker; look for it this far from the end.
_JPEG_TAIL = 4096


@dataclass
class CheckReport:
    """The outcome of :func:`check_dataset`.

    Attributes:
        root: the dataset root.
        format: the detected (or given) format name.
        records: number of annotation records read.
        images_checked: number of images opened and decoded.
        errors: one-line messages, in record order; empty when the dataset is usable.
    """

    root: Path
    format: str
    records: int = 0
    images_checked: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        """One line for the command line."""
        if self.ok:
            return (
                f"OK: {self.root} is a valid {self.format} dataset "
                f"({self.records} records, {self.images_checked} images decoded)"
            )
        return f"{len(self.errors)} error(s) in {self.root}; first: {self.errors[0]}"


def check_image(path: Path) -> str | None:
    """Why the image at ``path`` cannot be used, or ``None`` when it decodes.

    OpenCV is the reader because it is what the generator uses, and it reads every format these
    datasets hold (CUHK-PEDES has ``.bmp`` files). Older OpenCV builds decode a truncated JPEG
    with a warning and grey rows instead of failing, so JPEGs must also end with their
    end-of-image marker.
    """
    if not path.exists():
        return "image file not found"
    if not path.is_file():
        return "image path is not a file"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"image cannot be read ({exc.strerror or exc})"
    if not data:
        return "image file is empty"
    if data.startswith(_JPEG_START) and _JPEG_END not in data[-_JPEG_TAIL:]:
        return "corrupt JPEG (truncated: no end-of-image marker)"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        return "image cannot be decoded (corrupt or not an image)"
    return None


def _image_error(dataset: Dataset, index: int, record: Record) -> str | None:
    problem = check_image(dataset.image_file(record))
    if problem is None:
        return None
    return str(
        DatasetError(
            dataset.image_file(record),
            problem,
            index=index,
            field=dataset.format.path_key,
        )
    )


def _quiet_opencv() -> Callable[[], None]:
    """Silence OpenCV's own stderr messages about corrupt files; return the undo function.

    The check reports each bad image in its own one-line form; libjpeg's warnings on top would
    only repeat it less clearly.
    """
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        return lambda: None
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    return lambda: logging.setLogLevel(previous)


def check_dataset(
    root: str | Path,
    *,
    format: str | None = None,
    images: bool = True,
    stop_at_first: bool = True,
    workers: int = 4,
) -> CheckReport:
    """Validate a dataset root: annotation file, records, and (optionally) every image.

    Args:
        root: the dataset root (the folder holding the annotation file and ``imgs/``).
        format: a registered format name; detected from the root when ``None``.
        images: also check that every image exists, is a file and decodes.
        stop_at_first: return at the first bad image instead of collecting all of them.
        workers: threads decoding images (OpenCV releases the GIL while decoding).

    Returns:
        A report; ``report.errors`` is empty when the dataset is usable. Annotation errors
        (missing or malformed file, bad record) stop the check at once: nothing after them
        can be trusted.
    """
    root = Path(root)
    try:
        dataset = read_dataset(root, format)
    except ToreidError as exc:
        return CheckReport(root=root, format=format or "unknown", errors=[str(exc)])
    report = CheckReport(root=root, format=dataset.format.name, records=len(dataset.records))
    if not images:
        return report
    # One check per distinct image: a file listed twice with the same id is not an error.
    unique: dict[str, tuple[int, Record]] = {}
    for index, record in enumerate(dataset.records):
        unique.setdefault(record.image_path, (index, record))
    items = list(unique.values())
    restore = _quiet_opencv()
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            chunk = 256 * max(1, workers)
            for start in range(0, len(items), chunk):
                batch = items[start : start + chunk]
                results = pool.map(lambda item: _image_error(dataset, *item), batch)
                for error in results:
                    report.images_checked += 1
                    if error is not None:
                        report.errors.append(error)
                if report.errors and stop_at_first:
                    del report.errors[1:]
                    return report
    finally:
        restore()
    return report


@dataclass(frozen=True)
class SplitStats:
    """Counts of one split (or of the whole dataset, with ``split == "total"``)."""

    split: str
    ids: int
    images: int
    captions: int


def dataset_stats(dataset: Dataset) -> list[SplitStats]:
    """Ids, distinct images and captions per split present, then the total.

    The total counts distinct ids over the whole dataset; splits do not share ids in the real
    datasets, so it is then the sum of the split rows.
    """

    def count(split: str, records: list[Record]) -> SplitStats:
        return SplitStats(
            split=split,
            ids=len({r.person_id for r in records}),
            images=len({r.image_path for r in records}),
            captions=sum(len(r.captions) for r in records),
        )

    rows = [count(s, dataset.split(s)) for s in SPLITS if dataset.split(s)]
    rows.append(count("total", list(dataset.records)))
    return rows


def format_stats_table(rows: list[SplitStats]) -> str:
    """A plain-text table: one line per split, right-aligned counts."""
    header = ("split", "ids", "images", "captions")
    cells = [header] + [(r.split, str(r.ids), str(r.images), str(r.captions)) for r in rows]
    widths = [max(len(row[c]) for row in cells) for c in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        first = row[0].ljust(widths[0])
        rest = [value.rjust(width) for value, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest])

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:-1]), rule, line(cells[-1])])
