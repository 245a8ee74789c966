"""The gallery index folder: what ``bench index`` writes, ``bench search`` and ``serve`` read.

Layout of an index folder::

    index.json      the record: run, model, weights sha256, feature shapes, the faiss index
                    kind and parameters, the sources, and how many images are stored
    images.jsonl    one line per stored image, in gallery order: key, path, size, sha256
    vectors.f32     [G, d] the first-stage search vectors (the faiss index is rebuilt from them)
    pooled.f32      [G, D] the global features (the full similarity needs them)
    tokens.<dtype>  [G, N, D] the token features the full similarity needs (float16 by
                    default), read by row so a large gallery is not held in RAM
    mask.u8         [G, N] which token slots are real
    attention.<dtype> [G, N] the global token's attention over them
    global.faiss    the faiss index over vectors.f32 (rows 0 .. ``indexed`` - 1)

The arrays are raw little-endian files appended batch by batch; ``index.json`` is rewritten
atomically after each batch with the number of complete rows (``count``). A run interrupted
mid-batch leaves rows beyond ``count`` that the next run cuts off, so resuming is appending
from ``count``. The record is the only thing that says how many rows are valid, and nothing is
ever read from the files beyond it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.features import ImageFeatures
from toreid.errors import ToreidError
from toreid.io import atomic_write_json, read_json

INDEX_FORMAT = "toreid-gallery-index"
INDEX_VERSION = 1
RECORD = "index.json"
IMAGES = "images.jsonl"
FAISS_FILE = "global.faiss"
TOKEN_DTYPES = {"float16": np.float16, "float32": np.float32}


class GalleryIndexError(ToreidError):
    """A gallery index that cannot be used as asked (one line naming the file and field)."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The sha256 of a file's bytes (weights and images are identified by content)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Shapes:
    """Per-image shapes of the stored arrays."""

    vector_dim: int
    pooled_dim: int
    num_tokens: int
    token_dim: int
    token_dtype: str

    def files(self) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        """array name -> (dtype, per-row shape)."""
        dtype = np.dtype(TOKEN_DTYPES[self.token_dtype])
        return {"vectors": (np.dtype(np.float32), (self.vector_dim,)),
                "pooled": (np.dtype(np.float32), (self.pooled_dim,)),
                "tokens": (dtype, (self.num_tokens, self.token_dim)),
                "mask": (np.dtype(np.uint8), (self.num_tokens,)),
                "attention": (dtype, (self.num_tokens,))}

    @staticmethod
    def file_name(name: str, dtype: np.dtype) -> str:
        suffix = {"float32": "f32", "float16": "f16", "uint8": "u8"}[dtype.name]
        return f"{name}.{suffix}"


