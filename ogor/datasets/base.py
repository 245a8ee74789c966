"""The common record of every T-ReID dataset and the small interface a format implements.

A format reads its own annotation file into :class:`Record` objects and writes them back. Every
record keeps the original JSON object (``raw``) so that writing what was read gives back the
same fields (``processed_tokens`` and anything else) in the same key order: existing T-ReID code
must read our output unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class Record:
    """One image with its person id, split and captions.

    Attributes:
        image_path: POSIX path relative to the dataset's image folder (``imgs/``), exactly as the
            annotation file spells it.
        person_id: the id as stored in the annotation file (CUHK-PEDES counts from 1).
        split: ``train``, ``val`` or ``test``.
        captions: the image's descriptions.
        raw: the original annotation object, key order kept; ``None`` for records made in code.
    """

    image_path: str
    person_id: int
    split: str
    captions: tuple[str, ...]
    raw: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


class DatasetFormat(Protocol):
    """What every dataset format provides (see ``ogor.datasets.formats``)."""

    name: str
    #: The dataset's published name (CUHK-PEDES, ICFG-PEDES, RSTPReid).
    dataset: str
    #: Accepted annotation file names, preferred first.
    annotation_names: tuple[str, ...]
    #: Split values this format may contain.
    splits: tuple[str, ...]
    #: Image folder relative to the dataset root.
    image_dir: str
    #: The record key holding the image path (``file_path`` or ``img_path``), named in errors.
    path_key: str

    def detect(self, root: Path) -> bool:
        """Whether ``root`` holds an annotation file of this format."""
        ...

    def annotation_path(self, root: Path) -> Path:
        """The annotation file inside ``root`` (the first accepted name that exists)."""
        ...

    def annotation_files(self, root: Path) -> list[Path]:
        """Every file the annotation consists of (copied and hashed by the writers)."""
        ...

    def read(self, root: Path) -> list[Record]:
        """Parse and validate the annotation file (not the images)."""
        ...

    def load(self, root: Path, split_file: Path | None = None) -> tuple[Path, list[Record]]:
        """The annotation path (a file, or TextReID's folder) and its validated records;
        ``split_file`` gives the split of a layout without one."""
        ...

    def write(
        self, records: Sequence[Record], root: Path, annotation_name: str | None = None
    ) -> Path:
        """Write records as this format's annotation file inside ``root``; return its path."""
        ...


@dataclass(frozen=True)
class Dataset:
    """A dataset root read through its format.

    ``annotation_path`` is the annotation file, or the folder of TextReID's per-split files;
    ``annotation_files`` lists every file it stands for (what a copy must carry over).
    """

    root: Path
    format: DatasetFormat
    annotation_path: Path
    records: tuple[Record, ...]
    annotation_files: tuple[Path, ...] = ()

    @property
    def image_root(self) -> Path:
        return self.root / self.format.image_dir

    def image_file(self, record: Record) -> Path:
        """Absolute path of a record's image."""
        return self.image_root / record.image_path

    def split(self, name: str) -> list[Record]:
        return [r for r in self.records if r.split == name]

    def splits_present(self) -> list[str]:
        return [s for s in SPLITS if any(r.split == s for r in self.records)]
