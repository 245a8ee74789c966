"""``ogor generate``: make an Occluded-* dataset from a T-ReID dataset and an occlusion library.

How the guarantees are kept:

* **Determinism.** Selection has its own seeded stream per split (``ogor.selection``); each
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
import dataclasses
import json
import multiprocessing
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import numpy as np

from ogor import __version__
from ogor.datasets import Dataset, Record, read_dataset
from ogor.errors import GenerationError
from ogor.io import (
    atomic_write_bytes,
    atomic_write_json,
    read_json,
    sha256_bytes,
    sha256_file,
    stable_seed,
)
from ogor.manifest import (
    JOB_NAME,
    JOURNAL_NAME,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    MANIFEST_VERSION,
    ImageRow,
    format_summary,
    image_row,
    read_manifest,
    summarize,
    write_manifest,
)
from ogor.placement import DELTA_HIGH, DELTA_LOW, MAX_ATTEMPTS, Placement
from ogor.protocols import get_protocol
from ogor.selection import ImageItem, collect_images

PARTIAL_SUFFIX = ".ogor-partial"
#: Suffix of the occluded copy's file name in ``--mode add`` (``0001.jpg`` -> ``0001_occ.jpg``).
OCCLUDED_SUFFIX = "_occ"
MODES = ("replace", "add")


# --------------------------------------------------------------------------------------------
# Public results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationSummary:
    """What a generation made (or, with ``dry_run``, would make).

    Attributes:
        out_root: the finished dataset folder (not created in a dry run).
        protocol: protocol name.
        counts: per split ``source_images``, ``occluded``, ``output_images``, ``records``.
        summary: the manifest's closing table (see ``ogor.manifest.summarize``).
        processed: images made in this call.
        reused: images kept from an interrupted run (``--resume``).
        dry_run: nothing was written.
        elapsed_s: wall time of the call.
    """

    out_root: Path
    protocol: str
    counts: dict[str, dict[str, int]]
    summary: dict[str, Any]
    processed: int = 0
    reused: int = 0
    dry_run: bool = False
    elapsed_s: float = 0.0

    @property
    def occluded(self) -> int:
        return sum(row["occluded"] for row in self.counts.values())

    def table(self) -> str:
        """The summary table printed at the end of ``ogor generate``."""
        return format_summary(self.summary)


# --------------------------------------------------------------------------------------------
# Work items and the per-process worker
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Task:
    """One output image: a link/copy of a clean image or an occluded image to compose."""

    occlude: bool
    source_path: str
    path: str
    split: str
    person_id: int
    #: A recorded placement (``--from-manifest``); ``None`` derives it from the seed.
    placement: dict[str, Any] | None = None
    expected_sha256: str | None = None


@dataclass(frozen=True)
class _WorkerConfig:
    source_images: str
    out_images: str
    protocol: str
    seed: int
    quality: int
    feather: float


class _Done(NamedTuple):
    """A finished output image: its manifest record as one JSON line, plus what the summary
    and the rebuild check need without parsing the line again."""

    path: str
    line: str
    row: ImageRow
    sha256: str


def _done_from_line(line: str) -> _Done:
    record = json.loads(line)
    return _Done(record["path"], line, image_row(record), record["sha256"])


class _Worker:
    """Per-process state: the library and each occluder, premultiplied once and cached."""

    def __init__(self, config: _WorkerConfig, library: Any) -> None:
        self.config = config
        self.source_images = config.source_images
        self.out_images = config.out_images
        self.library = library
        self.protocol = get_protocol(config.protocol)
        self._occluders: dict[str, np.ndarray] = {}
        self._can_link = True

    def occluder(self, instance_id: str) -> np.ndarray:
        from ogor.compose import rgba_to_premultiplied_bgra

        cached = self._occluders.get(instance_id)
        if cached is None:
            rgba = self.library.rgba(self.library.get(instance_id))
            cached = self._occluders[instance_id] = rgba_to_premultiplied_bgra(rgba)
        return cached

    def run(self, task: _Task) -> _Done:
        # Plain string paths: pathlib's parsing is measurable at 40,000 images per run.
        src = os.path.join(self.source_images, task.source_path)
        dst = os.path.join(self.out_images, task.path)
        if task.occlude:
            placement, fraction, digest = self._occlude(src, dst, task)
            record = placement.to_json()
            row = ImageRow(
                task.split, True, placement.position_set, placement.class_name,
                placement.fallback is not None, fraction,
            )
        else:
            digest, record, fraction = self._link(src, dst), None, 0.0
            row = ImageRow(task.split, False, None, None, False, fraction)
        entry = {
            "path": task.path,
            "source_path": task.source_path,
            "split": task.split,
            "person_id": task.person_id,
            "occluded": task.occlude,
            "placement": record,
            "occluded_fraction": fraction,
            "sha256": digest,
        }
        # Serialised here, in parallel: the same line goes to the journal and the manifest.
        return _Done(task.path, json.dumps(entry, ensure_ascii=False), row, digest)

    def _link(self, src: str, dst: str) -> str:
        """Hard link (else copy) a clean image; never re-encoded. Written straight to its name:
        a file not yet in the journal is deleted and redone on resume, so no rename is needed."""
        try:
            digest = sha256_file(src)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise GenerationError(f"{src}: source image not found") from None
        if self._can_link:
            try:
                os.link(src, dst)
                return digest
            except OSError:
                self._can_link = False  # other file system or no permission: copy from now on
        shutil.copyfile(src, dst)
        return digest

    def _occlude(self, src: str, dst: str, task: _Task) -> tuple[Placement, float, str]:

        from ogor.compose import paste

        image = read_image(src)
        if task.placement is not None:
            placement = Placement.from_json(task.placement)
        else:
            rng = np.random.default_rng(image_seed(self.config.seed, task.split, task.source_path))
            placement = self.protocol.place(rng, image.shape[:2], self.library)
        occluder = self.occluder(placement.instance_id)
        fraction = paste(image, occluder, placement, self.config.feather)
        encoded = encode_image(image, os.path.splitext(dst)[1], self.config.quality, src)
        with open(dst, "wb") as handle:  # see _link: the journal, not a rename, marks it done
            handle.write(encoded)
        return placement, round(fraction, 6), sha256_bytes(encoded)


_STATE: _Worker | None = None


def _init_worker(config: _WorkerConfig, library: Any) -> None:
    """Pool initializer; the library comes pickled from the parent (already verified there), so a
    worker boots without parsing and schema-checking the index again."""
    import cv2

    global _STATE
    cv2.setNumThreads(1)  # one process per core already; codec threads would oversubscribe
    _STATE = _Worker(config, library)


def _run_chunk(tasks: list[_Task]) -> list[_Done]:
    assert _STATE is not None
    return [_STATE.run(task) for task in tasks]


def image_seed(seed: int, split: str, source_path: str) -> int:
    """The seed of one image's random stream: depends on the seed, split and path only."""
    return stable_seed(seed, f"{split}/{source_path}")


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file as BGR the way generation does: EXIF orientation is ignored so that
    pixels stay where the placement's box puts them. A missing or undecodable file is a one-line
    :class:`GenerationError` naming it."""
    import cv2

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise GenerationError(f"{path}: source image not found") from None
    image = cv2.imdecode(
        np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    )
    if image is None:
        raise GenerationError(f"{path}: not a decodable image")
    return image


def encode_image(image: np.ndarray, suffix: str, quality: int, source: str | Path) -> bytes:
    """Encode in the format the file name says: JPEG at ``quality``, PNG and BMP losslessly."""
    import cv2

    suffix = suffix.lower()
    params: list[int] = []
    if suffix in (".jpg", ".jpeg", ".jpe"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    try:
        ok, buffer = cv2.imencode(suffix, image, params)
    except cv2.error:
        ok = False
    if not ok:
        raise GenerationError(f"{source}: cannot write images of type '{suffix}'")
    return buffer.tobytes()


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


def occluded_name(path: str) -> str:
    """The occluded copy's path in ``--mode add``: the stem gets :data:`OCCLUDED_SUFFIX`."""
    pure = PurePosixPath(path)
    return str(pure.with_name(pure.stem + OCCLUDED_SUFFIX + pure.suffix))


