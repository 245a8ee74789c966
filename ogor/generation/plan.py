"""What ``ogor generate`` will make: the tasks, the output records and annotation, the counts.

Pure planning apart from :func:`_write_annotation` (the one file written here) and
:func:`_dry_run_placements` (which reads image headers only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ogor.datasets import Dataset, Record
from ogor.errors import GenerationError
from ogor.generation.manifest import (
    ImageRow,
)
from ogor.generation.worker import _Task
from ogor.imageio import image_seed, image_size
from ogor.occlude.protocols import get_protocol
from ogor.occlude.selection import ImageItem
from toreid.io import (
    atomic_write_bytes,
)

#: Suffix of the occluded copy's file name in ``--mode add`` (``0001.jpg`` -> ``0001_occ.jpg``).
OCCLUDED_SUFFIX = "_occ"


def occluded_name(path: str) -> str:
    """The occluded copy's path in ``--mode add``: the stem gets :data:`OCCLUDED_SUFFIX`."""
    pure = PurePosixPath(path)
    return str(pure.with_name(pure.stem + OCCLUDED_SUFFIX + pure.suffix))


def _plan(
    images: Sequence[ImageItem], selected: set[str], mode: str, annotation: Path
) -> list[_Task]:
    tasks: list[_Task] = []
    existing = {item.path for item in images}
    for item in sorted(images, key=lambda i: i.path):
        chosen = item.path in selected
        if mode == "add" and chosen:
            copy = occluded_name(item.path)
            if copy in existing:
                raise GenerationError(
                    f"{annotation}: field 'image path': the occluded copy {copy!r} of "
                    f"{item.path!r} would overwrite an existing source image (--mode add)"
                )
            tasks.append(_Task(False, item.path, item.path, item.split, item.person_id))
            tasks.append(_Task(True, item.path, copy, item.split, item.person_id))
        else:
            tasks.append(_Task(chosen, item.path, item.path, item.split, item.person_id))
    return tasks


def _tasks_from_manifest(manifest: dict[str, Any]) -> list[_Task]:
    return [
        _Task(
            bool(item["occluded"]),
            item["source_path"],
            item["path"],
            item["split"],
            int(item["person_id"]),
            placement=item["placement"] if item["occluded"] else None,
            expected_sha256=item["sha256"],
        )
        for item in manifest["images"]
    ]


def _output_records(dataset: Dataset, selected: set[str], mode: str) -> list[Record]:
    """``--mode add``: every record, each selected one followed by its occluded copy."""
    records: list[Record] = []
    for record in dataset.records:
        records.append(record)
        if mode == "add" and record.image_path in selected:
            records.append(dataclasses.replace(record, image_path=occluded_name(record.image_path)))
    return records


def _write_annotation(
    dataset: Dataset, selected: set[str], mode: str, folder: Path
) -> tuple[list[Record], Path]:
    """The annotation in the source's layout and names. In replace mode the records are the
    source's own, so every annotation file (TextReID has one per split) is copied byte for byte.
    Returns the records and the annotation path (a file, or TextReID's folder)."""
    records = _output_records(dataset, selected, mode)
    target = folder / dataset.annotation_path.relative_to(dataset.root)
    if mode == "replace":
        for file in dataset.annotation_files or (dataset.annotation_path,):
            atomic_write_bytes(folder / file.relative_to(dataset.root), file.read_bytes())
    else:
        dataset.format.write(records, folder, annotation_name=dataset.annotation_path.name)
    return records, target


def _dry_run_placements(
    tasks: Sequence[_Task], dataset: Dataset, seed: int, protocol_name: str, library: Any
) -> list[dict[str, Any]]:
    """Placements without compositing: sizes come from image headers, nothing is written."""
    protocol = get_protocol(protocol_name)
    records = []
    for task in tasks:
        placement = None
        if task.occlude:
            path = dataset.image_root / task.source_path
            size = image_size(path)
            rng = np.random.default_rng(image_seed(seed, task.split, task.source_path))
            placement = protocol.place(rng, size, library).to_json()
        records.append(
            {
                "path": task.path,
                "split": task.split,
                "occluded": task.occlude,
                "placement": placement,
                "occluded_fraction": None,
            }
        )
    return records


def _counts(
    images: Sequence[ImageItem], rows: Sequence[ImageRow], records: Sequence[Record]
) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for split in _ordered_splits({i.split for i in images}):
        counts[split] = {
            "source_images": sum(1 for i in images if i.split == split),
            "occluded": sum(1 for r in rows if r.split == split and r.occluded),
            "output_images": sum(1 for r in rows if r.split == split),
            "records": sum(1 for r in records if r.split == split),
        }
    return counts


def _ordered_splits(splits: set[str]) -> list[str]:
    from ogor.datasets import SPLITS

    return sorted(splits, key=lambda s: (SPLITS.index(s) if s in SPLITS else 99, s))
