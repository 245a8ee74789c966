"""Work items and the per-process worker of ``ogor generate``.

A task is one output image: a clean image linked (or copied) unchanged, or an occluded one
composed and encoded. Workers (``spawn``) get the already-verified library pickled from the parent
and cache each occluder premultiplied; results come back as the manifest's JSON lines, serialised
in the workers, in chunks.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ogor.errors import GenerationError
from ogor.generation.diskspace import names_output_on_os_error
from ogor.generation.manifest import (
    ImageRow,
    image_row,
)
from ogor.imageio import encode_image, image_seed, read_image
from ogor.occlude.placement import Placement
from ogor.occlude.protocols import get_protocol
from toreid.io import (
    sha256_bytes,
    sha256_file,
)


@dataclass(frozen=True)
class _Task:
    """One output image: a link/copy of a clean image or an occluded image to compose."""

    occlude: bool
    source_path: str
    path: str
    split: str
    person_id: int
    #: A recorded placement (``--from-manifest``); ``None`` derives it from the seed.
    placement: dict[str, Any] | None = None
    expected_sha256: str | None = None


@dataclass(frozen=True)
class _WorkerConfig:
    source_images: str
    out_images: str
    protocol: str
    seed: int
    quality: int
    feather: float


class _Done(NamedTuple):
    """A finished output image: its manifest record as one JSON line, plus what the summary
    and the rebuild check need without parsing the line again."""

    path: str
    line: str
    row: ImageRow
    sha256: str


def _done_from_line(line: str) -> _Done:
    record = json.loads(line)
    return _Done(record["path"], line, image_row(record), record["sha256"])


class _Worker:
    """Per-process state: the library and each occluder, premultiplied once and cached."""

    def __init__(self, config: _WorkerConfig, library: Any) -> None:
        self.config = config
        self.source_images = config.source_images
        self.out_images = config.out_images
        self.library = library
        self.protocol = get_protocol(config.protocol)
        self._occluders: dict[str, np.ndarray] = {}
        self._can_link = True

    def occluder(self, instance_id: str) -> np.ndarray:
        from ogor.occlude.compose import rgba_to_premultiplied_bgra

        cached = self._occluders.get(instance_id)
        if cached is None:
            rgba = self.library.rgba(self.library.get(instance_id))
            cached = self._occluders[instance_id] = rgba_to_premultiplied_bgra(rgba)
        return cached

    @names_output_on_os_error  # issue 16: a failed write names the image
    def run(self, task: _Task) -> _Done:
        # Plain string paths: pathlib's parsing is measurable at 40,000 images per run.
        src = os.path.join(self.source_images, task.source_path)
        dst = os.path.join(self.out_images, task.path)
        if task.occlude:
            placement, fraction, digest = self._occlude(src, dst, task)
            record = placement.to_json()
            row = ImageRow(
                task.split, True, placement.position_set, placement.class_name,
                placement.fallback is not None, fraction,
            )
        else:
            digest, record, fraction = self._link(src, dst), None, 0.0
            row = ImageRow(task.split, False, None, None, False, fraction)
        entry = {
            "path": task.path,
            "source_path": task.source_path,
            "split": task.split,
            "person_id": task.person_id,
            "occluded": task.occlude,
            "placement": record,
            "occluded_fraction": fraction,
            "sha256": digest,
        }
        # Serialised here, in parallel: the same line goes to the journal and the manifest.
        return _Done(task.path, json.dumps(entry, ensure_ascii=False), row, digest)

    def _link(self, src: str, dst: str) -> str:
        """Hard link (else copy) a clean image; never re-encoded. Written straight to its name:
        a file not yet in the journal is deleted and redone on resume, so no rename is needed."""
        try:
            digest = sha256_file(src)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise GenerationError(f"{src}: source image not found") from None
        if self._can_link:
            try:
                os.link(src, dst)
                return digest
            except OSError:
                self._can_link = False  # other file system or no permission: copy from now on
        shutil.copyfile(src, dst)
        return digest

    def _occlude(self, src: str, dst: str, task: _Task) -> tuple[Placement, float, str]:

        from ogor.occlude.compose import paste

        image = read_image(src)
        if task.placement is not None:
            placement = Placement.from_json(task.placement)
        else:
            rng = np.random.default_rng(image_seed(self.config.seed, task.split, task.source_path))
            placement = self.protocol.place(rng, image.shape[:2], self.library)
        occluder = self.occluder(placement.instance_id)
        fraction = paste(image, occluder, placement, self.config.feather)
        encoded = encode_image(image, os.path.splitext(dst)[1], self.config.quality, src)
        with open(dst, "wb") as handle:  # see _link: the journal, not a rename, marks it done
            handle.write(encoded)
        return placement, round(fraction, 6), sha256_bytes(encoded)


_STATE: _Worker | None = None


def _init_worker(config: _WorkerConfig, library: Any) -> None:
    """Pool initializer; the library comes pickled from the parent (already verified there), so a
    worker boots without parsing and schema-checking the index again."""
    import cv2

    global _STATE
    cv2.setNumThreads(1)  # one process per core already; codec threads would oversubscribe
    _STATE = _Worker(config, library)


def _run_chunk(tasks: list[_Task]) -> list[_Done]:
    assert _STATE is not None
    return [_STATE.run(task) for task in tasks]


def _chunks(tasks: Sequence[_Task], size: int) -> Iterator[list[_Task]]:
    for start in range(0, len(tasks), size):
        yield list(tasks[start : start + size])


def _run_tasks(
    tasks: Sequence[_Task], config: _WorkerConfig, workers: int, library: Any, pool: Any
) -> Iterator[list[_Done]]:
    """Results chunk by chunk, in whatever order workers finish (the manifest is sorted later).

    Chunks of up to 256 images keep the inter-process traffic small while leaving about eight
    chunks per worker so that the last ones finish together.
    """
    if not tasks:
        return
    size = max(1, min(256, len(tasks) // (workers * 8)))
    if pool is None:
        worker = _Worker(config, library)
        for chunk in _chunks(tasks, size):
            yield [worker.run(task) for task in chunk]
        return
    yield from pool.imap_unordered(_run_chunk, _chunks(tasks, size))
