"""The manifest of an occluded dataset, ``OUT/ogor-manifest.json``: write, read, check, query.

The manifest is the dataset's recipe and receipt at once: the parameters, the library fingerprint,
the source annotation's sha256, and per output image its placement, measured occluded fraction
and sha256. ``ogor verify`` checks a dataset against it and ``ogor generate --from-manifest``
rebuilds the dataset from it, so an Occluded-* dataset can be shared as its manifest alone.

Unfinished output: ``ogor generate`` builds in a sibling folder ``OUT.ogor-partial`` and renames it
to ``OUT`` when complete. The job file :data:`JOB_NAME` inside it marks the folder as unfinished
and is removed last; every reader here refuses a folder that still has it.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from ogor.datasets.base import SPLITS
from ogor.errors import GenerationError, ToreidError
from ogor.io import atomic_write_bytes, read_json

MANIFEST_NAME = "ogor-manifest.json"
MANIFEST_FORMAT = "ogor-occluded-dataset"
MANIFEST_VERSION = 1
SCHEMA_NAME = "dataset-manifest.schema.json"
#: Present in an output folder until generation has finished: readers refuse such a folder.
JOB_NAME = ".ogor-job.json"
#: One line per finished output image, so ``--resume`` skips them.
JOURNAL_NAME = ".ogor-journal.jsonl"


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of the manifest (``manifests/dataset-manifest.schema.json``)."""
    text = resources.files("manifests").joinpath(SCHEMA_NAME).read_text(encoding="utf-8")
    return json.loads(text)


