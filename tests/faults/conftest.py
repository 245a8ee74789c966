"""Fault injection with real files and real processes: shared helpers and fixtures.

A full disk is a real size-limited file system where the test can make one (a tmpfs mounted
with ``mount -t tmpfs -o size=...``, which needs root; ``remount`` with a larger size is how a
test "frees space"). Where mounting is not allowed (CI containers), the tests that need it
fall back to an injected ``ENOSPC`` from the write primitive, or are skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.benchmark.helpers import make_color_dataset
from tests.ogor.generation.conftest import LIBRARY_SPEC, occluder_rgba, write_dataset

REPO = Path(__file__).resolve().parents[2]


def cli(program: str, *args: str, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``ogor`` or ``bench`` as a user does: a real process, its real exit status."""
    module = {"ogor": "ogor.cli", "bench": "benchmark.cli"}[program]
    code = f"import sys; from {module} import main; sys.exit(main())"
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    if "TOREID_DEBUG" not in (env or {}):
        full_env.pop("TOREID_DEBUG", None)
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or REPO, timeout=900, check=False)


def assert_one_line_failure(stderr: str, returncode: int, *, contains: str = "") -> str:
    """Non-zero exit, at most 3 lines on stderr, no traceback; returns the message."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert returncode != 0
    assert "Traceback" not in stderr, stderr
    assert 1 <= len(lines) <= 3, stderr
    if contains:
        assert contains in stderr, stderr
    return lines[-1]


class Tmpfs:
    """A mounted tmpfs of a given size; :meth:`resize` frees (or takes) space."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       check=True, capture_output=True, timeout=30)

    def resize(self, size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True,
                       capture_output=True, timeout=30)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True,
                       timeout=30)


def _can_mount() -> str | None:
    """``None`` when a tmpfs can be mounted here, else why not."""
    if os.name != "posix" or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    probe = Path(f"/tmp/toreid-mount-probe-{uuid.uuid4().hex[:8]}")
    try:
        fs = Tmpfs(probe, "64k")
    except (OSError, subprocess.SubprocessError) as exc:
        probe.rmdir()
        return f"cannot mount a tmpfs here ({type(exc).__name__})"
    fs.unmount()
    probe.rmdir()
    return None


MOUNT_PROBLEM = _can_mount()


@pytest.fixture
def tmpfs_factory() -> Iterator:
    """``make(size) -> Tmpfs`` at a fresh mount point; every mount is unmounted afterwards."""
    if MOUNT_PROBLEM is not None:
        pytest.skip(MOUNT_PROBLEM)
    mounted: list[Tmpfs] = []

    def make(size: str, path: Path | None = None) -> Tmpfs:
        fs = Tmpfs(path or Path(f"/tmp/toreid-faults-{uuid.uuid4().hex[:8]}"), size)
        mounted.append(fs)
        return fs

    yield make
    for fs in mounted:
        fs.unmount()
        try:
            fs.path.rmdir()
        except OSError:
            pass


@pytest.fixture(scope="session")
def fault_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ogor.library import LibraryWriter

    root = tmp_path_factory.mktemp("fault-oil") / "lib"
    with LibraryWriter(root) as writer:
        for name, h, w, color, opaque in LIBRARY_SPEC:
            writer.add(name, occluder_rgba(h, w, color, opaque), detector="procedural")
    return root


@pytest.fixture(scope="session")
def fault_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CUHK-PEDES-format source of 48 textured 192x96 JPEGs (~0.5 MiB): big enough that a
    small file system fills in the middle of a generation."""
    root = tmp_path_factory.mktemp("fault-src") / "src"
    write_dataset(root, layout={"train": [4] * 6, "val": [4] * 3, "test": [4] * 3},
                  size=(192, 96), seed=3)
    return root


def run_args(root: Path, out: Path, *extra: str) -> list[str]:
    """The ``bench run`` command of :func:`finished_run` (replayed for ``--resume``)."""
    return ["run", "--models", "clip", "--datasets", f"colors={root}", "--preset", "tiny",
            "--epochs", "1", "--out", str(out), "--quiet", *extra]


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(runs root, dataset root) of a real finished 1-epoch ``bench run`` of the tiny CLIP."""
    from click.testing import CliRunner

    from benchmark.cli import main

    base = tmp_path_factory.mktemp("fault-run")
    root = make_color_dataset(base / "data", ids=8, views=2,
                              splits={"train": 4, "val": 2, "test": 2})
    result = CliRunner().invoke(main, run_args(root, base / "runs"))
    assert result.exit_code == 0, result.output
    return base / "runs", root


RUN_SUBDIR = Path("colors") / "clip" / "seed1"
