"""CUHK-PEDES layouts that are not one JSON list with a split per record.

* **TextReID** (BrandonHanx/TextReID, BMVC 2021): ``annotations/{train,val,test}.json``, one
  entry per caption, ``{"annotations": [{"image_id", "id", "file_path", "sentence", ...}]}``
  (TextReID's loader reads ``file_path``, ``sentence``, ``id`` and ``image_id``; its
  ``onehot`` word indices are kept as read). The file a caption sits in is its split.
* **caption_all.json**, the file the CUHK-PEDES authors send with the images: the records of
  ``reid_raw.json`` without the ``split`` field. The standard train / val / test split is the
  ``split`` field of the authors' ``reid_raw.json`` (linked from their repository,
  github.com/ShuangLI59/Person-Search-with-Natural-Language-Description, and read by IRRA, NAFS
  and SSAN), so this layout takes its splits from such a file, or from the manifest of a dataset
  ``ogor generate`` made from it, and never guesses one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ogor.datasets.base import SPLITS, Record
from ogor.datasets.formats import CUHK_PEDES, JsonListFormat, check_relative_path
from ogor.errors import DatasetError
from toreid.io import atomic_write_bytes, read_json

#: Where the standard CUHK-PEDES split comes from, for the messages that refuse a split-less copy.
STANDARD_SPLIT_SOURCE = (
    "the authors' reid_raw.json, whose 'split' field defines the standard split (linked from "
    "github.com/ShuangLI59/Person-Search-with-Natural-Language-Description)"
)
#: The manifest ``ogor generate`` writes; it records every output image's split.
GENERATED_MANIFEST = "ogor-manifest.json"


@dataclass(frozen=True)
class TextReIDFormat:
    """TextReID's per-split caption files; records group the captions of one image."""

    name: str = "cuhk-pedes-textreid"
    dataset: str = "CUHK-PEDES"
    folder: str = "annotations"
    splits: tuple[str, ...] = SPLITS
    image_dir: str = "imgs"
    path_key: str = "file_path"

    @property
    def annotation_names(self) -> tuple[str, ...]:
        return tuple(f"{self.folder}/{split}.json" for split in self.splits)

    def detect(self, root: Path) -> bool:
        return any((Path(root) / name).is_file() for name in self.annotation_names)

    def annotation_path(self, root: Path) -> Path:
        """The ``annotations`` folder: the annotation is the set of files inside it."""
        if not self.detect(root):
            raise DatasetError(
                Path(root) / self.folder,
                "annotation files not found (a cuhk-pedes-textreid root holds "
                + ", ".join(self.annotation_names) + ")",
            )
        return Path(root) / self.folder

    def annotation_files(self, root: Path) -> list[Path]:
        files = [Path(root) / name for name in self.annotation_names]
        return [f for f in files if f.is_file()]

    def read(self, root: Path) -> list[Record]:
        return self.load(root)[1]

    def load(self, root: Path, split_file: Path | None = None) -> tuple[Path, list[Record]]:
        folder = self.annotation_path(root)
        records: list[Record] = []
        where: dict[str, tuple[str, Path, int]] = {}  # image path -> split, file, entry index
        grouped: dict[str, list[dict[str, Any]]] = {}
        for file in self.annotation_files(root):
            split = file.stem
            entries = self._entries(read_json(file, "annotation file"), file)
            for index, entry in enumerate(entries):
                image_path, person_id = self._check_entry(entry, file, index)
                key = str(PurePosixPath(image_path))
                seen = where.get(key)
                if seen is None:
                    where[key] = (split, file, index)
                    grouped[key] = [entry]
                    records.append(Record(image_path, person_id, split, (), raw=None))
                    continue
                if seen[0] != split:
                    raise DatasetError(
                        file, f"image {image_path!r} is also in {seen[1].name} (entry {seen[2]})",
                        index=index, field="file_path",
                    )
                if grouped[key][0]["id"] != person_id:
                    raise DatasetError(
                        file, f"image {image_path!r} has id {person_id} here and id "
                        f"{grouped[key][0]['id']} in entry {seen[2]}", index=index, field="id",
                    )
                grouped[key].append(entry)
        return folder, [
            Record(
                r.image_path, r.person_id, r.split,
                tuple(e["sentence"] for e in grouped[str(PurePosixPath(r.image_path))]),
                raw={"entries": grouped[str(PurePosixPath(r.image_path))]},
            )
            for r in records
        ]

    @staticmethod
    def _entries(data: Any, file: Path) -> list[Any]:
        entries = data.get("annotations") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise DatasetError(
                file, "expected an object with an 'annotations' list (TextReID's layout)",
                field="annotations",
            )
        if not entries:
            raise DatasetError(file, "the annotation file holds no captions", field="annotations")
        return entries

    @staticmethod
    def _check_entry(entry: Any, file: Path, index: int) -> tuple[str, int]:
        if not isinstance(entry, dict):
            raise DatasetError(
                file, f"expected an object, found {type(entry).__name__}", index=index
            )
        for key in ("file_path", "sentence", "id"):
            if key not in entry:
                raise DatasetError(file, "missing key", index=index, field=key)
        image_path, sentence, person_id = entry["file_path"], entry["sentence"], entry["id"]
        if not isinstance(image_path, str):
            raise DatasetError(file, "expected a string", index=index, field="file_path")
        check_relative_path(image_path, file, index, "file_path")
        if not isinstance(sentence, str) or not sentence.strip():
            raise DatasetError(file, "expected a non-empty string", index=index, field="sentence")
        if isinstance(person_id, bool) or not isinstance(person_id, int):
            raise DatasetError(file, "expected an integer", index=index, field="id")
        return image_path, person_id

    def write(
        self, records: Sequence[Record], root: Path, annotation_name: str | None = None
    ) -> Path:
        """One file per split present; entries read are written back as read (``onehot`` too).

        An ``ogor generate --mode add`` copy (same captions, new path) gets its original's
        entries under a new ``image_id``, numbered after the largest one read; a record read from
        another layout gets new entries carrying only the sentence (TextReID's ``onehot``
        indices depend on its vocabulary).
        """
        folder = Path(root) / self.folder
        used = [
            e.get("image_id") for r in records for e in _entries_of(r)
            if isinstance(e.get("image_id"), int)
        ]
        next_image_id = max(used, default=-1) + 1
        by_split: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            entries = _entries_of(record)
            if [e["sentence"] for e in entries] != list(record.captions):
                entries = [
                    {"image_id": next_image_id, "id": record.person_id,
                     "file_path": record.image_path, "sentence": caption}
                    for caption in record.captions
                ]
                next_image_id += 1
            elif any(e.get("file_path") != record.image_path for e in entries):
                # the same captions under a new image (an occluded copy): a new image_id
                entries = [
                    {**e, "image_id": next_image_id, "file_path": record.image_path}
                    for e in entries
                ]
                next_image_id += 1
            by_split.setdefault(record.split, []).extend(entries)
        for split in SPLITS:
            if split in by_split:
                data = json.dumps({"annotations": by_split[split]}, ensure_ascii=False)
                atomic_write_bytes(folder / f"{split}.json", data.encode("utf-8"))
        return folder


