"""Small file primitives shared by every writer: hashing, atomic writes, strict JSON, stable seeds.

Everything that writes user-visible output goes through :func:`atomic_write_bytes` so that a file
is either absent or complete: a reader never sees half of it, even after SIGKILL.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from toreid.errors import ToreidError

_CHUNK = 1 << 20
# mkstemp creates files readable by their owner only; written files get the usual mode instead.
_UMASK = os.umask(0)
os.umask(_UMASK)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so large files do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    The rename is atomic on POSIX file systems, so ``path`` holds either its old content or
    all of ``data``; ``fsync`` makes the new content durable before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a failed write: name the file
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise


def dumps_json(obj: Any, *, indent: int | None = 2) -> str:
    """Serialise JSON deterministically: same object, same bytes (keys keep insertion order)."""
    return json.dumps(obj, indent=indent, ensure_ascii=False) + ("\n" if indent else "")


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> None:
    """Write ``obj`` as UTF-8 JSON atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, dumps_json(obj, indent=indent).encode("utf-8"))


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Read a JSON file, turning every failure into a one-line :class:`ToreidError`.

    Malformed JSON is reported with its line and column, because annotation files of these
    datasets are tens of megabytes on one line or many, and "invalid JSON" alone is useless.
    """
    path = Path(path)
    if not path.is_file():
        raise ToreidError(f"{path}: {what} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ToreidError(f"{path}: {what} is not UTF-8 text (byte {exc.start})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToreidError(
            f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc


def stable_seed(seed: int, key: str) -> int:
    """A 64-bit seed derived from (seed, key) that never depends on order, worker or platform.

    Python's ``hash`` is salted per process, so a cryptographic hash of the key is used instead.
    """
    digest = hashlib.sha256(f"{int(seed)}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


@contextlib.contextmanager
def build_lock(target: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``target`` (a file ``<target>.lock`` beside it) while a
    derived folder is built or checked, so that processes started together (the ranks of a
    ``torchrun`` job, two ``bench run`` s on one cache) never build it at once: the first
    builds, the others wait, then find it complete. The lock is the kernel's (``flock``), so a
    killed process releases it."""
    import fcntl

    lock = Path(f"{target}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
