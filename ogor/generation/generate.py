"""``ogor generate``: make an Occluded-* dataset from a T-ReID dataset and an occlusion library.

How the guarantees are kept:

* **Determinism.** Selection has its own seeded stream per split (``ogor.occlude.selection``); each
  selected image draws its instance and placement from ``stable_seed(seed, "<split>/<path>")``.
  Nothing depends on the worker count, on the processing order or on a resume, and the manifest
  lists images sorted by path.
* **Nothing unfinished looks finished.** Output is built in the sibling folder
  ``OUT.ogor-partial`` and renamed to ``OUT`` at the end. The job file (``.ogor-job.json``) marks
  a folder as unfinished and is removed last; ``ogor verify`` and ``occlusion_flags`` refuse a
  folder that has it, and the annotation file and the manifest are only written at the end.
* **Resume after SIGKILL.** An image's manifest record is appended to the journal
  (``.ogor-journal.jsonl``; a torn last line is ignored) only after its file is complete.
  ``--resume`` keeps the journaled images, deletes everything else in the partial folder (half
  written files included) and redoes the rest, so images need no temporary name and rename.
  Files are not fsynced one by one: SIGKILL loses no written data; after a power loss,
  ``ogor verify`` finds any damage. The manifest and the annotation are written atomically.
* **Unselected images are never re-encoded**: hard link where possible, else a byte copy.
* **Speed.** Workers (``spawn``) load the library once and cache each occluder premultiplied;
  work goes out in chunks; encoded bytes are hashed in memory; output folders are made once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ogor import __version__
from ogor.datasets import Dataset, DatasetFormat, annotation_sha256, read_dataset
from ogor.errors import GenerationError
from ogor.generation.diskspace import check_free_space, stops_cleanly_on_full_disk
from ogor.generation.journal import (
    _check_locations,
    _finish,
    _prepare_output,
    _read_journal,
    _remove_strays,
)
from ogor.generation.manifest import (
    JOB_NAME,
    JOURNAL_NAME,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    MANIFEST_VERSION,
    image_row,
    read_manifest,
    summarize,
    write_manifest,
)
from ogor.generation.manifest_check import (
    check_manifest_recipe,
    check_recipe,
    rebuild_mismatch,
    split_file_for,
)
from ogor.generation.plan import (
    OCCLUDED_SUFFIX,
    _counts,
    _dry_run_placements,
    _output_records,
    _plan,
    _tasks_from_manifest,
    _write_annotation,
    occluded_name,
)
from ogor.generation.summary import GenerationSummary
from ogor.generation.worker import _init_worker, _run_tasks, _WorkerConfig
from ogor.imageio import encode_image, image_seed
from ogor.occlude.placement import DELTA_HIGH, DELTA_LOW, MAX_ATTEMPTS
from ogor.occlude.protocols import GenerationProtocol, get_protocol
from ogor.occlude.selection import collect_images
from toreid.io import atomic_write_bytes, atomic_write_json, sha256_file

if TYPE_CHECKING:
    from ogor.library import OcclusionLibrary

PARTIAL_SUFFIX = ".ogor-partial"
MODES = ("replace", "add")


def generate_dataset(
    source_root: str | Path,
    out_root: str | Path,
    *,
    oil: str | Path | None = None,
    ratio: float = 0.3,
    protocol: str = "paper",
    seed: int = 0,
    workers: int = 1,
    mode: str = "replace",
    quality: int = 95,
    feather: float = 0.0,
    resume: bool = False,
    overwrite: bool = False,
    dry_run: bool = False,
    from_manifest: str | Path | None = None,
    space_check: bool = True,
    format: str | None = None,
    split_file: str | Path | None = None,
) -> GenerationSummary:
    """Make an occluded copy of a T-ReID dataset (contract C3).

    Args:
        source_root: a CUHK-PEDES, ICFG-PEDES or RSTPReid root in any layout
            (``ogor.datasets``); the output keeps that layout.
        out_root: the folder to create; never inside ``source_root``.
        oil: occlusion library folder (default: the embedded library).
        ratio: share of each split's images to occlude (``paper`` protocol), in [0, 1].
        protocol: ``paper`` or ``mgcc-code`` (see ``ogor.occlude.protocols``).
        seed: the only source of randomness.
        workers: processes; the output does not depend on it.
        mode: ``replace`` (occluded image replaces the original) or ``add`` (kept both).
        quality: JPEG quality of occluded images.
        feather: Gaussian sigma (pixels) softening the occluder's edges; 0 keeps them.
        resume: finish an interrupted run of the same command.
        overwrite: replace an existing generated dataset (or an unfinished run) at ``out_root``.
        dry_run: select and place only; print what would be made, write nothing.
        from_manifest: rebuild the dataset a manifest describes, byte for byte; the manifest's
            parameters replace ``ratio``, ``protocol``, ``seed``, ``mode``, ``quality`` and
            ``feather``.
        space_check: refuse to start when the output's file system clearly lacks the space
            (``ogor.generation.diskspace``); ``False`` skips the check.
        format: the source layout; detected when ``None``.
        split_file: the split of a split-less source (``caption_all.json``); the manifest
            records it, and the output takes its split from the manifest.

    With ``workers > 1`` the worker processes are started with ``spawn``: a script calling this
    needs the usual ``if __name__ == "__main__":`` guard.

    Raises:
        GenerationError: a refused request or a failed image (one line naming the file).
        DatasetError, LibraryError: the source or the library is unusable.
    """
    from ogor.datasets import detect_format, get_format
    from ogor.library import OcclusionLibrary, default_library_path

    started = time.monotonic()
    source, out = Path(source_root), Path(out_root)
    recipe = read_manifest(from_manifest) if from_manifest is not None else None
    if recipe is not None:
        protocol, seed, mode = recipe["protocol"], recipe["seed"], recipe["mode"]
        quality, feather = recipe["quality"], recipe["feather"]
        ratio = 0.0 if recipe["ratio"] is None else recipe["ratio"]
    spec = get_protocol(protocol)
    _check_options(ratio, mode, quality, feather, workers)
    if not source.is_dir():
        raise GenerationError(f"{source}: source dataset folder not found")
    _check_locations(source, out)

    fmt = get_format(format) if format else detect_format(source)
    source_sha = annotation_sha256(fmt.annotation_path(source))
    split = split_file_for(split_file, recipe)
    if oil is None and recipe is not None and not recipe["library"]["default"]:
        oil = recipe["library"]["root"]
    library_root = Path(oil) if oil is not None else default_library_path()
    library = OcclusionLibrary.load(library_root, verify=True)
    params, job = _params_and_job(
        spec, seed, ratio, mode, quality, feather, library, source_sha, from_manifest
    )
    if split is not None:
        job["split_file_sha256"] = sha256_file(split)
    partial = out.with_name(out.name + PARTIAL_SUFFIX)
    if not dry_run:
        done = _prepare_output(out, partial, job, resume, overwrite)
        if done is not None:
            return done
    return _build(_Request(
        source, out, partial, oil, fmt, spec, params, job, library, recipe, from_manifest,
        source_sha, float(ratio), int(workers), dry_run, started, space_check, split,
    ))


@dataclass(frozen=True)
class _Request:
    """A checked ``generate_dataset`` request, as the build steps below need it."""

    source: Path
    out: Path
    partial: Path
    oil: str | Path | None
    fmt: DatasetFormat
    spec: GenerationProtocol
    params: dict[str, Any]
    job: dict[str, Any]
    library: OcclusionLibrary
    recipe: dict[str, Any] | None
    from_manifest: str | Path | None
    source_sha: str
    ratio: float
    workers: int
    dry_run: bool
    started: float
    space_check: bool = True
    split_file: Path | None = None


def _check_options(ratio: float, mode: str, quality: int, feather: float, workers: int) -> None:
    if not 0.0 <= float(ratio) <= 1.0:
        raise GenerationError(f"ratio {ratio} is outside [0, 1] (field 'ratio')")
    if mode not in MODES:
        raise GenerationError(f"unknown mode '{mode}' (valid: {', '.join(MODES)})")
    if not 0 <= int(quality) <= 100:
        raise GenerationError(f"JPEG quality {quality} is outside [0, 100] (field 'quality')")
    if float(feather) < 0:
        raise GenerationError(f"feather {feather} is negative (field 'feather')")
    if int(workers) < 1:
        raise GenerationError(f"workers {workers} must be at least 1")


def _params_and_job(
    spec: Any,
    seed: int,
    ratio: float,
    mode: str,
    quality: int,
    feather: float,
    library: Any,
    source_sha: str,
    from_manifest: str | Path | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The recipe parameters the manifest records, and the job file that ``--resume`` matches."""
    params: dict[str, Any] = {
        "protocol": spec.name,
        "seed": int(seed),
        "ratio": float(ratio) if spec.uses_ratio else None,
        "mode": mode,
        "quality": int(quality),
        "feather": float(feather),
    }
    job = {
        "tool_version": __version__,
        **params,
        "library_fingerprint": library.fingerprint,
        "source_annotation_sha256": source_sha,
        "from_manifest_sha256": sha256_file(from_manifest) if from_manifest else None,
    }
    return params, job


