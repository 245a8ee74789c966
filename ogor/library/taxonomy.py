"""The 15 occluder classes of the MGCC paper, their position sets and their detector labels.

The table itself lives in ``oil_assets/taxonomy.json`` (a versioned data file), so changing a
label map is a data change that bumps the version, and the version enters every library
fingerprint: two libraries built under different taxonomies never look identical.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ogor.errors import LibraryError, ToreidError
from toreid.io import read_json

#: The three position sets of Table 1, in paper order.
POSITION_SETS: tuple[str, ...] = ("up", "middle", "bottom")

#: Corners used by the released MGCC code (top-left corner of the paste, in PIL x, y terms).
MGCC_CORNERS: tuple[str, ...] = (
    "left-bottom",
    "right-bottom",
    "top-left",
    "left-middle",
    "right-middle",
)


def default_taxonomy_path() -> Path:
    """The taxonomy data file shipped inside the ``oil_assets`` package."""
    import oil_assets

    return Path(oil_assets.__file__).resolve().parent / "taxonomy.json"


def normalize_label(label: str) -> str:
    """Lower-case a name and fold spaces, hyphens and underscores into one underscore.

    Detectors, file stems and people spell the same class as "fire hydrant", "Fire-Hydrant" or
    "fire_hydrant"; comparing normalised forms makes every one of them resolve.
    """
    return re.sub(r"[\s_\-]+", "_", label.strip().lower())


@dataclass(frozen=True)
class OcclusionClass:
    """One occluder class: where it is pasted and which detector labels produce it.

    Attributes:
        name: canonical snake-case name (``fire_hydrant``).
        display_name: the paper's spelling (``fire hydrant``).
        position_set: ``up``, ``middle`` or ``bottom`` (paper Table 1).
        coco: COCO 2017 category names that map to this class.
        lvis: LVIS v1 category names that map to this class.
        aliases: other names accepted by :meth:`Taxonomy.resolve` (file stems, plurals).
        mgcc_area: the released code's fixed area fraction for this class.
        mgcc_corner: the released code's fixed paste corner for this class.
        notes: why a label choice was made, where it needs a reason.
    """

    name: str
    display_name: str
    position_set: str
    coco: tuple[str, ...]
    lvis: tuple[str, ...]
    aliases: tuple[str, ...]
    mgcc_area: float
    mgcc_corner: str
    notes: str = ""


@dataclass(frozen=True)
class Taxonomy:
    """The versioned class table with name, alias and detector-label lookups."""

    version: int
    classes: dict[str, OcclusionClass]
    path: Path | None = None
    _names: dict[str, str] = field(init=False, repr=False, compare=False)
    _coco: dict[str, str] = field(init=False, repr=False, compare=False)
    _lvis: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names: dict[str, str] = {}
        coco: dict[str, str] = {}
        lvis: dict[str, str] = {}
        for cls in self.classes.values():
            for spelling in (cls.name, cls.display_name, *cls.aliases):
                key = normalize_label(spelling)
                if names.setdefault(key, cls.name) != cls.name:
                    raise LibraryError(
                        f"{self.path}: field 'aliases': '{spelling}' names both "
                        f"'{names[key]}' and '{cls.name}'"
                    )
            for table, labels, kind in ((coco, cls.coco, "coco"), (lvis, cls.lvis, "lvis")):
                for label in labels:
                    key = normalize_label(label)
                    if table.setdefault(key, cls.name) != cls.name:
                        raise LibraryError(
                            f"{self.path}: field '{kind}': label '{label}' maps to both "
                            f"'{table[key]}' and '{cls.name}'"
                        )
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_coco", coco)
        object.__setattr__(self, "_lvis", lvis)

    def __contains__(self, name: object) -> bool:
        return name in self.classes

    def names(self) -> list[str]:
        """Canonical class names in Table 1 order."""
        return list(self.classes)

    def resolve(self, name_or_alias: str) -> str:
        """The canonical class name for a name, display name or alias.

        Raises:
            LibraryError: the name is unknown; the message lists the valid names.
        """
        found = self._names.get(normalize_label(name_or_alias))
        if found is None:
            raise LibraryError(
                f"unknown occluder class '{name_or_alias}'; valid classes: "
                + ", ".join(self.classes)
            )
        return found

    def try_resolve(self, name_or_alias: str) -> str | None:
        """Like :meth:`resolve` but returns ``None`` for an unknown name."""
        return self._names.get(normalize_label(name_or_alias))

    def by_set(self, position_set: str) -> list[str]:
        """Class names of one position set, in Table 1 order.

        Raises:
            LibraryError: the set is not one of up, middle, bottom.
        """
        if position_set not in POSITION_SETS:
            raise LibraryError(
                f"unknown position set '{position_set}'; valid sets: " + ", ".join(POSITION_SETS)
            )
        return [c.name for c in self.classes.values() if c.position_set == position_set]

    def coco_to_class(self, label: str) -> str | None:
        """The class a COCO category name maps to, or ``None`` when it is not an occluder."""
        return self._coco.get(normalize_label(label))

    def lvis_to_class(self, label: str) -> str | None:
        """The class an LVIS v1 category name maps to, or ``None`` when it is not an occluder."""
        return self._lvis.get(normalize_label(label))

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view, used by ``ogor taxonomy --json``."""
        return {
            "version": self.version,
            "classes": [
                {
                    "name": c.name,
                    "display_name": c.display_name,
                    "set": c.position_set,
                    "coco": list(c.coco),
                    "lvis": list(c.lvis),
                    "aliases": list(c.aliases),
                    "mgcc_area": c.mgcc_area,
                    "mgcc_corner": c.mgcc_corner,
                    "notes": c.notes,
                }
                for c in self.classes.values()
            ],
        }


