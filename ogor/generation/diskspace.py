"""A full disk loses nothing: ``ogor generate`` checks the space first and stops cleanly.

Before the first image, :func:`check_free_space` estimates what the output needs from the
source (:func:`estimate_output_bytes`) and refuses to start when the file system holding the
output clearly has less free space, saying how much is needed (``--no-space-check``
overrides). The estimate is deliberately a lower bound, so the refusal never stops a run
that would fit; a run the estimate lets through and that still fills the disk is stopped
cleanly by :func:`stops_cleanly_on_full_disk`:

* every image the journal lists stays where it is, so ``--resume`` continues from there once
  space is freed and finishes with the same bytes as an uninterrupted run;
* files the journal does not list (the half-written images of the moment) are deleted, so the
  partial folder holds nothing misleading and gives back what it can;
* the user sees one line: the path that failed, how many images are done, how much more space
  the rest needs, and the ``--resume`` command.

Nothing is ever written or deleted in the source dataset.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ogor.errors import GenerationError

#: errnos that mean "the disk (or the quota, or the file size limit) is full".
FULL_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: An occluded image is re-encoded: usually about its source's size (larger when the source
#: was saved at a lower JPEG quality, smaller when the occluder is smooth). Half of it keeps
#: the estimate a lower bound, so that only a clearly short disk is refused.
_REENCODED_FRACTION = 0.5
#: Bytes of manifest and journal per image (a record is ~300-400 bytes, written twice).
_RECORD_BYTES = 400

F = TypeVar("F", bound=Callable[..., Any])


class DiskFullError(GenerationError):
    """Generation stopped on a full disk; what is finished is kept for ``--resume``."""


def human_bytes(size: float) -> str:
    """``1536`` -> ``1.5 KiB``: sizes as people read them."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - the loop always returns


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: str | Path) -> int:
    """Free bytes for an unprivileged writer on the file system that holds (or will hold)
    ``path``."""
    return shutil.disk_usage(_existing_ancestor(Path(path))).free


def same_file_system(a: str | Path, b: str | Path) -> bool:
    """Whether hard links between ``a`` and ``b`` are possible (one device)."""
    device_a = os.stat(_existing_ancestor(Path(a))).st_dev
    return device_a == os.stat(_existing_ancestor(Path(b))).st_dev


def estimate_output_bytes(tasks: Sequence[Any], source_images: str | Path, out: str | Path) -> int:
    """A lower bound of the bytes the output needs, from the source files' sizes.

    An occluded image costs half its source's size (:data:`_REENCODED_FRACTION`), a clean
    image nothing when it can be hard-linked (same file system) and its size when it must be
    copied, every image a manifest and journal record. ``tasks`` are the images still to make
    (each with ``occlude`` and ``source_path``).
    """
    source_images = Path(source_images)
    links = same_file_system(source_images, out)
    total = 0
    for task in tasks:
        try:
            size = os.stat(source_images / task.source_path).st_size
        except OSError:
            size = 0  # a missing source image is reported by the generation itself
        if task.occlude:
            total += int(size * _REENCODED_FRACTION)
        elif not links:
            total += size
        total += _RECORD_BYTES
    return total


def journaled_paths(journal: Path) -> set[str]:
    """The output paths a journal vouches for (a torn last line is ignored)."""
    done: set[str] = set()
    if not journal.is_file():
        return done
    with open(journal, encoding="utf-8") as handle:
        for line in handle:
            try:
                done.add(json.loads(line)["path"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return done


def check_free_space(tasks: Sequence[Any], source_images: str | Path, partial: Path,
                     journal_name: str, enabled: bool = True) -> int:
    """Refuse to start when the output's file system clearly lacks the space the rest needs.

    Images a resumed run's journal already lists are not counted. Returns the estimate.

    Raises:
        GenerationError: one line: where, how much is needed, how much is free, the override.
    """
    if not enabled:
        return 0
    done = journaled_paths(partial / journal_name)
    todo = [t for t in tasks if t.path not in done]
    needed = estimate_output_bytes(todo, source_images, partial)
    free = free_bytes(partial)
    if free < needed:
        raise GenerationError(
            f"{_existing_ancestor(partial)}: not enough free space: the output needs at least "
            f"{human_bytes(needed)} for {len(todo)} images, {human_bytes(free)} is free (free "
            "some space, choose another --out, or pass --no-space-check)")
    return needed


def _remove_unjournaled(partial: Path, image_dir: str, done: set[str]) -> None:
    images = partial / image_dir
    for folder, _dirs, files in os.walk(images):
        for name in files:
            relative = os.path.relpath(os.path.join(folder, name), images).replace(os.sep, "/")
            if relative not in done:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))
    for entry in partial.iterdir():  # temporary files of atomic writes
        if entry.is_file() and entry.name.startswith(".") and entry.name.endswith(".tmp"):
            entry.unlink(missing_ok=True)


class FullDiskGuard:
    """What :func:`stops_cleanly_on_full_disk` reports: ``total`` images, once known."""

    def __init__(self) -> None:
        self.total: int | None = None


@contextlib.contextmanager
def stops_cleanly_on_full_disk(partial: Path, image_dir: str, journal_name: str, job_name: str,
                               ) -> Iterator[FullDiskGuard]:
    """Turn a full disk inside the block into :class:`DiskFullError`, keeping the journal's work.

    Enter it before the worker pool (an ``ExitStack`` exits in reverse), so the workers are
    stopped before the unjournaled files are removed. A partial folder whose job file could
    not even be written holds nothing and is removed, so the next run starts afresh.
    """
    guard = FullDiskGuard()
    try:
        yield guard
    except OSError as exc:
        if exc.errno not in FULL_DISK_ERRNOS or not partial.is_dir():
            raise
        reason = exc.strerror or "no space left on device"
        where = exc.filename or partial
        if not (partial / job_name).is_file():
            shutil.rmtree(partial, ignore_errors=True)
            raise DiskFullError(f"{where}: {reason}: nothing was generated (free some space "
                                "and run the command again)") from exc
        done = journaled_paths(partial / journal_name)
        _remove_unjournaled(partial, image_dir, done)
        of = f" of {guard.total}" if guard.total is not None else ""
        raise DiskFullError(
            f"{where}: {reason}: stopped cleanly with {len(done)}{of} images finished and kept "
            f"in {partial}; free some space and rerun the same command with --resume") from exc


def names_output_on_os_error(method: F) -> F:
    """Decorate ``_Worker.run(self, task)``: an :class:`OSError` without a path (a failed
    ``write`` or ``close``, e.g. on a full disk) gets the output image's path, so the one-line
    error says which file could not be written."""

    @functools.wraps(method)
    def run(self: Any, task: Any) -> Any:
        try:
            return method(self, task)
        except OSError as exc:
            if exc.filename is not None:
                raise
            target = os.path.join(self.out_images, task.path)
            raise OSError(exc.errno, exc.strerror or str(exc), target) from exc

    return run  # type: ignore[return-value]
