"""The occlusion instance library (OIL): RGBA PNG occluders plus an ``index.json`` that lists them.

A library is a folder. ``index.json`` records, per instance, its class, position set, PNG file,
size, mask area, detector and score, source image and box, and the sha256 of the PNG bytes, so a
generated dataset can name exactly which library made it (:attr:`OcclusionLibrary.fingerprint`)
and a tampered or half-copied library is refused at load time rather than silently used.

The index is written last and atomically (:class:`ogor.library.writer.LibraryWriter`), so a
folder is either a complete library or obviously not one. This module reads libraries; the
writer and the PNG codec are its neighbours.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ogor.errors import LibraryError, ToreidError
from ogor.library.png import decode_rgba
from ogor.library.taxonomy import Taxonomy, load_taxonomy
from toreid.io import read_json, sha256_bytes

INDEX_NAME = "index.json"
INDEX_FORMAT = "ogor-oil"
INDEX_VERSION = 1
SCHEMA_NAME = "oil-index.schema.json"


def default_library_path() -> Path:
    """The embedded, procedurally rendered default library inside ``oil_assets``."""
    import oil_assets

    return Path(oil_assets.__file__).resolve().parent / "default"


def index_schema() -> dict[str, Any]:
    """The JSON Schema of ``index.json`` (``manifests/oil-index.schema.json``)."""
    text = resources.files("manifests").joinpath(SCHEMA_NAME).read_text(encoding="utf-8")
    return json.loads(text)


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