def _plan(
    images: Sequence[ImageItem], selected: set[str], mode: str, annotation: Path
) -> list[_Task]:
    tasks: list[_Task] = []
    existing = {item.path for item in images}
    for item in sorted(images, key=lambda i: i.path):
        chosen = item.path in selected
        if mode == "add" and chosen:
            copy = occluded_name(item.path)
            if copy in existing:
                raise GenerationError(
                    f"{annotation}: field 'image path': the occluded copy {copy!r} of "
                    f"{item.path!r} would overwrite an existing source image (--mode add)"
                )
            tasks.append(_Task(False, item.path, item.path, item.split, item.person_id))
            tasks.append(_Task(True, item.path, copy, item.split, item.person_id))
        else:
            tasks.append(_Task(chosen, item.path, item.path, item.split, item.person_id))
    return tasks


def _tasks_from_manifest(manifest: dict[str, Any]) -> list[_Task]:
    return [
        _Task(
            bool(item["occluded"]),
            item["source_path"],
            item["path"],
            item["split"],
            int(item["person_id"]),
            placement=item["placement"] if item["occluded"] else None,
            expected_sha256=item["sha256"],
        )
        for item in manifest["images"]
    ]


def _output_records(dataset: Dataset, selected: set[str], mode: str) -> list[Record]:
    """``--mode add``: every record, each selected one followed by its occluded copy."""
    records: list[Record] = []
    for record in dataset.records:
        records.append(record)
        if mode == "add" and record.image_path in selected:
            records.append(dataclasses.replace(record, image_path=occluded_name(record.image_path)))
    return records


