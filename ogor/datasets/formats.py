"""The JSON-list layouts of the three T-ReID datasets: CUHK-PEDES, ICFG-PEDES and RSTPReid.

They share one shape (a JSON list of objects with an id, an image path, a split and captions)
and differ in file name, key names and allowed splits, so one parameterised class serves all
three. Each accepts every file name its copies are distributed under: IRRA, NAFS and SSAN read
``reid_raw.json``, ``ICFG-PEDES.json`` and ``data_captions.json``; the MGCC release's README
(2024) names the same files ``CUHK-PEDES.json``, ``ICFG_PEDES.json`` and ``RSTPReid.json``.
Facts: ``shared/design/FACTS.md`` section 1. The layouts that are not one JSON list with splits
(TextReID's per-split files, the original ``caption_all.json``) live in
:mod:`ogor.datasets.layouts`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ogor.datasets.base import Record
from ogor.errors import DatasetError
from toreid.io import atomic_write_bytes, read_json

_WORD = re.compile(r"[a-z0-9]+")


def tokenize_caption(caption: str) -> list[str]:
    """Lower-case word tokens, the shape of CUHK-PEDES' ``processed_tokens``."""
    return _WORD.findall(caption.lower())


def check_relative_path(path: str, file: Path, index: int, field: str) -> None:
    """Refuse an image path that is absolute or climbs out of the image folder.

    Output datasets mirror these paths, so an escaping path would let a malicious annotation
    file make the generator write outside its output folder.
    """
    if not path:
        raise DatasetError(file, "empty image path", index=index, field=field)
    if "\\" in path:
        raise DatasetError(file, f"image path {path!r} uses backslashes", index=index, field=field)
    pure = PurePosixPath(path)
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", path):
        raise DatasetError(file, f"image path {path!r} is absolute", index=index, field=field)
    if ".." in pure.parts:
        raise DatasetError(
            file, f"image path {path!r} escapes the dataset root", index=index, field=field
        )


