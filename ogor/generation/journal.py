"""The output folder of ``ogor generate``: its states, the journal, resume and the final rename.

Output is built in ``OUT.ogor-partial``; the job file marks a folder as unfinished and is removed
last; an image's record is appended to the journal only after its file is complete, so
``--resume`` keeps what the journal vouches for, deletes everything else and redoes the rest.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ogor.errors import GenerationError
from ogor.generation.manifest import (
    JOB_NAME,
    JOURNAL_NAME,
    MANIFEST_NAME,
    read_manifest,
)
from ogor.generation.summary import GenerationSummary
from ogor.generation.worker import _Done, _done_from_line
from toreid.io import (
    read_json,
)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _check_locations(source: Path, out: Path) -> None:
    src_real, out_real = source.resolve(), out.resolve()
    if _inside(out_real, src_real):
        raise GenerationError(
            f"{out}: output folder is inside the source dataset {source}; "
            "nothing may be written there"
        )
    if _inside(src_real, out_real):
        raise GenerationError(f"{out}: output folder contains the source dataset {source}")


def _is_generated(folder: Path) -> bool:
    return (folder / MANIFEST_NAME).is_file() or (folder / JOB_NAME).is_file()


def _job_mismatch(found: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    for key, value in wanted.items():
        if found.get(key) != value:
            return f"field '{key}': {found.get(key)!r} there, {value!r} now"
    return None


def _read_journal(path: Path) -> dict[str, _Done]:
    """Journal records by output path; a torn or garbled line (SIGKILL mid-write) is dropped."""
    done: dict[str, _Done] = {}
    if not path.is_file():
        return done
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = _done_from_line(line.rstrip("\n"))
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
            done[record.path] = record
    return done


def _remove_strays(partial: Path, image_dir: str, expected: set[str]) -> None:
    """Delete whatever an interrupted run left that the journal does not vouch for (half-written
    images, temporary files); those images are redone, so the tree ends up exactly as planned."""
    keep_top = {JOB_NAME, JOURNAL_NAME, image_dir}
    for entry in partial.iterdir():
        if entry.name not in keep_top:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    images = partial / image_dir
    for folder, _dirs, files in os.walk(images):
        for name in files:
            relative = os.path.relpath(os.path.join(folder, name), images).replace(os.sep, "/")
            if relative not in expected:
                os.unlink(os.path.join(folder, name))


def _finish(partial: Path, out: Path) -> None:
    """Move the finished folder into place, then remove the job marker and the journal.

    An earlier dataset being replaced (``--overwrite``) is first moved to a hidden sibling and
    deleted after the rename, so ``OUT`` is at every moment either the old or the new dataset.
    """
    old = out.with_name(f".{out.name}.ogor-old")
    if old.exists():  # left by a run killed in the middle of this function
        shutil.rmtree(old)
    if out.exists():
        if any(out.iterdir()):
            os.replace(out, old)
        else:
            out.rmdir()
    os.replace(partial, out)
    shutil.rmtree(old, ignore_errors=True)
    (out / JOURNAL_NAME).unlink(missing_ok=True)
    (out / JOB_NAME).unlink()


def _prepare_output(
    out: Path, partial: Path, job: dict[str, Any], resume: bool, overwrite: bool
) -> GenerationSummary | None:
    """Apply the refusal rules; clear what ``--overwrite`` replaces. Returns a summary when a
    ``--resume`` finds the job already done."""
    if out.exists() and not out.is_dir():
        raise GenerationError(f"{out}: exists and is not a folder")
    out_busy = out.is_dir() and any(out.iterdir())
    if out_busy and not _is_generated(out):
        if resume or overwrite:
            raise GenerationError(
                f"{out}: not empty and not made by 'ogor generate'; refusing to replace it"
            )
        raise GenerationError(f"{out}: output folder is not empty; pass --resume or --overwrite")
    if out_busy and not (resume or overwrite):
        raise GenerationError(
            f"{out}: output folder is not empty (a generated dataset); pass --resume or --overwrite"
        )
    if overwrite:
        if partial.exists():
            shutil.rmtree(partial)
        return None
    if partial.exists():
        if not resume:
            raise GenerationError(
                f"{partial}: an unfinished run is there; pass --resume to finish it or "
                "--overwrite to start again"
            )
        found = read_json(partial / JOB_NAME, "job file") if (partial / JOB_NAME).is_file() else {}
        mismatch = _job_mismatch(found, job)
        if mismatch:
            raise GenerationError(
                f"{partial}: the unfinished run used other inputs ({mismatch}); "
                "pass --overwrite to start again"
            )
        return None
    if out_busy:  # resume on a dataset already in place
        if (out / JOB_NAME).is_file():  # renamed, cleanup pending
            mismatch = _job_mismatch(read_json(out / JOB_NAME, "job file"), job)
            if mismatch is None:
                (out / JOURNAL_NAME).unlink(missing_ok=True)
                (out / JOB_NAME).unlink()
        else:
            mismatch = _manifest_mismatch(read_manifest(out, validate=False), job)
        if mismatch:
            raise GenerationError(
                f"{out}: was generated with other inputs ({mismatch}); pass --overwrite"
            )
        manifest = read_manifest(out, validate=False)
        return GenerationSummary(out, manifest["protocol"], manifest["counts"], manifest["summary"])
    return None


def _manifest_mismatch(manifest: dict[str, Any], job: dict[str, Any]) -> str | None:
    found = {
        "protocol": manifest["protocol"],
        "seed": manifest["seed"],
        "ratio": manifest["ratio"],
        "mode": manifest["mode"],
        "quality": manifest["quality"],
        "feather": manifest["feather"],
        "library_fingerprint": manifest["library"]["fingerprint"],
        "source_annotation_sha256": manifest["source"]["annotation_sha256"],
    }
    return _job_mismatch(found, {k: job[k] for k in found})