def _write_annotation(
    dataset: Dataset, selected: set[str], mode: str, folder: Path
) -> tuple[list[Record], Path]:
    """The annotation file in the source's format and name. In replace mode the records are the
    source's own, so the source file is copied byte for byte."""
    records = _output_records(dataset, selected, mode)
    target = folder / dataset.annotation_path.name
    if mode == "replace":
        atomic_write_bytes(target, dataset.annotation_path.read_bytes())
    else:
        dataset.format.write(records, folder, annotation_name=dataset.annotation_path.name)
    return records, target


# --------------------------------------------------------------------------------------------
# Output folder states
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# The orchestrator
# --------------------------------------------------------------------------------------------


def _git_commit() -> str | None:
    checkout = Path(__file__).resolve().parent.parent
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


def _chunks(tasks: Sequence[_Task], size: int) -> Iterator[list[_Task]]:
    for start in range(0, len(tasks), size):
        yield list(tasks[start : start + size])


def _run_tasks(
    tasks: Sequence[_Task], config: _WorkerConfig, workers: int, library: Any, pool: Any
) -> Iterator[list[_Done]]:
    """Results chunk by chunk, in whatever order workers finish (the manifest is sorted later).

    Chunks of up to 256 images keep the inter-process traffic small while leaving about eight
    chunks per worker so that the last ones finish together.
    """
    if not tasks:
        return
    size = max(1, min(256, len(tasks) // (workers * 8)))
    if pool is None:
        worker = _Worker(config, library)
        for chunk in _chunks(tasks, size):
            yield [worker.run(task) for task in chunk]
        return
    yield from pool.imap_unordered(_run_chunk, _chunks(tasks, size))


def _dry_run_placements(
    tasks: Sequence[_Task], dataset: Dataset, seed: int, protocol_name: str, library: Any
) -> list[dict[str, Any]]:
    """Placements without compositing: sizes come from image headers, nothing is written."""
    from PIL import Image

    protocol = get_protocol(protocol_name)
    records = []
    for task in tasks:
        placement = None
        if task.occlude:
            path = dataset.image_root / task.source_path
            try:
                with Image.open(path) as image:
                    width, height = image.size
            except OSError as exc:
                raise GenerationError(f"{path}: cannot read image ({exc})") from exc
            rng = np.random.default_rng(image_seed(seed, task.split, task.source_path))
            placement = protocol.place(rng, (height, width), library).to_json()
        records.append(
            {
                "path": task.path,
                "split": task.split,
                "occluded": task.occlude,
                "placement": placement,
                "occluded_fraction": None,
            }
        )
    return records


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
) -> GenerationSummary:
    """Make an occluded copy of a T-ReID dataset (contract C3).

    Args:
        source_root: a CUHK-PEDES, ICFG-PEDES or RSTPReid root (format auto-detected).
        out_root: the folder to create; never inside ``source_root``.
        oil: occlusion library folder (default: the embedded library).
        ratio: share of each split's images to occlude (``paper`` protocol), in [0, 1].
        protocol: ``paper`` or ``mgcc-code`` (see ``ogor.protocols``).
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

    With ``workers > 1`` the worker processes are started with ``spawn``: a script calling this
    needs the usual ``if __name__ == "__main__":`` guard.

    Raises:
        GenerationError: a refused request or a failed image (one line naming the file).
        DatasetError, LibraryError: the source or the library is unusable.
    """
    from ogor.datasets import detect_format
    from ogor.oil import OcclusionLibrary, default_library_path

    started = time.monotonic()
    source, out = Path(source_root), Path(out_root)
    recipe = read_manifest(from_manifest) if from_manifest is not None else None
    if recipe is not None:
        protocol, seed, mode = recipe["protocol"], recipe["seed"], recipe["mode"]
        quality, feather = recipe["quality"], recipe["feather"]
        ratio = 0.0 if recipe["ratio"] is None else recipe["ratio"]
    spec = get_protocol(protocol)
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
    if not source.is_dir():
        raise GenerationError(f"{source}: source dataset folder not found")
    _check_locations(source, out)

    fmt = detect_format(source)
    source_sha = sha256_file(fmt.annotation_path(source))
    if oil is None and recipe is not None and not recipe["library"]["default"]:
        oil = recipe["library"]["root"]
    library_root = Path(oil) if oil is not None else default_library_path()
    library = OcclusionLibrary.load(library_root, verify=True)
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
    partial = out.with_name(out.name + PARTIAL_SUFFIX)
    if not dry_run:
        done = _prepare_output(out, partial, job, resume, overwrite)
        if done is not None:
            return done
    image_dir = fmt.image_dir
    out_images = partial / image_dir
    config = _WorkerConfig(
        source_images=str((source / image_dir).resolve()),
        out_images=str(out_images.resolve()),
        protocol=spec.name,
        seed=int(seed),
        quality=int(quality),
        feather=float(feather),
    )
    with contextlib.ExitStack() as stack:
        # Start the worker processes now: they boot (imports, library) while this process reads
        # and validates the annotation file, which takes seconds on the largest datasets.
        pool = None
        if int(workers) > 1 and not dry_run:
            context = multiprocessing.get_context("spawn")
            pool = stack.enter_context(
                context.Pool(int(workers), initializer=_init_worker, initargs=(config, library))
            )
        dataset = read_dataset(source, fmt.name)
        if recipe is not None:
            _check_recipe(recipe, from_manifest, dataset, source_sha, library)
        images = collect_images(dataset.records)
        if recipe is not None:
            tasks = _tasks_from_manifest(recipe)
            selected = {t.source_path for t in tasks if t.occlude}
        else:
            selected = spec.select(images, float(ratio), int(seed))
            tasks = _plan(images, selected, mode, dataset.annotation_path)

        if dry_run:
            rows = [
                image_row(e)
                for e in _dry_run_placements(tasks, dataset, int(seed), spec.name, library)
            ]
            counts = _counts(images, rows, _output_records(dataset, selected, mode))
            return GenerationSummary(
                out, spec.name, counts, summarize(rows), dry_run=True,
                elapsed_s=time.monotonic() - started,
            )

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
        reused = len(journal)
        todo = [t for t in tasks if t.path not in journal]
        for folder in sorted({t.path.rpartition("/")[0] for t in todo}):
            (out_images / folder).mkdir(parents=True, exist_ok=True)

        expected = {t.path: t.expected_sha256 for t in todo if t.expected_sha256}
        with open(journal_path, "a", encoding="utf-8") as handle:
            for results in _run_tasks(todo, config, int(workers), library, pool):
                for done in results:
                    want = expected.get(done.path)
                    if want is not None and want != done.sha256:
                        raise GenerationError(_rebuild_mismatch(out_images / done.path, recipe))
                    journal[done.path] = done
                handle.write("".join(d.line + "\n" for d in results))
                handle.flush()

    finished = [journal[path] for path in sorted(journal)]
    rows = [d.row for d in finished]
    records, annotation = _write_annotation(dataset, selected, mode, partial)
    annotation_sha = sha256_file(annotation)
    counts = _counts(images, rows, records)
    summary = summarize(rows)
    if recipe is not None:
        if annotation_sha != recipe["annotation"]["sha256"]:
            raise GenerationError(f"{annotation}: rebuilt annotation differs from the manifest")
        atomic_write_bytes(partial / MANIFEST_NAME, Path(from_manifest).read_bytes())
    else:
        manifest = _manifest(
            params, source, out, oil, library, dataset, source_sha, annotation, annotation_sha,
            counts, [d.line for d in finished], summary,
        )
        write_manifest(partial / MANIFEST_NAME, manifest)
    _finish(partial, out)
    return GenerationSummary(
        out, spec.name, counts, summary, processed=len(todo), reused=reused,
        elapsed_s=time.monotonic() - started,
    )


def _check_recipe(
    recipe: dict[str, Any], path: str | Path | None, dataset: Dataset, source_sha: str, library: Any
) -> None:
    want = recipe["source"]["annotation_sha256"]
    if want != source_sha:
        raise GenerationError(
            f"{dataset.annotation_path}: source annotation sha256 {source_sha[:12]}... differs "
            f"from the manifest {path} ({want[:12]}...): not the dataset it was made from"
        )
    want = recipe["library"]["fingerprint"]
    if want != library.fingerprint:
        raise GenerationError(
            f"{library.root}: occlusion library fingerprint {library.fingerprint[:12]}... differs "
            f"from the manifest {path} ({want[:12]}...); pass the library it used with --oil"
        )


def _rebuild_mismatch(file: Path, recipe: dict[str, Any] | None) -> str:
    import cv2

    built_with = recipe["tool"]["opencv"] if recipe else "?"
    return (
        f"{file}: rebuilt image differs from the manifest's sha256 (the source image differs, or "
        f"the OpenCV build: {cv2.__version__} here, {built_with} in the manifest)"
    )


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


def _counts(
    images: Sequence[ImageItem], rows: Sequence[ImageRow], records: Sequence[Record]
) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for split in _ordered_splits({i.split for i in images}):
        counts[split] = {
            "source_images": sum(1 for i in images if i.split == split),
            "occluded": sum(1 for r in rows if r.split == split and r.occluded),
            "output_images": sum(1 for r in rows if r.split == split),
            "records": sum(1 for r in records if r.split == split),
        }
    return counts


def _ordered_splits(splits: set[str]) -> list[str]:
    from ogor.datasets import SPLITS

    return sorted(splits, key=lambda s: (SPLITS.index(s) if s in SPLITS else 99, s))


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
) -> dict[str, Any]:
    import cv2

    command = ["ogor", "generate", str(source), "--out", str(out)]
    if oil is not None:
        command += ["--oil", str(oil)]
    command += ["--protocol", params["protocol"], "--seed", str(params["seed"])]
    if params["ratio"] is not None:
        command += ["--ratio", repr(params["ratio"])]
    command += ["--mode", params["mode"], "--quality", str(params["quality"])]
    command += ["--feather", repr(params["feather"])]
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
        "source": {
            "root": str(source.resolve()),
            "format": dataset.format.name,
            "annotation": dataset.annotation_path.name,
            "annotation_sha256": source_sha,
            "image_dir": dataset.format.image_dir,
        },
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
