"""The occlusion instance library (OIL): RGBA PNG occluders plus an ``index.json`` that lists them.

A library is a folder. ``index.json`` records, per instance, its class, position set, PNG file,
size, mask area, detector and score, source image and box, and the sha256 of the PNG bytes, so a
generated dataset can name exactly which library made it (:attr:`OcclusionLibrary.fingerprint`)
and a tampered or half-copied library is refused at load time rather than silently used.

The index is written last and atomically (:class:`LibraryWriter`), so a folder is either a
complete library or obviously not one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import tempfile
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ogor.errors import LibraryError, ToreidError
from ogor.io import atomic_write_bytes, dumps_json, read_json, sha256_bytes
from ogor.taxonomy import Taxonomy, load_taxonomy

INDEX_NAME = "index.json"
INDEX_FORMAT = "ogor-oil"
INDEX_VERSION = 1
SCHEMA_NAME = "oil-index.schema.json"

#: zlib level for every PNG this project writes; fixed so output bytes are reproducible.
PNG_COMPRESSION = 9


def default_library_path() -> Path:
    """The embedded, procedurally rendered default library inside ``oil_assets``."""
    import oil_assets

    return Path(oil_assets.__file__).resolve().parent / "default"


def index_schema() -> dict[str, Any]:
    """The JSON Schema of ``index.json`` (``manifests/oil-index.schema.json``)."""
    text = resources.files("manifests").joinpath(SCHEMA_NAME).read_text(encoding="utf-8")
    return json.loads(text)


# --------------------------------------------------------------------------------------------
# PNG encoding and decoding
# --------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _filtered_scanlines(rgba: np.ndarray) -> bytes:
    """PNG-filter every row, choosing per row the filter with the smallest absolute sum.

    All five filters depend only on the raw pixels, so they are computed for the whole image at
    once; the choice rule (the usual minimum-sum-of-absolute-differences heuristic, ties to the
    lowest filter number) is deterministic.
    """
    height, width, channels = rgba.shape
    raw = rgba.reshape(height, width * channels).astype(np.int16)
    left = np.zeros_like(raw)
    left[:, channels:] = raw[:, :-channels]
    up = np.zeros_like(raw)
    up[1:] = raw[:-1]
    up_left = np.zeros_like(raw)
    up_left[1:, channels:] = raw[:-1, :-channels]
    estimate = left + up - up_left
    dist_left = np.abs(estimate - left)
    dist_up = np.abs(estimate - up)
    dist_up_left = np.abs(estimate - up_left)
    paeth = np.where(
        (dist_left <= dist_up) & (dist_left <= dist_up_left),
        left,
        np.where(dist_up <= dist_up_left, up, up_left),
    )
    candidates = np.stack(
        [raw, raw - left, raw - up, raw - ((left + up) >> 1), raw - paeth]
    ).astype(np.uint8)  # wraps modulo 256, as PNG filters do
    signed = candidates.view(np.int8).astype(np.int32)
    cost = np.abs(signed).sum(axis=2)  # (5, height)
    choice = np.argmin(cost, axis=0)
    rows = candidates[choice, np.arange(height)]
    out = np.empty((height, width * channels + 1), dtype=np.uint8)
    out[:, 0] = choice
    out[:, 1:] = rows
    return out.tobytes()


def encode_png(rgba: np.ndarray) -> bytes:
    """Encode an H x W x 4 uint8 RGBA array as a PNG with no metadata chunks.

    A hand-written encoder (IHDR, one IDAT, IEND) is used instead of an image library so that
    the bytes depend only on the pixels and zlib: no timestamps, no encoder version strings, no
    change when OpenCV or Pillow is upgraded. That is what makes the default library regenerate
    byte-identically.
    """
    rgba = np.ascontiguousarray(rgba)
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"expected an H x W x 4 uint8 array, got {rgba.dtype} {rgba.shape}")
    height, width = rgba.shape[:2]
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    data = zlib.compress(_filtered_scanlines(rgba), PNG_COMPRESSION)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def decode_rgba(data: bytes, name: str | Path) -> np.ndarray:
    """Decode PNG bytes to H x W x 4 uint8 RGBA.

    OpenCV reads the common cases (RGBA, grey + alpha, 16-bit); palette and other modes with
    transparency go through Pillow. An image with no alpha channel is refused, because an
    occluder without a mask would paste its whole rectangle.

    Raises:
        LibraryError: the bytes are not a decodable image or carry no alpha channel.
    """
    import cv2

    array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise LibraryError(f"{name}: not a decodable PNG image")
    if array.ndim == 3 and array.shape[2] == 4:
        if array.dtype == np.uint16:
            array = (array >> 8).astype(np.uint8)
        return cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA)
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            if not has_alpha:
                raise LibraryError(
                    f"{name}: field 'alpha': the PNG has no alpha channel (mode {image.mode})"
                )
            return np.asarray(image.convert("RGBA"), dtype=np.uint8).copy()
    except OSError as exc:
        raise LibraryError(f"{name}: not a decodable PNG image ({exc})") from exc


# --------------------------------------------------------------------------------------------
# Instances and the library
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OcclusionInstance:
    """One occluder of a library, as recorded in ``index.json``.

    Attributes:
        id: unique within the library, e.g. ``umbrella-003``.
        class_name: canonical taxonomy class.
        position_set: ``up``, ``middle`` or ``bottom``; always the taxonomy's set of the class.
        file: PNG path relative to the library root.
        width: PNG width in pixels.
        height: PNG height in pixels.
        mask_area: number of pixels with alpha > 0.
        sha256: hex sha256 of the PNG bytes.
        detector: what produced the mask ("procedural", "coco-gt", "import", a model name).
        score: detector confidence, ``None`` where there is none.
        source: ``{"image": str, "box": [x, y, w, h]}`` where the instance was cut from.
    """

    id: str
    class_name: str
    position_set: str
    file: str
    width: int
    height: int
    mask_area: int
    sha256: str
    detector: str
    score: float | None = None
    source: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``index.json`` record of this instance."""
        return {
            "id": self.id,
            "class": self.class_name,
            "set": self.position_set,
            "file": self.file,
            "width": self.width,
            "height": self.height,
            "mask_area": self.mask_area,
            "sha256": self.sha256,
            "detector": self.detector,
            "score": self.score,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> OcclusionInstance:
        """Build from an ``index.json`` record already checked against the schema."""
        score = record["score"]
        return cls(
            id=record["id"],
            class_name=record["class"],
            position_set=record["set"],
            file=record["file"],
            width=int(record["width"]),
            height=int(record["height"]),
            mask_area=int(record["mask_area"]),
            sha256=record["sha256"],
            detector=record["detector"],
            score=None if score is None else float(score),
            source=record["source"],
        )


def library_fingerprint(pairs: list[tuple[str, str]], taxonomy_version: int) -> str:
    """sha256 hex over the taxonomy version and the sorted (id, sha256) pairs.

    The exact text hashed is ``"ogor-oil-fingerprint v1\\ntaxonomy <N>\\n"`` followed by one
    ``"<id> <sha256>\\n"`` line per instance in sorted order. It depends on content only, never on
    the folder's location, file order or timestamps, so a copied library keeps its fingerprint.
    """
    lines = [f"ogor-oil-fingerprint v1\ntaxonomy {int(taxonomy_version)}\n"]
    lines.extend(f"{instance_id} {digest}\n" for instance_id, digest in sorted(pairs))
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def _safe_member(root: Path, relative: str, index_file: Path, where: str) -> Path:
    """Resolve ``relative`` under ``root``, refusing absolute paths and ``..`` escapes."""
    if Path(relative).is_absolute() or "\\" in relative:
        raise LibraryError(f"{index_file}: {where} field 'file': '{relative}' is not relative")
    path = (root / relative).resolve()
    try:
        path.relative_to(root.resolve())
    except ValueError:
        raise LibraryError(
            f"{index_file}: {where} field 'file': '{relative}' escapes the library root"
        ) from None
    return path


class OcclusionLibrary:
    """A loaded, validated occlusion instance library.

    Attributes:
        root: the library folder.
        instances: every instance, in index order.
        fingerprint: see :func:`library_fingerprint`.
        taxonomy_version: the taxonomy version recorded in the index.
        taxonomy: the taxonomy the classes were checked against.
    """

    def __init__(
        self,
        root: Path,
        instances: tuple[OcclusionInstance, ...],
        taxonomy_version: int,
        taxonomy: Taxonomy,
    ) -> None:
        self.root = root
        self.instances = instances
        self.taxonomy_version = taxonomy_version
        self.taxonomy = taxonomy
        self.fingerprint = library_fingerprint(
            [(inst.id, inst.sha256) for inst in instances], taxonomy_version
        )
        self._by_id = {inst.id: inst for inst in instances}
        self._rgba: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.instances)

    def __repr__(self) -> str:
        return (
            f"OcclusionLibrary(root={str(self.root)!r}, instances={len(self.instances)}, "
            f"fingerprint={self.fingerprint[:12]}...)"
        )

    @classmethod
    def load(
        cls, root: str | Path, verify: bool = True, taxonomy: Taxonomy | None = None
    ) -> OcclusionLibrary:
        """Read and validate a library folder.

        Always checked: ``index.json`` exists, parses and matches the schema; ids are unique;
        classes are known and sets match the taxonomy; files stay inside the root and exist.
        With ``verify`` (the default) every PNG is also hashed against its recorded sha256 and
        decoded to check that it has a non-empty alpha channel and the recorded size.

        Raises:
            LibraryError: one line naming the file and the field at fault.
        """
        import jsonschema

        root = Path(root)
        taxonomy = taxonomy or load_taxonomy()
        index_file = root / INDEX_NAME
        if not root.is_dir():
            raise LibraryError(f"{root}: occlusion library folder not found")
        if not index_file.is_file():
            raise LibraryError(f"{index_file}: missing; '{root}' is not an occlusion library")
        try:
            data = read_json(index_file, "library index")
        except ToreidError as exc:
            raise LibraryError(str(exc)) from exc
        validator = jsonschema.Draft202012Validator(index_schema())
        error = jsonschema.exceptions.best_match(validator.iter_errors(data))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
            raise LibraryError(f"{index_file}: field '{where}': {message}")

        instances: list[OcclusionInstance] = []
        seen: set[str] = set()
        for position, record in enumerate(data["instances"]):
            where = f"instances[{position}]"
            inst = OcclusionInstance.from_json(record)
            if inst.id in seen:
                raise LibraryError(f"{index_file}: {where} field 'id': duplicate id '{inst.id}'")
            seen.add(inst.id)
            if inst.class_name not in taxonomy.classes:
                raise LibraryError(
                    f"{index_file}: {where} field 'class': unknown class '{inst.class_name}'; "
                    "valid classes: " + ", ".join(taxonomy.classes)
                )
            expected_set = taxonomy.classes[inst.class_name].position_set
            if inst.position_set != expected_set:
                raise LibraryError(
                    f"{index_file}: {where} field 'set': '{inst.position_set}' but the taxonomy "
                    f"puts '{inst.class_name}' in '{expected_set}'"
                )
            path = _safe_member(root, inst.file, index_file, where)
            if not path.is_file():
                raise LibraryError(f"{path}: missing PNG listed in {index_file} {where}")
            if verify:
                _verify_png(path, inst)
            instances.append(inst)
        return cls(root, tuple(instances), int(data["taxonomy_version"]), taxonomy)

    def get(self, instance_id: str) -> OcclusionInstance:
        """The instance with this id.

        Raises:
            LibraryError: no such id.
        """
        try:
            return self._by_id[instance_id]
        except KeyError:
            raise LibraryError(f"{self.root}: no instance with id '{instance_id}'") from None

    def path(self, instance: OcclusionInstance) -> Path:
        """Absolute path of an instance's PNG."""
        return self.root / instance.file

    def rgba(self, instance: OcclusionInstance) -> np.ndarray:
        """The instance as H x W x 4 uint8 RGBA (read once, then cached; treat as read-only)."""
        cached = self._rgba.get(instance.id)
        if cached is None:
            path = self.path(instance)
            cached = decode_rgba(path.read_bytes(), path)
            cached.setflags(write=False)
            self._rgba[instance.id] = cached
        return cached

    def select(
        self, position_set: str | None = None, class_name: str | None = None
    ) -> list[OcclusionInstance]:
        """Instances of a set and/or class, in index order (class names may be aliases)."""
        if class_name is not None:
            class_name = self.taxonomy.resolve(class_name)
        if position_set is not None:
            self.taxonomy.by_set(position_set)  # validates the set name
        return [
            inst
            for inst in self.instances
            if (position_set is None or inst.position_set == position_set)
            and (class_name is None or inst.class_name == class_name)
        ]

    def sample(
        self,
        rng: np.random.Generator,
        position_set: str | None = None,
        class_name: str | None = None,
    ) -> OcclusionInstance:
        """Draw one instance uniformly among those matching, using exactly one ``rng`` draw.

        Raises:
            LibraryError: nothing in the library matches.
        """
        matching = self.select(position_set, class_name)
        if not matching:
            wanted = ", ".join(
                f"{k}={v}" for k, v in (("set", position_set), ("class", class_name)) if v
            )
            raise LibraryError(f"{self.root}: no instance matches {wanted}")
        return matching[int(rng.integers(len(matching)))]

    def by_class(self) -> dict[str, list[OcclusionInstance]]:
        """Instances grouped by class, classes in taxonomy order, only classes present."""
        groups: dict[str, list[OcclusionInstance]] = {}
        for name in self.taxonomy.classes:
            members = [inst for inst in self.instances if inst.class_name == name]
            if members:
                groups[name] = members
        return groups


