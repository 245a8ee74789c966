"""Writing an occlusion instance library: build it aside, write ``index.json`` last, rename.

Shared by the three ways a library is made (``extract-oil``, ``import-oil`` and the procedural
``render-default-oil``), so that each leaves either a complete library or nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ogor.errors import LibraryError
from ogor.library.oil import (
    INDEX_FORMAT,
    INDEX_NAME,
    INDEX_VERSION,
    OcclusionInstance,
)
from ogor.library.png import encode_png
from ogor.library.taxonomy import Taxonomy, load_taxonomy
from toreid.io import atomic_write_bytes, dumps_json, sha256_bytes


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
