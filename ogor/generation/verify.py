"""``ogor verify``: check a generated dataset against its manifest, re-deriving from the seed.

A dataset can be shared as its manifest alone, so the check is the receipt's other half: the
bytes, the occluded set and the placements must all follow from the seed, the source and the
library the manifest names.

Bytes or pixels: an image's bytes depend on the encoder build (OpenCV's libjpeg / libpng), so a
dataset rebuilt on another machine can differ from the manifest's sha256 with every pixel the
same. With the source at hand, an image whose bytes differ is rebuilt here and both are decoded:
"same pixels, different encoder bytes" (the OpenCV / NumPy versions of the manifest and of here
are named) is told apart from "different pixels" (the first such image and the largest
difference). Bytes are strict by default, because the manifest is a byte receipt; ``pixels=True``
(``ogor verify --pixels``) accepts encoder differences and fails only on different pixels.
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
    #: Images (as in the manifest) with the manifest's pixels but other bytes (``pixels`` mode).
    encoder_differences: tuple[str, ...] = ()
    #: "OpenCV 5.1.0 here, 5.0.0 in the manifest; ..." when ``encoder_differences`` is not empty.
    versions: str = ""


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
    pixels: bool = False,
) -> VerifyReport:
    """Check a generated dataset against its manifest; raise at the first mismatch.

    In order: the manifest (schema), the annotation file's sha256, every image's sha256, no file
    the manifest does not list, the set of occluded images re-derived from the seed, and the
    placements of ``sample`` occluded images re-derived from the seed and the library. With
    ``source``, also the source annotation's sha256 and the sampled images rebuilt from the
    source byte for byte.

    An image whose bytes differ (from the manifest, or a rebuild here from the manifest) is, with
    ``source``, rebuilt here and compared decoded: different pixels always fail; the same pixels
    with other encoder bytes fail unless ``pixels`` is set, and are then listed in the report.

    Raises:
        GenerationError: one line naming the first mismatch (for pixels: the first image and the
            largest difference; for encoder bytes: the library versions of both sides).
    """
    root = Path(root)
    check_finished(root)
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise GenerationError(f"{manifest_path}: missing; {root} was not made by 'ogor generate'")
    manifest = read_manifest(manifest_path)
    image_dir = root / manifest["source"]["image_dir"]
    changed = _check_files(root, manifest, image_dir)
    if changed and source is None:
        more = f" ({len(changed)} images in all)" if len(changed) > 1 else ""
        raise GenerationError(
            f"{image_dir / changed[0]['path']}: image differs from the manifest (sha256){more}; "
            "pass --source to tell encoder bytes from changed pixels"
        )
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
    if source is None:
        return VerifyReport(len(manifest["images"]), len(sampled), recomposed, True)
    source = Path(source)
    _check_source_annotation(source, manifest)
    rebuilt_unlike = _check_against_source(source, manifest, library, sampled, image_dir)
    recomposed = len(sampled)
    files = {item["path"]: item for item in [*changed, *rebuilt_unlike]}
    same_pixels = _compare_pixels(source, manifest, library, list(files.values()), image_dir)
    if same_pixels and not pixels:
        more = f" ({len(same_pixels)} images in all)" if len(same_pixels) > 1 else ""
        raise GenerationError(
            f"{image_dir / same_pixels[0]}: same pixels, different encoder bytes than the "
            f"manifest{more} ({library_versions(manifest)}); pass --pixels to accept that"
        )
    versions = library_versions(manifest) if same_pixels else ""
    return VerifyReport(
        len(manifest["images"]), len(sampled), recomposed, True, tuple(same_pixels), versions
    )


def library_versions(manifest: dict[str, Any]) -> str:
    """The encoder libraries' versions here and in the manifest, in words."""
    import cv2

    tool = manifest["tool"]
    return (
        f"OpenCV {cv2.__version__} here, {tool['opencv']} in the manifest; "
        f"NumPy {np.__version__} here, {tool['numpy']} in the manifest"
    )