class GalleryIndex:
    """An index folder opened for reading or appending."""

    def __init__(self, folder: Path, record: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.record = record
        self.shapes = Shapes(**record["shapes"])

    # -- opening
    @classmethod
    def open(cls, folder: str | Path) -> GalleryIndex:
        """Open an existing index; a missing or foreign record is a one-line error."""
        folder = Path(folder)
        path = folder / RECORD
        if not path.is_file():
            raise GalleryIndexError(f"{path}: not a gallery index (no {RECORD}; build one with "
                              "bench index)")
        record = read_json(path, "gallery index record")
        if not isinstance(record, dict) or record.get("format") != INDEX_FORMAT:
            raise GalleryIndexError(f"{path}: field 'format' is not '{INDEX_FORMAT}'")
        if record.get("version") != INDEX_VERSION:
            raise GalleryIndexError(f"{path}: field 'version' is {record.get('version')!r}; this "
                              f"toolkit reads version {INDEX_VERSION}")
        for field in ("run", "weights_sha256", "shapes", "count", "faiss"):
            if field not in record:
                raise GalleryIndexError(f"{path}: field '{field}' missing")
        try:
            Shapes(**record["shapes"])
        except TypeError as exc:
            raise GalleryIndexError(f"{path}: field 'shapes': {exc}") from None
        if record["shapes"].get("token_dtype") not in TOKEN_DTYPES:
            raise GalleryIndexError(f"{path}: field 'shapes.token_dtype' must be one of "
                              f"{', '.join(TOKEN_DTYPES)}")
        return cls(folder, record)

    @classmethod
    def create(cls, folder: Path, record: dict[str, Any]) -> GalleryIndex:
        """Start an empty index with ``record`` (count 0)."""
        folder.mkdir(parents=True, exist_ok=True)
        record = {"format": INDEX_FORMAT, "version": INDEX_VERSION, **record, "count": 0,
                  "indexed": 0, "complete": False}
        index = cls(folder, record)
        for name, (dtype, _) in index.shapes.files().items():
            (folder / Shapes.file_name(name, dtype)).write_bytes(b"")
        (folder / IMAGES).write_text("")
        index.save_record()
        return index

    # -- sizes
    @property
    def count(self) -> int:
        return int(self.record["count"])

    def __len__(self) -> int:
        return self.count

    def save_record(self) -> None:
        atomic_write_json(self.folder / RECORD, self.record)

    # -- appending (resumable)
    def cut_to_count(self) -> None:
        """Drop rows beyond ``count`` (a batch interrupted before its record was saved)."""
        for name, (dtype, shape) in self.shapes.files().items():
            path = self.folder / Shapes.file_name(name, dtype)
            row = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
            size = path.stat().st_size if path.exists() else 0
            if size < row * self.count:
                raise GalleryIndexError(f"{path}: holds {size // max(row, 1)} rows, the record "
                                  f"{self.folder / RECORD} says {self.count} (a damaged index)")
            if size > row * self.count:
                os.truncate(path, row * self.count)
        lines = self.image_lines()
        if len(lines) < self.count:
            raise GalleryIndexError(
                f"{self.folder / IMAGES}: holds {len(lines)} images, the record "
                f"says {self.count} (a damaged index)")
        if len(lines) > self.count:
            (self.folder / IMAGES).write_text("".join(line + "\n"
                                                      for line in lines[:self.count]))

    def append(self, arrays: dict[str, np.ndarray], images: list[dict[str, Any]]) -> None:
        """Append one batch of rows and their image entries, then record the new count."""
        n = len(images)
        for name, (dtype, shape) in self.shapes.files().items():
            array = np.ascontiguousarray(arrays[name], dtype=dtype)
            if array.shape != (n, *shape):
                raise GalleryIndexError(f"{self.folder}: '{name}' of shape {array.shape} does not "
                                  f"fit the index's rows {(n, *shape)}")
            with open(self.folder / Shapes.file_name(name, dtype), "ab") as handle:
                handle.write(array.tobytes())
        with open(self.folder / IMAGES, "a", encoding="utf-8") as handle:
            for entry in images:
                handle.write(json.dumps(entry, sort_keys=True) + "\n")
        self.record["count"] = self.count + n
        self.save_record()

    # -- reading
    def array(self, name: str) -> np.ndarray:
        """A read-only memory map of one stored array, ``count`` rows."""
        dtype, shape = self.shapes.files()[name]
        path = self.folder / Shapes.file_name(name, dtype)
        if self.count == 0:
            return np.zeros((0, *shape), dtype=dtype)
        return np.memmap(path, dtype=dtype, mode="r", shape=(self.count, *shape))

    def image_lines(self) -> list[str]:
        path = self.folder / IMAGES
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

    def images(self) -> list[dict[str, Any]]:
        """The stored images' entries, in gallery order (``count`` of them)."""
        entries = []
        for number, line in enumerate(self.image_lines()[:self.count], start=1):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise GalleryIndexError(f"{self.folder / IMAGES}: line {number}: malformed JSON "
                                  f"({exc.msg})") from None
        return entries

    def image_table(self) -> ImageTable:
        """The image entries, read one row at a time (a million-image gallery is not parsed
        into memory to show ten results)."""
        return ImageTable(self.folder / IMAGES, self.count)

    def features(self, rows: torch.Tensor | np.ndarray) -> ImageFeatures:
        """The full image features of the given rows (float32), read from the files by
        position: only these rows are read from disk."""
        rows = np.asarray(rows, dtype=np.int64)

        if len(rows) and (rows.min() < 0 or rows.max() >= self.count):
            raise GalleryIndexError(f"{self.folder}: rows outside 0 .. {self.count - 1}")

        def take(name: str) -> torch.Tensor:
            # one pread per row, not a memory map's page faults: a fault reads ahead a large
            # window, so 100 rows of 30 KB not in the page cache took 530-610 ms through the
            # map and 11-14 ms by pread on this machine's disk (perf/search.py's gallery; the
            # map's fancy indexing was slower still)
            dtype, shape = self.shapes.files()[name]
            out = np.empty((len(rows), *shape), dtype=dtype)
            size = out[0].nbytes if len(rows) else 0
            path = self.folder / Shapes.file_name(name, dtype)
            with open(path, "rb", buffering=0) as handle:
                for i, row in enumerate(rows):
                    data = os.pread(handle.fileno(), size, int(row) * size)
                    if len(data) != size:
                        raise GalleryIndexError(f"{path}: row {row} is past the end of the "
                                                "file (a damaged index)")
                    out[i] = np.frombuffer(data, dtype=dtype).reshape(shape)
            return torch.from_numpy(out)

        return ImageFeatures(pooled=take("pooled").float(), tokens=take("tokens").float(),
                             mask=take("mask").bool(), attention=take("attention").float())

    def vectors(self) -> np.ndarray:
        return self.array("vectors")


def features_to_arrays(model: torch.nn.Module, features: ImageFeatures) -> dict[str, np.ndarray]:
    """The arrays of one encoded batch, in the order :meth:`GalleryIndex.append` stores."""
    return {"vectors": model.search_vectors(features).cpu().numpy(),
            "pooled": features.pooled.float().cpu().numpy(),
            "tokens": features.tokens.float().cpu().numpy(),
            "mask": features.mask.cpu().numpy().astype(np.uint8),
            "attention": features.attention.float().cpu().numpy()}


def check_same_weights(index: GalleryIndex, run: Path, weights_sha256: str) -> None:
    """Refuse a run whose weights are not the ones the index was built with."""
    if weights_sha256 != index.record["weights_sha256"]:
        raise GalleryIndexError(
            f"{index.folder / RECORD}: field 'weights_sha256': the index was built by run "
            f"{index.record['run']} (model {index.record.get('model', '?')}, weights "
            f"{index.record['weights_sha256'][:12]}); run {run} has weights "
            f"{weights_sha256[:12]}: features of two models are not comparable")

class ImageTable:
    """Random access to the lines of ``images.jsonl``: one pass records where each line
    starts (8 bytes per image); an entry is parsed when it is asked for."""

    def __init__(self, path: Path, count: int) -> None:
        self.path = Path(path)
        data = np.fromfile(self.path, dtype=np.uint8)
        ends = np.flatnonzero(data == ord("\n"))
        if len(ends) < count:
            raise GalleryIndexError(f"{self.path}: holds {len(ends)} images, the record says "
                              f"{count} (a damaged index)")
        self.starts = np.concatenate([[0], ends[:count - 1] + 1]) if count else ends[:0]
        self.ends = ends[:count]

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, row: int) -> dict[str, Any]:
        if not 0 <= row < len(self):
            raise IndexError(row)
        with open(self.path, "rb") as handle:
            handle.seek(int(self.starts[row]))
            line = handle.read(int(self.ends[row] - self.starts[row]))
        try:
            return json.loads(line)
        except json.JSONDecodeError as exc:
            raise GalleryIndexError(
                f"{self.path}: line {row + 1}: malformed JSON ({exc.msg})") from None
