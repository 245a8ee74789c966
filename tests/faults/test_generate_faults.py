"""``ogor generate`` under faults: a full disk, too little space, failing workers, edited
manifests. Real processes (the CLI with a worker pool) and real size-limited file systems."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import ogor.generation.worker
from ogor.cli import main
from ogor.generation.generate import PARTIAL_SUFFIX, generate_dataset
from ogor.generation.manifest import JOURNAL_NAME, MANIFEST_NAME
from ogor.generation.verify import verify_dataset
from tests.faults.conftest import MOUNT_PROBLEM, assert_one_line_failure, cli
from tests.ogor.generation.conftest import tree_digest


def _generate_args(source: Path, out: Path, library: Path, *extra: str) -> list[str]:
    return ["generate", str(source), "--out", str(out), "--oil", str(library), "--ratio", "0.5",
            "--seed", "7", *extra]


@pytest.mark.skipif(MOUNT_PROBLEM is not None, reason=str(MOUNT_PROBLEM))
def test_full_disk_stops_cleanly_and_resume_is_byte_identical(fault_source: Path,
                                                              fault_library: Path,
                                                              tmpfs_factory) -> None:
    """Real processes on a real full file system: the acceptance test of issue 16."""
    source_before = tree_digest(fault_source)
    fs = tmpfs_factory("8m")
    out = fs.path / "occluded"
    args = _generate_args(fault_source, out, fault_library, "--workers", "2")
    done = cli("ogor", *args)
    assert done.returncode == 0, done.stderr
    reference = tree_digest(out)
    shutil.rmtree(out)

    fs.resize("280k")  # about half of what the output needs
    done = cli("ogor", *args, "--no-space-check")
    line = assert_one_line_failure(done.stderr, done.returncode, contains="--resume")
    assert "No space left on device" in line and "images finished and kept" in line
    partial = out.with_name(out.name + PARTIAL_SUFFIX)
    assert not out.exists() and (partial / JOURNAL_NAME).is_file()
    journaled = {json.loads(x)["path"] for x in (partial / JOURNAL_NAME).read_text().splitlines()
                 if x.endswith("}")}
    on_disk = {p.relative_to(partial / "imgs").as_posix()
               for p in (partial / "imgs").rglob("*") if p.is_file()}
    assert on_disk <= journaled  # nothing half-written is left behind
    assert tree_digest(fault_source) == source_before

    fs.resize("8m")  # space is made
    done = cli("ogor", *args, "--resume")
    assert done.returncode == 0, done.stderr
    assert tree_digest(out) == reference
    assert tree_digest(fault_source) == source_before


def test_full_disk_fallback_injected_enospc(fault_source: Path, fault_library: Path,
                                            tmp_path: Path, monkeypatch) -> None:
    """Where no file system can be mounted: the image write primitive fails with ENOSPC after
    a byte budget (in-process, one worker); the same guarantees hold."""
    out = tmp_path / "occluded"
    args = _generate_args(fault_source, out, fault_library, "--workers", "1")
    runner = CliRunner()
    assert runner.invoke(main, args).exit_code == 0
    reference = tree_digest(out)
    shutil.rmtree(out)

    budget = {"left": 60_000}
    real_open = open

    class QuotaFile:
        def __init__(self, handle) -> None:
            self.handle = handle

        def write(self, data: bytes) -> int:
            if len(data) > budget["left"]:
                raise OSError(errno.ENOSPC, "No space left on device")
            budget["left"] -= len(data)
            return self.handle.write(data)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.handle.close()

    def quota_open(file, mode="r", *a, **k):
        handle = real_open(file, mode, *a, **k)
        return QuotaFile(handle) if mode == "wb" and str(out) in str(file) else handle

    monkeypatch.setattr(ogor.generation.worker, "open", quota_open, raising=False)
    result = runner.invoke(main, [*args, "--no-space-check"])
    assert_one_line_failure(result.output, result.exit_code, contains="--resume")
    monkeypatch.undo()
    result = runner.invoke(main, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert tree_digest(out) == reference


def test_too_little_space_is_refused_before_anything_is_written(
        fault_source: Path, fault_library: Path, tmp_path: Path, monkeypatch) -> None:
    import ogor.generation.diskspace

    out = tmp_path / "occluded"
    monkeypatch.setattr(ogor.generation.diskspace, "free_bytes", lambda _path: 10_000)
    result = CliRunner().invoke(main, _generate_args(fault_source, out, fault_library,
                                                     "--workers", "1"))
    line = assert_one_line_failure(result.output, result.exit_code,
                                   contains="not enough free space")
    assert "--no-space-check" in line and "KiB" in line
    assert not out.exists() and not out.with_name(out.name + PARTIAL_SUFFIX).exists()
    result = CliRunner().invoke(main, _generate_args(fault_source, out, fault_library,
                                                     "--workers", "1", "--no-space-check"))
    assert result.exit_code == 0, result.output


def test_space_estimate_is_a_lower_bound(fault_source: Path, fault_library: Path,
                                         tmp_path: Path) -> None:
    """The refusal never stops a run that fits: the estimate is below what is really used."""
    from ogor.generation.diskspace import estimate_output_bytes
    from ogor.generation.plan import _tasks_from_manifest

    out = tmp_path / "occluded"
    generate_dataset(fault_source, out, oil=fault_library, ratio=0.5, seed=7)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    tasks = _tasks_from_manifest(manifest)
    clean = {f"imgs/{t.path}" for t in tasks if not t.occlude}  # hard links: no new bytes
    used = sum(p.stat().st_size for p in out.rglob("*")
               if p.is_file() and p.relative_to(out).as_posix() not in clean)
    estimate = estimate_output_bytes(tasks, fault_source / "imgs", out)
    assert 0.3 * used < estimate <= used


@pytest.mark.skipif(MOUNT_PROBLEM is not None, reason=str(MOUNT_PROBLEM))
def test_space_check_on_a_real_small_file_system(fault_source: Path, fault_library: Path,
                                                 tmpfs_factory) -> None:
    fs = tmpfs_factory("64k")
    out = fs.path / "occluded"
    result = CliRunner().invoke(main, _generate_args(fault_source, out, fault_library,
                                                     "--workers", "1"))
    assert_one_line_failure(result.output, result.exit_code, contains="not enough free space")
    assert list(fs.path.iterdir()) == []


def test_worker_failure_reaches_the_user_as_one_line(tmp_path: Path,
                                                     fault_library: Path) -> None:
    """A missing source image fails inside a worker process; the user sees one line."""
    from tests.ogor.generation.conftest import write_dataset

    source = tmp_path / "src"
    records = write_dataset(source)
    (source / "imgs" / records[-1].image_path).unlink()
    before = tree_digest(source)
    done = cli("ogor", *_generate_args(source, tmp_path / "out", fault_library,
                                       "--workers", "2", "--ratio", "1.0"))
    assert_one_line_failure(done.stderr, done.returncode, contains="source image not found")
    assert tree_digest(source) == before


def _manifest_copy(tmp_path: Path, source: Path, library: Path) -> tuple[Path, dict]:
    made = tmp_path / "made"
    generate_dataset(source, made, oil=library, ratio=0.5, seed=7)
    manifest = json.loads((made / MANIFEST_NAME).read_text())
    return made, manifest


@pytest.mark.parametrize("edit", ["seed", "selection", "placement", "dropped image"])
def test_edited_manifest_is_refused_before_anything_is_written(
        edit: str, fault_source: Path, fault_library: Path, tmp_path: Path) -> None:
    made, manifest = _manifest_copy(tmp_path, fault_source, fault_library)
    images = manifest["images"]
    occluded = next(i for i in images if i["occluded"])
    if edit == "seed":
        manifest["seed"] = 8
    elif edit == "selection":
        occluded.update(occluded=False, placement=None, occluded_fraction=0.0)
    elif edit == "placement":
        occluded["placement"]["box"][0] += 1
    else:
        images.remove(occluded)
    edited = tmp_path / f"edited-{edit.replace(' ', '-')}.json"
    edited.write_text(json.dumps(manifest))
    out = tmp_path / "rebuilt"
    result = CliRunner().invoke(main, ["generate", str(fault_source), "--out", str(out),
                                       "--from-manifest", str(edited), "--workers", "1"])
    line = assert_one_line_failure(result.output, result.exit_code, contains=str(edited))
    assert "edited manifest" in line, line
    assert not out.exists() and not out.with_name(out.name + PARTIAL_SUFFIX).exists()


def test_unedited_manifest_still_rebuilds_byte_for_byte(fault_source: Path,
                                                       fault_library: Path,
                                                       tmp_path: Path) -> None:
    made, _manifest = _manifest_copy(tmp_path, fault_source, fault_library)
    out = tmp_path / "rebuilt"
    generate_dataset(fault_source, out, from_manifest=made / MANIFEST_NAME)
    verify_dataset(out)
    assert tree_digest(out) == tree_digest(made)


def test_ogor_debug_shows_the_traceback(tmp_path: Path, monkeypatch) -> None:
    from ogor.errors import GenerationError

    monkeypatch.setenv("TOREID_DEBUG", "0")  # restored afterwards: --debug sets it to 1
    args = ["generate", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, args)
    assert_one_line_failure(result.output, result.exit_code, contains="not found")
    result = CliRunner().invoke(main, ["--debug", *args])
    assert isinstance(result.exception, GenerationError)