def _build(request: _Request) -> GenerationSummary:
    """Plan the images, make them (journaled, in workers), then publish the finished folder."""
    r, params = request, request.params
    image_dir = r.fmt.image_dir
    out_images = r.partial / image_dir
    config = _WorkerConfig(
        source_images=str((r.source / image_dir).resolve()),
        out_images=str(out_images.resolve()),
        protocol=r.spec.name,
        seed=params["seed"],
        quality=params["quality"],
        feather=params["feather"],
    )
    with contextlib.ExitStack() as stack:
        # issue 16: entered first so it exits last, after the pool has stopped (diskspace)
        full_disk = stack.enter_context(
            stops_cleanly_on_full_disk(r.partial, image_dir, JOURNAL_NAME, JOB_NAME))
        # Start the worker processes now: they boot (imports, library) while this process reads
        # and validates the annotation file, which takes seconds on the largest datasets.
        pool = None
        if r.workers > 1 and not r.dry_run:
            context = multiprocessing.get_context("spawn")
            pool = stack.enter_context(
                context.Pool(r.workers, initializer=_init_worker, initargs=(config, r.library))
            )
        dataset = read_dataset(r.source, r.fmt.name, r.split_file)
        if r.recipe is not None:
            check_recipe(r.recipe, r.from_manifest, dataset, r.source_sha, r.library)
        images = collect_images(dataset.records)
        if r.recipe is not None:
            tasks = _tasks_from_manifest(r.recipe)
            selected = {t.source_path for t in tasks if t.occlude}
            check_manifest_recipe(  # issue 16: the seed must give what the manifest records
                r.from_manifest, tasks, images, dataset, params, r.ratio, r.spec, r.library)
        else:
            selected = r.spec.select(images, r.ratio, params["seed"])
            tasks = _plan(images, selected, params["mode"], dataset.annotation_path)

        if r.dry_run:
            rows = [
                image_row(e)
                for e in _dry_run_placements(tasks, dataset, params["seed"], r.spec.name, r.library)
            ]
            counts = _counts(images, rows, _output_records(dataset, selected, params["mode"]))
            return GenerationSummary(
                r.out, r.spec.name, counts, summarize(rows), dry_run=True,
                elapsed_s=time.monotonic() - r.started,
            )
        full_disk.total = len(tasks)  # issue 16: refuse to start when space is clearly short
        check_free_space(tasks, config.source_images, r.partial, JOURNAL_NAME, r.space_check)
        journal, todo = _open_journal(r.partial, out_images, image_dir, tasks, r.job)
        reused = len(journal)
        _make_images(todo, config, r, pool, journal, out_images)
    return _publish(r, dataset, images, selected, journal, len(todo), reused)


