"""``extract_library``: images -> detector -> filtered, ranked, de-duplicated cutouts -> an OIL.

Two phases, so that a run over thousands of images survives interruption:

1. **Detect** (per image, resumable). Every image is read, passed to the backend, and each mask
   that maps to an occluder class and passes :class:`~ogor.extract.cutout.CutoutFilter` is cut
   out and kept as a *candidate* in the state folder. A rerun skips the images whose record is
   already there.
2. **Select** (once, at the end). Candidates are ranked per class by quality, near-duplicates
   are dropped, each class is capped at ``per_class``, and the library is written through
   :class:`ogor.library.LibraryWriter`, which builds it aside and publishes ``index.json`` last.

State folder layout (a sibling of the output, ``<out>.extract-state/``; removed after a
successful run unless ``keep_state``)::

    <out>.extract-state/
      settings.json            what changes the candidates: backend settings, filter, feather
      records/<key>.json       one per processed image (written last, atomically):
                               {"image", "status": "ok"|"bad", "error", "size", "detections",
                                "rejected": {reason: count}, "candidates": [...]}
      records/<key>-<k>.png    candidate cutouts of that image (written before the record)

``<key>`` is the first 20 hex digits of the sha256 of the image path relative to the input
root, so a record never depends on processing order. A record is the proof that its image is
done: PNGs without a record (a run killed mid-image) are simply rewritten. The state folder is
never named like a library and holds no ``index.json``, so it cannot be mistaken for one; and
a rerun with different candidate settings is refused unless ``overwrite`` discards the state.
Selection settings (``per_class``, ``dedup_threshold``) are not in ``settings.json``: with
``keep_state`` a rerun can re-select with another cap without detecting again.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ogor.errors import DatasetError
from ogor.extract import cutout as cut
from ogor.extract.base import DetectorBackend, ExtractionError
from ogor.extract.dedup import DEFAULT_THRESHOLD, keep_distinct, signature
from ogor.extract.inputs import (
    IMAGE_SUFFIXES,
    ImageRef,
    coco_images,
    is_inside,
    read_image,
    scan_images,
)
from ogor.extract.state import STATE_SUFFIX, open_state, state_folder
from ogor.library.taxonomy import Taxonomy, load_taxonomy
from toreid.io import atomic_write_bytes, atomic_write_json, read_json


@dataclass
class ExtractionSummary:
    """What a run did, for the command line's closing report and for tests.

    Attributes:
        library: the library folder written (``None`` when no instance was kept).
        backend: backend name; ``detector`` is the provenance string stored per instance.
        images: images in the input; ``processed`` of them in this run, ``resumed`` skipped
            because an earlier run had done them; ``bad`` unreadable ones that were skipped.
        detections: instances the backend returned (this run's images only).
        candidates: instances that passed the filters (all images, resumed included).
        rejected: count per reason, over all images (includes near-duplicates and the cap).
        per_class: instances written per class, every taxonomy class listed (0 = none found).
    """

    library: Path | None
    backend: str
    detector: str
    images: int = 0
    processed: int = 0
    resumed: int = 0
    bad: list[str] = field(default_factory=list)
    detections: int = 0
    candidates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    per_class: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.per_class.values())

    @property
    def missing_classes(self) -> list[str]:
        """Classes with no instance in the library, in taxonomy order."""
        return [name for name, count in self.per_class.items() if count == 0]

    def report_lines(self) -> list[str]:
        """The human-readable closing report: counts per class and the classes found none."""
        lines = [
            f"images: {self.images} ({self.processed} processed, {self.resumed} resumed, "
            f"{len(self.bad)} unreadable skipped)",
            f"detections: {self.detections} this run; candidates: {self.candidates}",
        ]
        if self.rejected:
            lines.append(
                "rejected: " + ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items()))
            )
        width = max((len(name) for name in self.per_class), default=5)
        lines.append("per class:")
        lines += [f"  {name:<{width}}  {count}" for name, count in self.per_class.items()]
        lines.append(f"total: {self.total} instances")
        missing = self.missing_classes
        lines.append("classes with none: " + (", ".join(missing) if missing else "(none)"))
        if self.library is not None:
            lines.append(f"library: {self.library}")
        return lines


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


def label_mapper(taxonomy: Taxonomy, label_space: str) -> Callable[[str], str | None]:
    """A function from a backend label to an occluder class name (``None``: not an occluder).

    Ground-truth files name categories however they like, so ``gt`` tries COCO names, then
    LVIS names, then the taxonomy's own names and aliases ("road sign", "fire_hydrant").
    """
    if label_space == "coco":
        return taxonomy.coco_to_class
    if label_space == "lvis":
        return taxonomy.lvis_to_class
    if label_space == "gt":

        def from_gt(label: str) -> str | None:
            return (
                taxonomy.coco_to_class(label)
                or taxonomy.lvis_to_class(label)
                or taxonomy.try_resolve(label)
            )

        return from_gt
    raise ValueError(f"unknown label space '{label_space}'")


# --------------------------------------------------------------------------------------------
# Phase 1: detect and keep candidates
# --------------------------------------------------------------------------------------------


def _record_key(image_key: str) -> str:
    return hashlib.sha256(image_key.encode("utf-8")).hexdigest()[:20]


def _encode_png(rgba: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGRA array
        raise RuntimeError("PNG encoding failed")
    return buffer.tobytes()


def _decode_png(path: Path) -> np.ndarray:
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None or array.ndim != 3 or array.shape[2] != 4:
        raise ExtractionError(
            f"{path}: damaged candidate in the state folder; rerun with --overwrite"
        )
    return cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA)


def process_image(
    ref: ImageRef,
    image_rgb: np.ndarray,
    backend: DetectorBackend,
    to_class: Callable[[str], str | None],
    rules: cut.CutoutFilter,
    feather: float,
    records: Path,
) -> dict[str, Any]:
    """Detect, filter and cut out one image; write its candidate PNGs and then its record."""
    key = _record_key(ref.key)
    instances = backend.predict(image_rgb, image_path=ref.path)
    rejected: dict[str, int] = {}
    candidates: list[dict[str, Any]] = []
    for mask, label, score in zip(instances.masks, instances.labels, instances.scores, strict=True):
        class_name = to_class(label)
        if class_name is None:
            rejected[cut.REJECT_UNMAPPED] = rejected.get(cut.REJECT_UNMAPPED, 0) + 1
            continue
        verdict = cut.assess(mask, float(score), rules)
        if not verdict.accepted:
            rejected[verdict.reason] = rejected.get(verdict.reason, 0) + 1
            continue
        rgba = cut.cut_out(image_rgb, mask, feather=feather, box=verdict.box)
        file = f"{key}-{len(candidates):03d}.png"
        atomic_write_bytes(records / file, _encode_png(rgba))
        candidates.append(
            {
                "file": file,
                "class": class_name,
                "label": label,
                "score": round(float(score), 6),
                "quality": round(verdict.quality, 6),
                "box": list(verdict.box),
                "area": verdict.area,
                "signature": signature(rgba).tobytes().hex(),
            }
        )
    record = {
        "image": ref.key,
        "status": "ok",
        "size": [int(image_rgb.shape[1]), int(image_rgb.shape[0])],
        "detections": len(instances),
        "rejected": rejected,
        "candidates": candidates,
    }
    atomic_write_json(records / f"{key}.json", record)
    return record


# --------------------------------------------------------------------------------------------
# Phase 2: rank, de-duplicate, cap, write
# --------------------------------------------------------------------------------------------


def select_candidates(
    candidates: Sequence[dict[str, Any]],
    class_order: Sequence[str],
    *,
    per_class: int | None,
    dedup_threshold: float,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """Rank each class's candidates, drop near-duplicates and cap the count.

    Ranking is by quality, then by score, then by (image, file) so that ties resolve the same
    way in every run regardless of the order images were processed in. Once a class has
    ``per_class`` distinct instances the rest are counted as over the cap without being
    compared (so the near-duplicate count covers only the candidates examined).

    Returns:
        The kept candidates per class (best first) and the rejection counts this step adds.
    """
    by_class: dict[str, list[dict[str, Any]]] = {name: [] for name in class_order}
    for candidate in candidates:
        by_class.setdefault(candidate["class"], []).append(candidate)
    kept: dict[str, list[dict[str, Any]]] = {}
    rejected = {cut.REJECT_DUPLICATE: 0, cut.REJECT_OVER_CAP: 0}
    for name, group in by_class.items():
        group.sort(key=lambda c: (-c["quality"], -c["score"], c["image"], c["file"]))
        signatures = [np.frombuffer(bytes.fromhex(c["signature"]), dtype=np.uint8) for c in group]
        aspects = [c["box"][3] / c["box"][2] for c in group]
        # Stop at the cap: the rest would be dropped anyway, and comparing thousands of
        # candidates with each other costs quadratic time.
        distinct = keep_distinct(signatures, aspects, dedup_threshold, limit=per_class)
        examined = (
            distinct[-1] + 1 if per_class is not None and len(distinct) == per_class else len(group)
        )
        rejected[cut.REJECT_DUPLICATE] += examined - len(distinct)
        rejected[cut.REJECT_OVER_CAP] += len(group) - examined
        kept[name] = [group[i] for i in distinct]
    return kept, {k: v for k, v in rejected.items() if v}


# --------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------


def extract_library(
    inputs: Iterable[ImageRef],
    out_dir: str | Path,
    backend: DetectorBackend,
    *,
    per_class: int | None = None,
    rules: cut.CutoutFilter | None = None,
    feather: float = 0.0,
    dedup_threshold: float = DEFAULT_THRESHOLD,
    skip_bad_images: bool = False,
    overwrite: bool = False,
    keep_state: bool = False,
    taxonomy: Taxonomy | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> ExtractionSummary:
    """Build an occlusion instance library from images and a detector backend.

    Args:
        inputs: the images (see :func:`scan_images`, :func:`coco_images`).
        out_dir: the library folder to write; must not exist unless ``overwrite``.
        backend: a built :class:`~ogor.extract.base.DetectorBackend`.
        per_class: keep at most this many instances per class (4 gives the paper's 60).
        rules: candidate filter (score, size, border, fragments); defaults if ``None``.
        feather: Gaussian sigma (pixels) softening the alpha edge inwards; 0 keeps it hard.
        dedup_threshold: signature distance under which two cutouts of a class are the same
            object (0 disables de-duplication).
        skip_bad_images: record and skip unreadable images instead of stopping at the first.
        overwrite: replace an existing library at ``out_dir`` and discard a state folder left
            with other settings.
        keep_state: keep the state folder after success (to re-select without detecting).
        taxonomy: class table (default: the shipped one).
        progress: show a tqdm progress bar on stderr.
        log: where to send one-line notes (default: nowhere).

    Returns:
        An :class:`ExtractionSummary`; ``library`` is ``None`` when no instance survived
        (nothing is written then, and the state folder is kept).

    Raises:
        DatasetError: an unreadable image (unless ``skip_bad_images``) or annotation.
        LibraryError: ``out_dir`` exists and may not be replaced.
        ExtractionError: a state folder with other settings, or bad options.
    """
    from ogor.library.writer import check_output_folder

    out_dir = Path(out_dir)
    rules = rules or cut.CutoutFilter()
    taxonomy = taxonomy or load_taxonomy()
    note = log or (lambda _message: None)
    refs = list(inputs)
    _check_request(out_dir, refs, per_class, feather)
    check_output_folder(out_dir, overwrite)

    settings = {
        "backend": backend.settings(),
        "taxonomy_version": taxonomy.version,
        "filter": asdict(rules),
        "feather": float(feather),
    }
    state = state_folder(out_dir)
    records = open_state(state, settings, overwrite)
    to_class = label_mapper(taxonomy, backend.label_space)
    summary = ExtractionSummary(
        library=None, backend=backend.name, detector=backend.detector, images=len(refs)
    )
    all_records = _detect_all(
        refs, backend, to_class, rules, feather, records, summary, skip_bad_images, note, progress
    )
    candidates = _tally(all_records, summary)
    kept = _select(candidates, taxonomy, per_class, dedup_threshold, summary)
    if summary.total == 0:
        note(f"no instance passed the filters; state kept in {state}")
        return summary

    _write_library(out_dir, overwrite, taxonomy, backend, kept, records)
    summary.library = out_dir
    if not keep_state:
        shutil.rmtree(state, ignore_errors=True)
    return summary


def _check_request(
    out_dir: Path, refs: Sequence[ImageRef], per_class: int | None, feather: float
) -> None:
    if per_class is not None and per_class < 1:
        raise ExtractionError(f"--per-class must be at least 1, got {per_class}")
    if feather < 0:
        raise ExtractionError(f"--feather must be >= 0, got {feather}")
    if not refs:
        raise ExtractionError("no input images")
    for root in {ref.root for ref in refs}:
        # Nothing is written inside a source folder, and an output there would be rescanned
        # as input by the next run.
        if is_inside(out_dir, root):
            raise ExtractionError(f"{out_dir}: --out must not be inside the input folder {root}")


def _detect_all(
    refs: Sequence[ImageRef],
    backend: DetectorBackend,
    to_class: Callable[[str], str | None],
    rules: cut.CutoutFilter,
    feather: float,
    records: Path,
    summary: ExtractionSummary,
    skip_bad_images: bool,
    note: Callable[[str], None],
    progress: bool,
) -> list[dict[str, Any]]:
    """Phase 1: every image's record, read back when an earlier run made it, else detected."""
    from tqdm import tqdm

    all_records: list[dict[str, Any]] = []
    bar = tqdm(refs, desc=f"extract-oil [{backend.name}]", unit="img", disable=not progress)
    for ref in bar:
        record_file = records / f"{_record_key(ref.key)}.json"
        if record_file.is_file():
            record = read_json(record_file, "extraction record")
            if record.get("image") == ref.key and record.get("status") == "ok":
                summary.resumed += 1
                all_records.append(record)
                continue
        try:
            image = read_image(ref.path)
        except DatasetError as exc:
            if not skip_bad_images:
                raise
            note(f"skipped: {exc}")
            record = {"image": ref.key, "status": "bad", "error": str(exc), "candidates": []}
            atomic_write_json(record_file, record)
        else:
            record = process_image(ref, image, backend, to_class, rules, feather, records)
            summary.processed += 1
            summary.detections += record["detections"]
        all_records.append(record)
    bar.close()
    return all_records


def _tally(
    all_records: Sequence[dict[str, Any]], summary: ExtractionSummary
) -> list[dict[str, Any]]:
    """Every record's candidates (tagged with their image), counting bad images and rejections."""
    candidates: list[dict[str, Any]] = []
    for record in all_records:
        if record["status"] == "bad":
            summary.bad.append(record["image"])
        for reason, count in record.get("rejected", {}).items():
            summary.rejected[reason] = summary.rejected.get(reason, 0) + count
        candidates += [{**c, "image": record["image"]} for c in record["candidates"]]
    summary.candidates = len(candidates)
    return candidates


def _select(
    candidates: Sequence[dict[str, Any]],
    taxonomy: Taxonomy,
    per_class: int | None,
    dedup_threshold: float,
    summary: ExtractionSummary,
) -> dict[str, list[dict[str, Any]]]:
    """Phase 2: :func:`select_candidates`, with its rejections and counts added to the summary."""
    kept, more_rejected = select_candidates(
        candidates, taxonomy.names(), per_class=per_class, dedup_threshold=dedup_threshold
    )
    for reason, count in more_rejected.items():
        summary.rejected[reason] = summary.rejected.get(reason, 0) + count
    summary.per_class = {name: len(kept.get(name, [])) for name in taxonomy.names()}
    return kept


def _write_library(
    out_dir: Path,
    overwrite: bool,
    taxonomy: Taxonomy,
    backend: DetectorBackend,
    kept: dict[str, list[dict[str, Any]]],
    records: Path,
) -> None:
    """Phase 2's output: the kept candidates, class by class, through the library writer."""
    from ogor.library.writer import LibraryWriter

    score_of = (lambda c: None) if backend.label_space == "gt" else (lambda c: c["score"])
    description = f"extracted by ogor extract-oil with {backend.detector}"
    with LibraryWriter(out_dir, overwrite, taxonomy=taxonomy, description=description) as writer:
        for name in taxonomy.names():
            for candidate in kept.get(name, []):
                writer.add(
                    name,
                    _decode_png(records / candidate["file"]),
                    detector=backend.detector,
                    score=score_of(candidate),
                    source={"image": candidate["image"], "box": candidate["box"]},
                )


__all__ = [
    "IMAGE_SUFFIXES",
    "STATE_SUFFIX",
    "ExtractionSummary",
    "ImageRef",
    "coco_images",
    "extract_library",
    "label_mapper",
    "read_image",
    "scan_images",
    "select_candidates",
    "state_folder",
]