@dataclass(frozen=True)
class JsonListFormat:
    """A format whose annotation file is a JSON list of per-image objects.

    Attributes:
        name: registry name.
        dataset: the dataset's published name (the key of its published statistics).
        annotation_names: accepted file names, preferred first.
        path_key, id_key, split_key, captions_key: the key names in each object; ``split_key``
            is ``None`` for a layout whose records carry no split (``caption_all.json``).
        splits: allowed split values.
        key_order: every key, in the canonical order, of a record made in code (this is where
            CUHK-PEDES and ICFG-PEDES records get their ``processed_tokens``).
        image_dir: image folder relative to the root.
    """

    name: str
    dataset: str
    annotation_names: tuple[str, ...]
    path_key: str
    splits: tuple[str, ...]
    key_order: tuple[str, ...]
    id_key: str = "id"
    split_key: str | None = "split"
    captions_key: str = "captions"
    image_dir: str = "imgs"

    # -- discovery ---------------------------------------------------------------------------
    def detect(self, root: Path) -> bool:
        return any((Path(root) / n).is_file() for n in self.annotation_names)

    def annotation_path(self, root: Path) -> Path:
        for name in self.annotation_names:
            candidate = Path(root) / name
            if candidate.is_file():
                return candidate
        raise DatasetError(
            Path(root) / self.annotation_names[0],
            f"annotation file not found (a {self.name} root holds "
            + " or ".join(self.annotation_names)
            + ")",
        )

    def annotation_files(self, root: Path) -> list[Path]:
        """Every file the annotation consists of (one here); they are copied and hashed."""
        return [self.annotation_path(root)]

    # -- reading -----------------------------------------------------------------------------
    def read(self, root: Path) -> list[Record]:
        return self.load(root)[1]

    def load(self, root: Path, split_file: Path | None = None) -> tuple[Path, list[Record]]:
        """The annotation path and its records; ``split_file`` only serves split-less layouts."""
        path = self.annotation_path(root)
        return path, self.parse(read_json(path, "annotation file"), path)

    def parse(
        self, data: Any, path: Path, splits: Mapping[str, str] | None = None
    ) -> list[Record]:
        """Validate parsed JSON and turn it into records; every error names index and field.

        ``splits`` (image path -> split) gives the split of each record when the layout has no
        split key; a record whose image it does not list is refused.
        """
        if not isinstance(data, list):
            raise DatasetError(
                path, f"expected a JSON list of records, found {type(data).__name__}"
            )
        if not data:
            raise DatasetError(path, "the annotation file holds no records")
        records: list[Record] = []
        ids_by_path: dict[str, tuple[int, int]] = {}
        for index, item in enumerate(data):
            record = self._parse_one(item, path, index, splits)
            # "a/./b.jpg" and "a//b.jpg" name the same file as "a/b.jpg".
            key = str(PurePosixPath(record.image_path))
            seen = ids_by_path.get(key)
            if seen is not None and seen[0] != record.person_id:
                raise DatasetError(
                    path,
                    f"image {record.image_path!r} has id {record.person_id} here and id "
                    f"{seen[0]} in record {seen[1]}",
                    index=index,
                    field=self.id_key,
                )
            ids_by_path.setdefault(key, (record.person_id, index))
            records.append(record)
        return records

    def _parse_one(
        self, item: Any, path: Path, index: int, splits: Mapping[str, str] | None
    ) -> Record:
        if not isinstance(item, dict):
            raise DatasetError(
                path, f"expected an object, found {type(item).__name__}", index=index
            )
        for key in (self.id_key, self.path_key, self.split_key, self.captions_key):
            if key is not None and key not in item:
                raise DatasetError(path, "missing key", index=index, field=key)
        person_id = item[self.id_key]
        if isinstance(person_id, bool) or not isinstance(person_id, int):
            raise DatasetError(
                path, f"expected an integer, found {type(person_id).__name__}", index=index,
                field=self.id_key,
            )
        image_path = item[self.path_key]
        if not isinstance(image_path, str):
            raise DatasetError(
                path, f"expected a string, found {type(image_path).__name__}", index=index,
                field=self.path_key,
            )
        check_relative_path(image_path, path, index, self.path_key)
        split = self._split_of(item, image_path, path, index, splits)
        captions = item[self.captions_key]
        if not isinstance(captions, list):
            raise DatasetError(
                path, f"expected a list of strings, found {type(captions).__name__}", index=index,
                field=self.captions_key,
            )
        if not captions:
            raise DatasetError(path, "no captions", index=index, field=self.captions_key)
        for k, caption in enumerate(captions):
            if not isinstance(caption, str):
                raise DatasetError(
                    path, f"caption {k} is a {type(caption).__name__}, not a string", index=index,
                    field=self.captions_key,
                )
            if not caption.strip():
                raise DatasetError(
                    path, f"caption {k} is empty", index=index, field=self.captions_key
                )
        if "processed_tokens" in item:
            self._check_tokens(item["processed_tokens"], path, index)
        return Record(image_path, person_id, split, tuple(captions), raw=item)

    def _split_of(
        self, item: dict[str, Any], image_path: str, path: Path, index: int,
        splits: Mapping[str, str] | None,
    ) -> str:
        if self.split_key is None:
            split = (splits or {}).get(str(PurePosixPath(image_path)))
            if split is None:
                raise DatasetError(
                    path, f"image {image_path!r} is not in the split file", index=index,
                    field=self.path_key,
                )
            field = "split"
        else:
            split, field = item[self.split_key], self.split_key
        if not isinstance(split, str):
            raise DatasetError(
                path, f"expected a string, found {type(split).__name__}", index=index, field=field
            )
        if split not in self.splits:
            raise DatasetError(
                path, f"unknown split {split!r} (expected one of {', '.join(self.splits)})",
                index=index, field=field,
            )
        return split

    @staticmethod
    def _check_tokens(tokens: Any, path: Path, index: int) -> None:
        """``processed_tokens`` is optional, but when present it must be lists of strings.

        Code written for CUHK-PEDES indexes it as ``tokens[caption][word]``; a wrong shape would
        only fail much later, inside someone else's training loop.
        """
        if not isinstance(tokens, list) or not all(
            isinstance(words, list) and all(isinstance(w, str) for w in words) for words in tokens
        ):
            raise DatasetError(
                path, "expected a list of lists of strings", index=index, field="processed_tokens"
            )

    # -- writing -----------------------------------------------------------------------------
    def to_json_object(self, record: Record) -> dict[str, Any]:
        """The annotation object of a record: its original object updated in place, or new."""
        # A raw object of another layout (TextReID's caption entries) is not this format's record.
        raw = record.raw if record.raw is not None and self.path_key in record.raw else None
        if raw is not None:
            obj = dict(raw)
        else:
            obj = {key: None for key in self.key_order}
        obj[self.id_key] = record.person_id
        obj[self.path_key] = record.image_path
        if self.split_key is not None:
            obj[self.split_key] = record.split
        else:  # a split-less layout: the split lives in its split file
            obj.pop("split", None)
        obj[self.captions_key] = list(record.captions)
        captions_changed = raw is None or list(raw.get(self.captions_key, [])) != list(
            record.captions
        )
        if "processed_tokens" in obj and captions_changed:
            obj["processed_tokens"] = [tokenize_caption(c) for c in record.captions]
        return obj

    def write(
        self, records: Sequence[Record], root: Path, annotation_name: str | None = None
    ) -> Path:
        name = annotation_name or self.annotation_names[0]
        if name not in self.annotation_names:
            raise ValueError(f"{name!r} is not a {self.name} annotation file name")
        path = Path(root) / name
        objects = [self.to_json_object(r) for r in records]
        atomic_write_bytes(path, json.dumps(objects, ensure_ascii=False).encode("utf-8"))
        return path


CUHK_PEDES = JsonListFormat(
    name="cuhk-pedes",
    dataset="CUHK-PEDES",
    annotation_names=("reid_raw.json", "CUHK-PEDES.json"),
    path_key="file_path",
    splits=("train", "val", "test"),
    key_order=("split", "captions", "file_path", "processed_tokens", "id"),
)

ICFG_PEDES = JsonListFormat(
    name="icfg-pedes",
    dataset="ICFG-PEDES",
    annotation_names=("ICFG-PEDES.json", "ICFG_PEDES.json"),
    path_key="file_path",
    splits=("train", "test"),
    key_order=("split", "captions", "file_path", "processed_tokens", "id"),
)

RSTPREID = JsonListFormat(
    name="rstpreid",
    dataset="RSTPReid",
    annotation_names=("data_captions.json", "RSTPReid.json"),
    path_key="img_path",
    splits=("train", "val", "test"),
    key_order=("id", "img_path", "captions", "split"),
)