def _check_files(
    root: Path, manifest: dict[str, Any], image_dir: Path
) -> list[dict[str, Any]]:
    """The annotation's sha256, every image present, and no file the manifest does not list.

    Returns:
        the image records whose file's sha256 differs from the manifest's, in manifest order
        (whether their pixels differ is for :func:`_compare_pixels` to say).
    """
    annotation = root / manifest["annotation"]["path"]  # a file, or TextReID's folder
    if not annotation.exists():
        raise GenerationError(f"{annotation}: annotation file missing")
    if annotation_sha256(annotation) != manifest["annotation"]["sha256"]:
        raise GenerationError(f"{annotation}: annotation file differs from the manifest (sha256)")

    listed = {MANIFEST_NAME, manifest["annotation"]["path"]}
    listed |= {f.relative_to(root).as_posix() for f in annotation_members(annotation)}
    changed = []
    for item in manifest["images"]:
        file = image_dir / item["path"]
        if not file.is_file():
            raise GenerationError(f"{file}: image listed in the manifest is missing")
        if sha256_file(file) != item["sha256"]:
            changed.append(item)
        listed.add(f"{manifest['source']['image_dir']}/{item['path']}")
    for folder, _dirs, files in os.walk(root):
        for name in sorted(files):
            relative = Path(folder, name).relative_to(root).as_posix()
            if relative not in listed:
                raise GenerationError(f"{root / relative}: file not listed in the manifest")
    return changed


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


def _check_source_annotation(source: Path, manifest: dict[str, Any]) -> None:
    """The source annotation file is the one the manifest was made from (sha256)."""
    annotation = source / manifest["source"]["annotation"]  # a file, or TextReID's folder
    if not annotation.exists():
        raise GenerationError(f"{annotation}: source annotation file missing")
    if annotation_sha256(annotation) != manifest["source"]["annotation_sha256"]:
        raise GenerationError(f"{annotation}: source annotation differs from the manifest (sha256)")


def _rebuild(source: Path, manifest: dict[str, Any], library: Any, item: dict[str, Any]) -> bytes:
    """One image's bytes as ``ogor generate`` would write them here: a clean image is the
    source file itself, an occluded one is composed from the source and encoded."""
    src = source / manifest["source"]["image_dir"] / item["source_path"]
    if not item["occluded"]:
        try:
            return src.read_bytes()
        except OSError:
            raise GenerationError(f"{src}: source image not found") from None
    image = read_image(src)
    placement = Placement.from_json(item["placement"])
    occluder = rgba_to_premultiplied_bgra(library.rgba(library.get(placement.instance_id)))
    paste(image, occluder, placement, manifest["feather"])
    return encode_image(image, Path(item["path"]).suffix, manifest["quality"], src)


def _check_against_source(
    source: Path,
    manifest: dict[str, Any],
    library: Any,
    sampled: Sequence[dict[str, Any]],
    image_dir: Path,
) -> list[dict[str, Any]]:
    """Sampled occluded images rebuilt from the source, against the manifest's sha256.

    Returns:
        the sampled records whose rebuild here has other bytes than the manifest's (for
        :func:`_compare_pixels`: this machine's encoder, or different pixels).
    """
    return [item for item in sampled
            if sha256_bytes(_rebuild(source, manifest, library, item)) != item["sha256"]]


def _decode(data: bytes, name: Path) -> np.ndarray:
    import cv2

    flags = cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if image is None:
        raise GenerationError(f"{name}: not a decodable image")
    return image


def _compare_pixels(
    source: Path,
    manifest: dict[str, Any],
    library: Any,
    items: Sequence[dict[str, Any]],
    image_dir: Path,
) -> list[str]:
    """Decode each image of ``items`` and its rebuild here from the source; compare the pixels.

    Returns:
        the paths (as in the manifest) of the images whose pixels are the same.

    Raises:
        GenerationError: some pixels differ: the first such image and the largest difference.
    """
    same: list[str] = []
    unlike: list[tuple[Path, str]] = []
    largest = -1
    for item in items:
        file = image_dir / item["path"]
        found = _decode(file.read_bytes(), file)
        rebuilt = _decode(_rebuild(source, manifest, library, item), file)
        if found.shape != rebuilt.shape:
            unlike.append((file, f"size {found.shape} here, {rebuilt.shape} rebuilt"))
            continue
        difference = int(np.abs(found.astype(np.int32) - rebuilt.astype(np.int32)).max())
        if difference == 0:
            same.append(item["path"])
        else:
            unlike.append((file, f"largest pixel difference {difference}"))
            largest = max(largest, difference)
    if unlike:
        file, what = unlike[0]
        more = f"; {len(unlike)} images in all" if len(unlike) > 1 else ""
        more += f", largest difference {largest}" if len(unlike) > 1 and largest >= 0 else ""
        raise GenerationError(
            f"{file}: different pixels from the image rebuilt from the source ({what}{more}; "
            f"{library_versions(manifest)})"
        )
    return same