def _open_journal(
    partial: Path, out_images: Path, image_dir: str, tasks: list[Any], job: dict[str, Any]
) -> tuple[dict[str, Any], list[Any]]:
    """Start the partial folder, or on resume keep what the journal vouches for; the tasks left."""
    journal_path = partial / JOURNAL_NAME
    if (partial / JOB_NAME).is_file():  # resuming
        journal = _read_journal(journal_path)
        journal = {p: r for p, r in journal.items() if (out_images / p).is_file()}
        _remove_strays(partial, image_dir, set(journal))
        atomic_write_bytes(
            journal_path, "".join(d.line + "\n" for d in journal.values()).encode("utf-8")
        )
    else:
        partial.mkdir(parents=True)
        atomic_write_json(partial / JOB_NAME, job)
        journal = {}
    todo = [t for t in tasks if t.path not in journal]
    for folder in sorted({t.path.rpartition("/")[0] for t in todo}):
        (out_images / folder).mkdir(parents=True, exist_ok=True)
    return journal, todo


def _make_images(
    todo: list[Any],
    config: _WorkerConfig,
    request: _Request,
    pool: Any,
    journal: dict[str, Any],
    out_images: Path,
) -> None:
    """Make every image left, appending each chunk's records to the journal as it finishes."""
    expected = {t.path: t.expected_sha256 for t in todo if t.expected_sha256}
    with open(request.partial / JOURNAL_NAME, "a", encoding="utf-8") as handle:
        for results in _run_tasks(todo, config, request.workers, request.library, pool):
            for done in results:
                want = expected.get(done.path)
                if want is not None and want != done.sha256:
                    raise GenerationError(
                        rebuild_mismatch(out_images / done.path, request.recipe)
                    )
                journal[done.path] = done
            handle.write("".join(d.line + "\n" for d in results))
            handle.flush()


