"""``ogor verify``: check a generated dataset against its manifest, re-deriving from the seed.

A dataset can be shared as its manifest alone, so the check is the receipt's other half: the
bytes, the occluded set and the placements must all follow from the seed, the source and the
library the manifest names.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ogor.datasets import annotation_members, annotation_sha256, read_dataset
from ogor.errors import GenerationError
from ogor.generation.manifest import MANIFEST_NAME, check_finished, read_manifest
from ogor.imageio import encode_image, image_seed, image_size, read_image
from ogor.library import OcclusionLibrary, default_library_path
from ogor.occlude.compose import paste, rgba_to_premultiplied_bgra
from ogor.occlude.placement import Placement
from ogor.occlude.protocols import get_protocol
from ogor.occlude.selection import ImageItem
from toreid.io import sha256_bytes, sha256_file


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


def sample_evenly(items: Sequence[dict[str, Any]], n: int) -> list[dict[str, Any]]:
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
    root = Path(root)
    check_finished(root)
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise GenerationError(f"{manifest_path}: missing; {root} was not made by 'ogor generate'")
    manifest = read_manifest(manifest_path)
    image_dir = root / manifest["source"]["image_dir"]
    _check_files(root, manifest, image_dir)
    protocol = get_protocol(manifest["protocol"])
    occluded = [item for item in manifest["images"] if item["occluded"]]
    _check_selection(root, manifest, protocol, occluded, image_dir)

    library_root = oil or (
        default_library_path() if manifest["library"]["default"] else manifest["library"]["root"]
    )
    library = OcclusionLibrary.load(library_root, verify=True)
    if library.fingerprint != manifest["library"]["fingerprint"]:
        raise GenerationError(
            f"{library.root}: library fingerprint differs from the manifest's; pass the library "
            "it was made with (--oil)"
        )
    sampled = sample_evenly(occluded, sample)
    _check_placements(manifest, protocol, library, sampled, image_dir)
    recomposed = 0
    if source is not None:
        recomposed = _check_against_source(Path(source), manifest, library, sampled, image_dir)
    return VerifyReport(len(manifest["images"]), len(sampled), recomposed, True)


def _check_files(root: Path, manifest: dict[str, Any], image_dir: Path) -> None:
    """The annotation's and every image's sha256, and no file the manifest does not list."""
    annotation = root / manifest["annotation"]["path"]  # a file, or TextReID's folder
    if not annotation.exists():
        raise GenerationError(f"{annotation}: annotation file missing")
    if annotation_sha256(annotation) != manifest["annotation"]["sha256"]:
        raise GenerationError(f"{annotation}: annotation file differs from the manifest (sha256)")

    listed = {MANIFEST_NAME, manifest["annotation"]["path"]}
    listed |= {f.relative_to(root).as_posix() for f in annotation_members(annotation)}
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


def _check_selection(
    root: Path,
    manifest: dict[str, Any],
    protocol: Any,
    occluded: Sequence[dict[str, Any]],
    image_dir: Path,
) -> None:
    """The set of occluded images, re-derived from the seed over the dataset's own records."""
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


def _check_placements(
    manifest: dict[str, Any],
    protocol: Any,
    library: Any,
    sampled: Sequence[dict[str, Any]],
    image_dir: Path,
) -> None:
    """The sampled images' placements, re-derived from the seed and the library."""
    for item in sampled:
        file = image_dir / item["path"]
        rng = np.random.default_rng(
            image_seed(manifest["seed"], item["split"], item["source_path"])
        )
        placement = protocol.place(rng, image_size(file), library).to_json()
        if placement != item["placement"]:
            raise GenerationError(
                f"{file}: placement in the manifest {item['placement']} differs from the one "
                f"re-derived from the seed {placement}"
            )


def _check_against_source(
    source: Path,
    manifest: dict[str, Any],
    library: Any,
    sampled: Sequence[dict[str, Any]],
    image_dir: Path,
) -> int:
    """Source annotation sha256, and sampled occluded images rebuilt from the source."""
    annotation = source / manifest["source"]["annotation"]
    if not annotation.exists():
        raise GenerationError(f"{annotation}: source annotation file missing")
    if annotation_sha256(annotation) != manifest["source"]["annotation_sha256"]:
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
