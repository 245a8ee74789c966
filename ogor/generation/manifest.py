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
from collections import Counter, defaultdict
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from ogor.datasets.base import SPLITS
from ogor.errors import GenerationError, ToreidError
from toreid.io import atomic_write_bytes, read_json

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