def _parse_class(path: Path, index: int, entry: Any) -> OcclusionClass:
    def fail(key: str, message: str) -> LibraryError:
        return LibraryError(f"{path}: classes[{index}] field '{key}': {message}")

    if not isinstance(entry, dict):
        raise fail("*", "must be an object")
    for key in ("name", "set", "mgcc_area", "mgcc_corner"):
        if key not in entry:
            raise fail(key, "missing")
    name = entry["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise fail("name", f"'{name}' is not a snake-case name")
    if entry["set"] not in POSITION_SETS:
        raise fail("set", f"'{entry['set']}' is not one of {', '.join(POSITION_SETS)}")
    if entry["mgcc_corner"] not in MGCC_CORNERS:
        corner = entry["mgcc_corner"]
        raise fail("mgcc_corner", f"'{corner}' is not one of {', '.join(MGCC_CORNERS)}")
    area = entry["mgcc_area"]
    if not isinstance(area, (int, float)) or not 0.0 < float(area) <= 1.0:
        raise fail("mgcc_area", f"{area!r} is not a fraction in (0, 1]")
    lists = {}
    for key in ("coco", "lvis", "aliases"):
        value = entry.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail(key, "must be a list of strings")
        lists[key] = tuple(value)
    return OcclusionClass(
        name=name,
        display_name=str(entry.get("display_name", name.replace("_", " "))),
        position_set=entry["set"],
        coco=lists["coco"],
        lvis=lists["lvis"],
        aliases=lists["aliases"],
        mgcc_area=float(area),
        mgcc_corner=entry["mgcc_corner"],
        notes=str(entry.get("notes", "")),
    )


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Read and check a taxonomy file (default: the one shipped in ``oil_assets``).

    The default is cached, because every library load and every detection asks for it.

    Raises:
        LibraryError: the file is missing, malformed, or a field is invalid (one line).
    """
    if path is None:
        return _default_taxonomy()
    return _load(Path(path))


@functools.lru_cache(maxsize=1)
def _default_taxonomy() -> Taxonomy:
    return _load(default_taxonomy_path())


def _load(path: Path) -> Taxonomy:
    try:
        data = read_json(path, "taxonomy file")
    except ToreidError as exc:
        raise LibraryError(str(exc)) from exc
    if not isinstance(data, dict):
        raise LibraryError(f"{path}: must be a JSON object")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise LibraryError(f"{path}: field 'version': must be a positive integer")
    entries = data.get("classes")
    if not isinstance(entries, list) or not entries:
        raise LibraryError(f"{path}: field 'classes': must be a non-empty list")
    classes: dict[str, OcclusionClass] = {}
    for index, entry in enumerate(entries):
        cls = _parse_class(path, index, entry)
        if cls.name in classes:
            raise LibraryError(f"{path}: classes[{index}] field 'name': duplicate '{cls.name}'")
        classes[cls.name] = cls
    return Taxonomy(version=version, classes=classes, path=path)