def _verify_png(path: Path, inst: OcclusionInstance) -> None:
    data = path.read_bytes()
    digest = sha256_bytes(data)
    if digest != inst.sha256:
        raise LibraryError(
            f"{path}: field 'sha256': file hash {digest[:12]}... does not match the index "
            f"({inst.sha256[:12]}...); the file was changed or damaged"
        )
    rgba = decode_rgba(data, path)
    height, width = rgba.shape[:2]
    if (width, height) != (inst.width, inst.height):
        raise LibraryError(
            f"{path}: field 'width/height': PNG is {width}x{height}, "
            f"index says {inst.width}x{inst.height}"
        )
    area = int(np.count_nonzero(rgba[:, :, 3]))
    if area == 0:
        raise LibraryError(f"{path}: field 'alpha': the alpha channel is all zero")
    if area != inst.mask_area:
        raise LibraryError(
            f"{path}: field 'mask_area': PNG has {area} pixels with alpha > 0, "
            f"index says {inst.mask_area}"
        )


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def check_rgba(rgba: np.ndarray, what: str) -> np.ndarray:
    """Check an occluder array: H x W x 4 uint8 with at least one pixel of alpha > 0.

    Raises:
        LibraryError: wrong shape or type, or an empty alpha channel.
    """
    if not isinstance(rgba, np.ndarray) or rgba.ndim != 3 or rgba.shape[2] != 4:
        shape = getattr(rgba, "shape", None)
        raise LibraryError(f"{what}: expected an H x W x 4 RGBA array, got shape {shape}")
    if rgba.dtype != np.uint8:
        raise LibraryError(f"{what}: expected uint8 RGBA, got {rgba.dtype}")
    if rgba.shape[0] == 0 or rgba.shape[1] == 0 or not np.any(rgba[:, :, 3]):
        raise LibraryError(f"{what}: field 'alpha': the occluder mask is empty")
    return rgba


