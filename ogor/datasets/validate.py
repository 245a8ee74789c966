"""Whole-dataset checks (annotation and images) and per-split statistics.

``read_dataset`` validates the annotation file alone, because every command that reads a dataset
needs that and it is fast. Checking images means opening tens of thousands of files, so it lives
here and runs only when asked (``ogor check``) or when a command is about to depend on them.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ogor.datasets import read_dataset
from ogor.datasets.base import SPLITS, Dataset, Record
from ogor.datasets.published import StatsComparison, compare_with_published, split_counts
from ogor.errors import DatasetError, ToreidError
from toreid.io import sha256_bytes

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
        findings: one-line notes that do not make the copy unusable: duplicate images, captions
            referring to no image, image files no record lists.
        comparison: the copy's counts against the published statistics (``None`` when the
            annotation could not be read).
    """

    root: Path
    format: str
    records: int = 0
    images_checked: int = 0
    errors: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    comparison: StatsComparison | None = None

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
    return _read_and_check(path)[0]


def _read_and_check(path: Path) -> tuple[str | None, bytes | None]:
    """(why the image cannot be used or ``None``, its bytes when they could be read)."""
    if not path.exists():
        return "image file not found", None
    if not path.is_file():
        return "image path is not a file", None
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"image cannot be read ({exc.strerror or exc})", None
    if not data:
        return "image file is empty", data
    if data.startswith(_JPEG_START) and _JPEG_END not in data[-_JPEG_TAIL:]:
        return "corrupt JPEG (truncated: no end-of-image marker)", data
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        return "image cannot be decoded (corrupt or not an image)", data
    return None, data


def _inspect(dataset: Dataset, index: int, record: Record) -> tuple[str | None, str | None]:
    """(error line or ``None``, sha256 of a usable image's bytes) of one record's image: the
    bytes are read once, for the decode and the duplicate check both."""
    path = dataset.image_file(record)
    problem, data = _read_and_check(path)
    if problem is None and data is not None:
        return None, sha256_bytes(data)
    error = DatasetError(path, problem or "image cannot be read", index=index,
                         field=dataset.format.path_key)
    return str(error), None


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
    split_file: str | Path | None = None,
    progress: bool = False,
) -> CheckReport:
    """Validate a dataset root: annotation, records, every image, and the published counts.

    Args:
        root: the dataset root (the folder holding the annotation and ``imgs/``).
        format: a registered format name; detected from the root when ``None``.
        images: also check that every image exists, is a file and decodes.
        stop_at_first: return at the first bad image instead of collecting all of them.
        workers: threads decoding images (OpenCV releases the GIL while decoding).
        split_file: the split of a layout without one (``caption_all.json``).
        progress: show a progress bar on stderr (on a terminal only).

    Returns:
        A report; ``report.errors`` is empty when the dataset is usable. Annotation errors
        (missing or malformed file, bad record) stop the check at once: nothing after them
        can be trusted. One pass over the images finds the missing, unreadable and duplicate
        ones and the captions that refer to no image.
    """
    root = Path(root)
    try:
        dataset = read_dataset(root, format, split_file)
    except ToreidError as exc:
        return CheckReport(root=root, format=format or "unknown", errors=[str(exc)])
    report = CheckReport(root=root, format=dataset.format.name, records=len(dataset.records))
    report.comparison = compare_with_published(
        dataset.format.dataset, split_counts(dataset.records)
    )
    # One check per distinct image: a file listed twice with the same id is not an error.
    unique: dict[str, tuple[int, Record]] = {}
    listed_again = []
    for index, record in enumerate(dataset.records):
        first = unique.setdefault(record.image_path, (index, record))
        if first[0] != index:
            listed_again.append(
                f"{dataset.annotation_path}: record {index}: image {record.image_path!r} is "
                f"listed again (first in record {first[0]})"
            )
    report.findings += _capped(listed_again, "images listed again")
    if not images:
        return report
    _scan_images(dataset, list(unique.values()), report, stop_at_first, workers, progress)
    return report


def _scan_images(
    dataset: Dataset,
    items: list[tuple[int, Record]],
    report: CheckReport,
    stop_at_first: bool,
    workers: int,
    progress: bool,
) -> None:
    """Decode and hash every image once; errors, duplicate contents and captionless paths."""
    from tqdm import tqdm

    by_digest: dict[str, str] = {}
    duplicates: list[str] = []
    captions = Counter()
    for record in dataset.records:
        captions[record.image_path] += len(record.captions)
    missing_captions = 0
    bad_images = 0
    restore = _quiet_opencv()
    bar = tqdm(total=len(items), desc="ogor check", unit="img", disable=None if progress else True)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            chunk = 256 * max(1, workers)
            for start in range(0, len(items), chunk):
                batch = items[start : start + chunk]
                results = pool.map(lambda item: _inspect(dataset, *item), batch)
                for (_index, record), (error, digest) in zip(batch, results, strict=True):
                    report.images_checked += 1
                    bar.update(1)
                    if error is not None:
                        report.errors.append(error)
                        bad_images += 1
                        missing_captions += captions[record.image_path]
                    elif digest is not None:
                        first = by_digest.setdefault(digest, record.image_path)
                        if first != record.image_path:
                            duplicates.append(
                                f"{dataset.image_file(record)}: same bytes as {first!r} "
                                "(a duplicate image)"
                            )
                if report.errors and stop_at_first:
                    del report.errors[1:]
                    return
    finally:
        bar.close()
        restore()
    report.findings += _capped(duplicates, "duplicate images")
    if bad_images:
        report.findings.append(
            f"{missing_captions} caption(s) refer to no usable image ({bad_images} image file(s) "
            "missing or unreadable)"
        )
    unlisted = _unlisted_images(dataset, {r.image_path for _, r in items})
    if unlisted:
        report.findings.append(
            f"{dataset.image_root}: {len(unlisted)} image file(s) are in no record, "
            f"first {unlisted[0]!r} (another split file or an older annotation?)"
        )


#: Notes of one kind printed before "... and N more".
_SHOWN_NOTES = 10


def _capped(lines: list[str], kind: str) -> list[str]:
    """The first notes of a kind and a count of the rest: a real copy can have thousands."""
    if len(lines) <= _SHOWN_NOTES:
        return lines
    return [*lines[:_SHOWN_NOTES], f"... and {len(lines) - _SHOWN_NOTES} more {kind}"]


_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def _unlisted_images(dataset: Dataset, listed: set[str]) -> list[str]:
    """Image files under the image folder that no record names (sorted)."""
    if not dataset.image_root.is_dir():
        return []
    found = []
    for folder, _dirs, files in os.walk(dataset.image_root):
        for name in files:
            if Path(name).suffix.lower() in _IMAGE_SUFFIXES:
                rel = Path(folder, name).relative_to(dataset.image_root).as_posix()
                if rel not in listed:
                    found.append(rel)
    return sorted(found)


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