def _publish(
    request: _Request,
    dataset: Dataset,
    images: list[Any],
    selected: set[str],
    journal: dict[str, Any],
    processed: int,
    reused: int,
) -> GenerationSummary:
    """Write the annotation and the manifest into the partial folder, then rename it to OUT."""
    r, partial, mode = request, request.partial, request.params["mode"]
    finished = [journal[path] for path in sorted(journal)]
    rows = [d.row for d in finished]
    records, annotation = _write_annotation(dataset, selected, mode, partial)
    annotation_sha = annotation_sha256(annotation)
    counts = _counts(images, rows, records)
    summary = summarize(rows)
    if r.recipe is not None:
        if annotation_sha != r.recipe["annotation"]["sha256"]:
            raise GenerationError(f"{annotation}: rebuilt annotation differs from the manifest")
        atomic_write_bytes(partial / MANIFEST_NAME, Path(r.from_manifest).read_bytes())
    else:
        manifest = _manifest(
            r.params, r.source, r.out, r.oil, r.library, dataset, r.source_sha, annotation,
            annotation_sha, counts, [d.line for d in finished], summary, r.split_file,
        )
        write_manifest(partial / MANIFEST_NAME, manifest)
    _finish(partial, r.out)
    return GenerationSummary(
        r.out, r.spec.name, counts, summary, processed=processed, reused=reused,
        elapsed_s=time.monotonic() - r.started,
    )


def _git_commit() -> str | None:
    checkout = Path(__file__).resolve().parents[2]  # ogor/generation/generate.py -> the checkout
    if not (checkout / ".git").exists():
        return None
    try:
        result = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and len(commit) == 40 else None


def _manifest(
    params: dict[str, Any],
    source: Path,
    out: Path,
    oil: str | Path | None,
    library: Any,
    dataset: Dataset,
    source_sha: str,
    annotation: Path,
    annotation_sha: str,
    counts: dict[str, dict[str, int]],
    image_lines: list[str],
    summary: dict[str, Any],
    split_file: Path | None = None,
) -> dict[str, Any]:
    import cv2

    command = ["ogor", "generate", str(source), "--out", str(out)]
    if split_file is not None:
        command += ["--split-file", str(split_file)]
    if oil is not None:
        command += ["--oil", str(oil)]
    command += ["--protocol", params["protocol"], "--seed", str(params["seed"])]
    if params["ratio"] is not None:
        command += ["--ratio", repr(params["ratio"])]
    command += ["--mode", params["mode"], "--quality", str(params["quality"])]
    command += ["--feather", repr(params["feather"])]
    source_record: dict[str, Any] = {
        "root": str(source.resolve()),
        "format": dataset.format.name,
        "annotation": dataset.annotation_path.relative_to(dataset.root).as_posix(),
        "annotation_sha256": source_sha,
        "image_dir": dataset.format.image_dir,
    }
    if split_file is not None:
        source_record["split_file"] = {
            "path": str(split_file.resolve()), "sha256": sha256_file(split_file)
        }
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "tool": {
            "name": "ogor",
            "version": __version__,
            "git_commit": _git_commit(),
            "opencv": cv2.__version__,
            "numpy": np.__version__,
        },
        "command": command,
        **params,
        "placement_rule": {
            "max_attempts": MAX_ATTEMPTS,
            "delta_range": [DELTA_LOW, DELTA_HIGH],
            "size_rounding": "h_o = round(sqrt(S_o * gamma)), w_o = round(sqrt(S_o / gamma)), "
            "Python round (half to even), at least 1 pixel",
            "after_bound": "largest box of the instance's aspect ratio that fits the set's "
            "region; delta is then that box's area fraction; recorded in 'fallback'",
            "occluded_fraction": "sum(alpha) / (H * W), alpha of the pasted occluder in [0, 1] "
            "inside the image",
        },
        "library": {
            "fingerprint": library.fingerprint,
            "root": str(Path(library.root).resolve()),
            "default": oil is None,
            "instances": len(library.instances),
        },
        "source": source_record,
        "annotation": {"path": annotation.name, "sha256": annotation_sha},
        "counts": counts,
        "images": image_lines,
        "summary": summary,
    }


__all__ = [
    "GenerationSummary",
    "OCCLUDED_SUFFIX",
    "PARTIAL_SUFFIX",
    "encode_image",
    "generate_dataset",
    "image_seed",
    "occluded_name",
]