def _entries_of(record: Record) -> list[dict[str, Any]]:
    raw = record.raw
    entries = raw.get("entries") if isinstance(raw, Mapping) else None
    return list(entries) if isinstance(entries, list) else []


@dataclass(frozen=True)
class CaptionAllFormat(JsonListFormat):
    """The original ``caption_all.json``: CUHK-PEDES records without their split."""

    def detect(self, root: Path) -> bool:
        # A root that also holds reid_raw.json is read through that file, which has the split.
        return super().detect(root) and not CUHK_PEDES.detect(root)

    def load(self, root: Path, split_file: Path | None = None) -> tuple[Path, list[Record]]:
        path = self.annotation_path(root)
        data = read_json(path, "annotation file")
        source = split_file or self.split_source(root)
        if source is None:
            raise DatasetError(
                path, "has no train/val/test split: provide " + STANDARD_SPLIT_SOURCE
                + ", with --split-file or beside caption_all.json", field="split",
            )
        return path, self.parse(data, path, read_split_file(source))

    @staticmethod
    def split_source(root: Path) -> Path | None:
        """The file in ``root`` that defines its split: a generated dataset's manifest, or the
        authors' split-bearing annotation beside ``caption_all.json``."""
        manifest = Path(root) / GENERATED_MANIFEST
        if manifest.is_file():
            return manifest
        for name in CUHK_PEDES.annotation_names:
            if (Path(root) / name).is_file():
                return Path(root) / name
        return None


def read_split_file(path: Path) -> dict[str, str]:
    """Image path -> split from a split-defining file.

    Accepted: a JSON list of records with ``file_path`` (or ``img_path``) and ``split`` (the
    authors' ``reid_raw.json``, any layout of :mod:`ogor.datasets.formats`), or an
    ``ogor-manifest.json`` (its ``images`` rows carry ``path`` and ``split``).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "split file not found", field="split-file")
    data = read_json(path, "split file")
    rows = data.get("images") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows:
        raise DatasetError(
            path, "expected a JSON list of records with 'file_path' and 'split' (reid_raw.json)",
            field="split-file",
        )
    splits: dict[str, str] = {}
    for index, row in enumerate(rows):
        image = None
        if isinstance(row, dict):
            image = row.get("file_path", row.get("img_path", row.get("path")))
        if not isinstance(image, str) or not isinstance(row.get("split"), str):
            raise DatasetError(
                path, "expected an object with an image path and a 'split' string", index=index,
                field="split",
            )
        splits[str(PurePosixPath(image))] = row["split"]
    return splits


TEXTREID = TextReIDFormat()

CAPTION_ALL = CaptionAllFormat(
    name="cuhk-pedes-caption-all",
    dataset="CUHK-PEDES",
    annotation_names=("caption_all.json",),
    path_key="file_path",
    splits=SPLITS,
    key_order=("id", "file_path", "captions", "processed_tokens"),
    split_key=None,
)