def validate_manifest(manifest: Any, path: str | Path) -> None:
    """Check a manifest against the schema.

    Raises:
        GenerationError: one line naming the file and the first offending field.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(manifest_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(manifest))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
        raise GenerationError(f"{path}: field '{where}': {message}")


def dumps_manifest(manifest: dict[str, Any]) -> bytes:
    """Serialise deterministically: indented header, one compact line per image record.

    One line per image keeps a 40,000-image manifest readable with ``grep`` and a few MB in
    size, where a fully indented dump would run to over half a million lines. An image record
    given as a string is taken as already serialised (``ogor generate`` keeps the journal's
    lines instead of serialising every record twice).
    """
    parts = []
    for key, value in manifest.items():
        if key == "images":
            lines = [
                item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
                for item in value
            ]
            body = "[\n" + ",\n".join("    " + line for line in lines) + "\n  ]" if lines else "[]"
        else:
            body = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        parts.append(f"  {json.dumps(key)}: {body}")
    return ("{\n" + ",\n".join(parts) + "\n}\n").encode("utf-8")


def write_manifest(path: str | Path, manifest: dict[str, Any]) -> bytes:
    """Write the manifest atomically; returns the bytes written."""
    data = dumps_manifest(manifest)
    atomic_write_bytes(path, data)
    return data


def check_finished(root: Path) -> None:
    """Refuse a folder that ``ogor generate`` has not finished.

    Raises:
        GenerationError: the job file is still there.
    """
    if (root / JOB_NAME).exists():
        raise GenerationError(
            f"{root}: unfinished 'ogor generate' output ({JOB_NAME} present); "
            "rerun the same command with --resume to finish it"
        )


def read_manifest(path: str | Path, *, validate: bool = True) -> dict[str, Any]:
    """Read a manifest file (or the manifest of a dataset root) and check it.

    Raises:
        GenerationError: missing, malformed, from an unfinished run, or not matching the schema.
    """
    path = Path(path)
    if path.is_dir():
        check_finished(path)
        path = path / MANIFEST_NAME
    try:
        manifest = read_json(path, "manifest")
    except ToreidError as exc:
        raise GenerationError(str(exc)) from exc
    if validate:
        validate_manifest(manifest, path)
    return manifest


def occlusion_flags(dataset_root: str | Path) -> dict[str, bool] | None:
    """Which images of a generated dataset are occluded (contract C3).

    Returns:
        image path as in the annotation file (relative to ``imgs/``) -> occluded or not; ``None``
        when the root has no manifest (a plain dataset).

    Raises:
        GenerationError: the folder is an unfinished generation or its manifest is broken.
    """
    root = Path(dataset_root)
    check_finished(root)
    path = root / MANIFEST_NAME
    if not path.is_file():
        return None
    manifest = read_manifest(path, validate=False)
    try:
        return {item["path"]: bool(item["occluded"]) for item in manifest["images"]}
    except (KeyError, TypeError) as exc:
        raise GenerationError(f"{path}: field 'images': malformed image record ({exc})") from exc


class ImageRow(NamedTuple):
    """The fields of one image record that the summary and the counts need."""

    split: str
    occluded: bool
    position_set: str | None
    class_name: str | None
    fallback: bool
    fraction: float | None


def image_row(item: dict[str, Any]) -> ImageRow:
    """The :class:`ImageRow` of a manifest image record."""
    placement = item["placement"]
    if not item["occluded"] or placement is None:
        return ImageRow(item["split"], False, None, None, False, item["occluded_fraction"])
    return ImageRow(
        item["split"], True, placement["set"], placement["class"],
        placement["fallback"] is not None, item["occluded_fraction"],
    )


def summarize(rows: Iterable[ImageRow]) -> dict[str, Any]:
    """The manifest's closing table: per split images / occluded / mean occluded fraction, and
    counts per position set and per class, and the number of fallback placements."""
    splits: dict[str, dict[str, Any]] = {}
    fractions: dict[str, list[float]] = defaultdict(list)
    sets: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    fallbacks = 0
    for row in rows:
        counts = splits.setdefault(row.split, {"images": 0, "occluded": 0})
        counts["images"] += 1
        if row.occluded:
            counts["occluded"] += 1
            sets[row.position_set] += 1
            classes[row.class_name] += 1
            fallbacks += row.fallback
            if row.fraction is not None:
                fractions[row.split].append(row.fraction)
    ordered = sorted(splits, key=lambda s: (SPLITS.index(s) if s in SPLITS else 99, s))
    for split in ordered:
        values = fractions.get(split)
        splits[split]["mean_occluded_fraction"] = (
            round(sum(values) / len(values), 6) if values else None
        )
    return {
        "splits": {s: splits[s] for s in ordered},
        "sets": {s: sets[s] for s in ("up", "middle", "bottom") if sets[s]},
        "classes": dict(sorted(classes.items())),
        "fallbacks": fallbacks,
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a plain-text table for the terminal."""
    lines = [f"{'split':<8}{'images':>9}{'occluded':>10}{'mean occluded fraction':>24}"]
    for split, row in summary["splits"].items():
        mean = row["mean_occluded_fraction"]
        shown = "-" if mean is None else f"{mean:.3f}"
        lines.append(f"{split:<8}{row['images']:>9}{row['occluded']:>10}{shown:>24}")
    total = sum(summary["sets"].values())
    if total:
        lines.append("per set:   " + ", ".join(f"{k} {v}" for k, v in summary["sets"].items()))
        lines.append("per class: " + ", ".join(f"{k} {v}" for k, v in summary["classes"].items()))
        lines.append(
            f"fallback placements: {summary['fallbacks']} of {total} "
            f"({100.0 * summary['fallbacks'] / total:.1f}%)"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyReport:
    """What ``ogor verify`` checked (it raises at the first mismatch, so all of it passed).

    Attributes:
        images: image files hashed against the manifest.
        placements: occluded images whose placement was re-derived from the seed.
        recomposed: sampled images rebuilt from the source and compared byte for byte.
        selection_checked: whether the set of occluded images was re-derived from the seed.
    """

    images: int
    placements: int
    recomposed: int
    selection_checked: bool


def _sample(items: Sequence[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """``n`` items spread evenly over ``items`` (deterministic, first and last included)."""
    if n <= 0 or not items:
        return []
    if n >= len(items):
        return list(items)
    step = (len(items) - 1) / max(n - 1, 1)
    return [items[round(k * step)] for k in range(n)]


def verify_dataset(
    root: str | Path,
    *,
    source: str | Path | None = None,
    sample: int = 16,
    oil: str | Path | None = None,
) -> VerifyReport:
    """Check a generated dataset against its manifest; raise at the first mismatch.

    In order: the manifest (schema), the annotation file's sha256, every image's sha256, no file
    the manifest does not list, the set of occluded images re-derived from the seed, and the
    placements of ``sample`` occluded images re-derived from the seed and the library. With
    ``source``, also the source annotation's sha256 and the sampled images rebuilt from the
    source byte for byte.

    Raises:
        GenerationError: one line naming the first mismatch.
    """
    import numpy as np
    from PIL import Image

    from ogor.datasets import read_dataset
    from ogor.io import sha256_file
    from ogor.oil import OcclusionLibrary, default_library_path
    from ogor.protocols import get_protocol
    from ogor.selection import ImageItem

    root = Path(root)
    check_finished(root)
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise GenerationError(f"{manifest_path}: missing; {root} was not made by 'ogor generate'")
    manifest = read_manifest(manifest_path)
    image_dir = root / manifest["source"]["image_dir"]

    annotation = root / manifest["annotation"]["path"]
    if not annotation.is_file():
        raise GenerationError(f"{annotation}: annotation file missing")
    if sha256_file(annotation) != manifest["annotation"]["sha256"]:
        raise GenerationError(f"{annotation}: annotation file differs from the manifest (sha256)")

    listed = {MANIFEST_NAME, manifest["annotation"]["path"]}
    for item in manifest["images"]:
        file = image_dir / item["path"]
        if not file.is_file():
            raise GenerationError(f"{file}: image listed in the manifest is missing")
        if sha256_file(file) != item["sha256"]:
            raise GenerationError(f"{file}: image differs from the manifest (sha256)")
        listed.add(f"{manifest['source']['image_dir']}/{item['path']}")
    for folder, _dirs, files in os.walk(root):
        for name in sorted(files):
            relative = Path(folder, name).relative_to(root).as_posix()
            if relative not in listed:
                raise GenerationError(f"{root / relative}: file not listed in the manifest")

    protocol = get_protocol(manifest["protocol"])
    occluded = [item for item in manifest["images"] if item["occluded"]]
    copies = {item["path"] for item in occluded if item["path"] != item["source_path"]}
    records = [r for r in read_dataset(root).records if r.image_path not in copies]
    items: dict[str, ImageItem] = {}
    for index, record in enumerate(records):
        items.setdefault(
            record.image_path, ImageItem(record.image_path, record.split, record.person_id, index)
        )
    ratio = manifest["ratio"] if manifest["ratio"] is not None else 0.0
    derived = protocol.select(list(items.values()), ratio, manifest["seed"])
    recorded = {item["source_path"] for item in occluded}
    if derived != recorded:
        first = sorted(derived ^ recorded)[0]
        state = "occluded" if first in recorded else "clean"
        raise GenerationError(
            f"{image_dir / first}: is {state} in the manifest, but the seed selects otherwise"
        )

    library_root = oil or (
        default_library_path() if manifest["library"]["default"] else manifest["library"]["root"]
    )
    library = OcclusionLibrary.load(library_root, verify=True)
    if library.fingerprint != manifest["library"]["fingerprint"]:
        raise GenerationError(
            f"{library.root}: library fingerprint differs from the manifest's; pass the library "
            "it was made with (--oil)"
        )
    from ogor.generate import image_seed

    sampled = _sample(occluded, sample)
    for item in sampled:
        file = image_dir / item["path"]
        with Image.open(file) as image:
            width, height = image.size
        rng = np.random.default_rng(
            image_seed(manifest["seed"], item["split"], item["source_path"])
        )
        placement = protocol.place(rng, (height, width), library).to_json()
        if placement != item["placement"]:
            raise GenerationError(
                f"{file}: placement in the manifest {item['placement']} differs from the one "
                f"re-derived from the seed {placement}"
            )

    recomposed = 0
    if source is not None:
        recomposed = _check_against_source(Path(source), manifest, library, sampled, image_dir)
    return VerifyReport(len(manifest["images"]), len(sampled), recomposed, True)


def _check_against_source(
    source: Path,
    manifest: dict[str, Any],
    library: Any,
    sampled: Sequence[dict[str, Any]],
    image_dir: Path,
) -> int:
    """Source annotation sha256, and sampled occluded images rebuilt from the source."""

    from ogor.compose import paste, rgba_to_premultiplied_bgra
    from ogor.generate import encode_image, read_image
    from ogor.io import sha256_bytes, sha256_file
    from ogor.placement import Placement

    annotation = source / manifest["source"]["annotation"]
    if not annotation.is_file():
        raise GenerationError(f"{annotation}: source annotation file missing")
    if sha256_file(annotation) != manifest["source"]["annotation_sha256"]:
        raise GenerationError(f"{annotation}: source annotation differs from the manifest (sha256)")
    source_images = source / manifest["source"]["image_dir"]
    for item in sampled:
        src = source_images / item["source_path"]
        image = read_image(src)
        placement = Placement.from_json(item["placement"])
        occluder = rgba_to_premultiplied_bgra(library.rgba(library.get(placement.instance_id)))
        paste(image, occluder, placement, manifest["feather"])
        data = encode_image(image, Path(item["path"]).suffix, manifest["quality"], src)
        if sha256_bytes(data) != item["sha256"]:
            raise GenerationError(
                f"{image_dir / item['path']}: rebuilt from {src}, bytes differ from the manifest"
            )
    return len(sampled)