class LibraryWriter:
    """Builds a library folder aside and moves it into place only when it is complete.

    PNGs and ``index.json`` are written into a hidden temporary sibling of ``out_dir``;
    :meth:`close` writes ``index.json`` last and renames the folder to ``out_dir``. If anything
    fails (or the ``with`` block raises), the temporary folder is removed and ``out_dir`` is
    left as it was, so a crash never leaves something that looks like a library.

    Example:
        >>> with LibraryWriter("my_oil") as writer:
        ...     writer.add("umbrella", rgba, detector="import")

    Args:
        out_dir: the library folder to create.
        overwrite: replace an existing library (or an empty folder) at ``out_dir``. A non-empty
            folder that is not a library is never replaced.
        taxonomy: the taxonomy to check classes against (default: the shipped one).
        description: optional free text stored in ``index.json``.
    """

    def __init__(
        self,
        out_dir: str | Path,
        overwrite: bool = False,
        *,
        taxonomy: Taxonomy | None = None,
        description: str | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.overwrite = overwrite
        self.taxonomy = taxonomy or load_taxonomy()
        self.description = description
        check_output_folder(self.out_dir, overwrite)
        self._created = make_parents(self.out_dir.parent)
        self._staging = Path(
            tempfile.mkdtemp(
                prefix=f".{self.out_dir.name}.", suffix=".partial", dir=self.out_dir.parent
            )
        )
        self._instances: list[OcclusionInstance] = []
        self._counts: dict[str, int] = {}
        self._closed = False

    @property
    def instances(self) -> tuple[OcclusionInstance, ...]:
        """Instances added so far."""
        return tuple(self._instances)

    def add(
        self,
        class_name: str,
        rgba: np.ndarray,
        *,
        detector: str,
        score: float | None = None,
        source: dict[str, Any] | None = None,
    ) -> OcclusionInstance:
        """Write one occluder PNG (atomically) and record it; ids count per class from 001.

        Args:
            class_name: a taxonomy class name or alias.
            rgba: H x W x 4 uint8 RGBA, alpha not all zero.
            detector: what produced it ("procedural", "import", "coco-gt", a model name).
            score: detector confidence in [0, 1], if any.
            source: ``{"image": str, "box": [x, y, w, h]}``, if any.

        Raises:
            LibraryError: unknown class, bad array or empty mask.
        """
        if self._closed:
            raise RuntimeError("LibraryWriter.add after close")
        name = self.taxonomy.resolve(class_name)
        rgba = check_rgba(rgba, f"{self.out_dir}: new '{name}' instance")
        if score is not None and not 0.0 <= float(score) <= 1.0:
            raise LibraryError(f"{self.out_dir}: new '{name}' instance field 'score': {score}")
        if source is not None:
            source = {**source, "box": [_plain_number(v) for v in source["box"]]}
            source["image"] = str(source["image"])
        count = self._counts.get(name, 0) + 1
        self._counts[name] = count
        instance_id = f"{name}-{count:03d}"
        data = encode_png(rgba)
        file = f"{instance_id}.png"
        atomic_write_bytes(self._staging / file, data)
        instance = OcclusionInstance(
            id=instance_id,
            class_name=name,
            position_set=self.taxonomy.classes[name].position_set,
            file=file,
            width=int(rgba.shape[1]),
            height=int(rgba.shape[0]),
            mask_area=int(np.count_nonzero(rgba[:, :, 3])),
            sha256=sha256_bytes(data),
            detector=detector,
            score=None if score is None else float(score),
            source=source,
        )
        self._instances.append(instance)
        return instance

    def close(self) -> Path:
        """Write ``index.json`` last, then move the finished library to ``out_dir``.

        Raises:
            LibraryError: no instance was added (an empty library is refused), or ``out_dir``
                appeared meanwhile and may not be replaced.
        """
        if self._closed:
            return self.out_dir
        try:
            if not self._instances:
                raise LibraryError(f"{self.out_dir}: no occluder instances to write")
            index: dict[str, Any] = {
                "format": INDEX_FORMAT,
                "version": INDEX_VERSION,
                "taxonomy_version": self.taxonomy.version,
            }
            if self.description:
                index["description"] = self.description
            index["instances"] = [inst.to_json() for inst in self._instances]
            atomic_write_bytes(self._staging / INDEX_NAME, dumps_json(index).encode("utf-8"))
            _move_into_place(self._staging, self.out_dir, self.overwrite)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return self.out_dir

    def abort(self) -> None:
        """Remove everything written so far; ``out_dir`` is untouched."""
        self._closed = True
        shutil.rmtree(self._staging, ignore_errors=True)
        remove_empty(self._created)

    def __enter__(self) -> LibraryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing ancestors; return those created, outermost first."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing[::-1]


def remove_empty(created: list[Path]) -> None:
    """Undo :func:`make_parents` as far as the folders are still empty (innermost first)."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            return


def _plain_number(value: Any) -> int | float:
    number = float(value)
    return int(number) if number.is_integer() else number


def check_output_folder(out_dir: Path, overwrite: bool) -> None:
    """Refuse an output folder that exists, unless ``overwrite`` and it is a library or empty.

    Raises:
        LibraryError: the folder exists and may not be replaced.
    """
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise LibraryError(f"{out_dir}: exists and is not a folder")
    empty = not any(out_dir.iterdir())
    if not overwrite:
        if empty:
            return
        raise LibraryError(f"{out_dir}: already exists; pass --overwrite to replace it")
    if not empty and not (out_dir / INDEX_NAME).is_file():
        raise LibraryError(
            f"{out_dir}: exists and is not an occlusion library; refusing to replace it"
        )


def _move_into_place(staging: Path, out_dir: Path, overwrite: bool) -> None:
    """Rename the finished staging folder to ``out_dir``, replacing an old library if allowed."""
    check_output_folder(out_dir, overwrite)
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
        os.replace(out_dir, old / "lib")
        try:
            os.replace(staging, out_dir)
        except BaseException:
            os.replace(old / "lib", out_dir)
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out_dir)
