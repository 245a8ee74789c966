"""``ogor convert``: write a copy of a dataset in another layout, never touching the source.

The copy is built in a hidden sibling folder and renamed to ``--out`` when complete, so a
failure leaves nothing that looks finished. Images are hard links where the file system allows
(no space, no re-encoding), else byte copies. ``ogor-convert.json`` records what was read (the
source's layout, every annotation file's and the split file's sha256) and what was written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ogor import __version__
from ogor.datasets import annotation_sha256, get_format, read_dataset
from ogor.datasets.base import Dataset
from ogor.datasets.layouts import CAPTION_ALL
from ogor.datasets.published import split_counts
from ogor.errors import DatasetError
from ogor.generation.journal import _check_locations
from toreid.io import atomic_write_bytes, dumps_json, sha256_file

RECORD_NAME = "ogor-convert.json"


@dataclass(frozen=True)
class ConvertSummary:
    """What ``convert_dataset`` wrote."""

    out: Path
    format: str
    annotation: Path
    images: int
    linked: int


def check_output_location(source: Path, out: Path, overwrite: bool) -> None:
    """Where ``ogor convert`` may write: never inside the source (nor around it), and over an
    existing folder only with ``overwrite`` when an earlier convert made it.

    The single place this rule lives for ``convert``: swap it for the toolkit-wide helper when
    that lands.
    """
    _check_locations(source, out)
    if not out.exists():
        return
    if not out.is_dir():
        raise DatasetError(out, "output path exists and is not a folder", field="out")
    if any(out.iterdir()):
        if not overwrite:
            raise DatasetError(out, "output folder is not empty (pass --overwrite)", field="out")
        if not (out / RECORD_NAME).is_file():
            raise DatasetError(
                out, f"--overwrite replaces only a folder made by ogor convert (no {RECORD_NAME})",
                field="out",
            )


def convert_dataset(
    source_root: str | Path,
    out_root: str | Path,
    to: str,
    *,
    format: str | None = None,
    split_file: str | Path | None = None,
    annotation_name: str | None = None,
    overwrite: bool = False,
) -> ConvertSummary:
    """Write ``source_root`` in the layout ``to`` at ``out_root``.

    Args:
        source_root: a dataset root in any layout (detected unless ``format`` is given).
        out_root: the folder to create; never inside the source.
        to: the target layout, a layout of the same dataset (CUHK-PEDES, ICFG-PEDES, RSTPReid).
        format: the source layout, when detection is not wanted.
        split_file: the split of a split-less source (``caption_all.json``).
        annotation_name: which of the target's file names to write (``CUHK-PEDES.json`` for the
            MGCC release); the first one by default.
        overwrite: replace an earlier ``ogor convert`` output at ``out_root``.

    Raises:
        DatasetError: a refused request or an unusable source (one line naming the file).
    """
    source, out = Path(source_root), Path(out_root)
    target = get_format(to)
    if target.name == CAPTION_ALL.name:
        raise DatasetError(
            to, "caption_all.json holds no split, so a copy in it could not be read back; "
            "convert to cuhk-pedes (reid_raw.json) instead", field="to",
        )
    if annotation_name is not None and annotation_name not in target.annotation_names:
        raise DatasetError(
            annotation_name, f"not a {target.name} file name (valid: "
            + ", ".join(target.annotation_names) + ")", field="annotation-name",
        )
    if not source.is_dir():
        raise DatasetError(source, "source dataset folder not found")
    check_output_location(source, out, overwrite)
    dataset = read_dataset(source, format, split_file)
    _check_target(dataset, target)
    out.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{out.name}.convert-", dir=out.parent))
    try:
        os.chmod(build, 0o755)
        annotation = target.write(list(dataset.records), build, annotation_name)
        images, linked = _copy_images(dataset, build / target.image_dir)
        written = target.annotation_files(build)
        atomic_write_bytes(build / RECORD_NAME, dumps_json(
            _record(dataset, split_file, target.name, build, written, images, linked)
        ).encode("utf-8"))
        if out.exists():
            shutil.rmtree(out)
        os.replace(build, out)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return ConvertSummary(out, target.name, out / annotation.relative_to(build), images, linked)


def _check_target(dataset: Dataset, target: object) -> None:
    source_name = dataset.format.dataset
    target_name = getattr(target, "dataset", None)
    if target_name != source_name:
        raise DatasetError(
            dataset.root, f"is a {source_name} copy ({dataset.format.name}); --to "
            f"{getattr(target, 'name', '?')} is a layout of {target_name}", field="to",
        )
    allowed = getattr(target, "splits", ())
    extra = sorted({r.split for r in dataset.records} - set(allowed))
    if extra:
        raise DatasetError(
            dataset.annotation_path, f"split {extra[0]!r} does not exist in the "
            f"{getattr(target, 'name', '?')} layout", field="split",
        )


def _copy_images(dataset: Dataset, image_root: Path) -> tuple[int, int]:
    """Hard-link (else copy) every distinct image; (images, hard links)."""
    done: set[str] = set()
    linked = 0
    for record in dataset.records:
        if record.image_path in done:
            continue
        done.add(record.image_path)
        src = dataset.image_file(record)
        if not src.is_file():
            raise DatasetError(src, "image file not found", field=dataset.format.path_key)
        dst = image_root / record.image_path
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
            linked += 1
        except OSError:
            shutil.copyfile(src, dst)
    return len(done), linked


def _record(
    dataset: Dataset,
    split_file: str | Path | None,
    target: str,
    build: Path,
    written: list[Path],
    images: int,
    linked: int,
) -> dict[str, object]:
    split = None
    if split_file is not None:
        split = {"path": str(Path(split_file).resolve()), "sha256": sha256_file(split_file)}
    return {
        "format": "ogor-convert-record",
        "version": 1,
        "tool": {"name": "ogor", "version": __version__},
        "source": {
            "root": str(dataset.root.resolve()),
            "format": dataset.format.name,
            "annotation_sha256": annotation_sha256(dataset.annotation_path),
            "files": [
                {"path": f.relative_to(dataset.root).as_posix(), "sha256": sha256_file(f)}
                for f in dataset.annotation_files
            ],
            "split_file": split,
        },
        "target": {
            "format": target,
            "files": [
                {"path": f.relative_to(build).as_posix(), "sha256": sha256_file(f)}
                for f in written
            ],
        },
        "counts": split_counts(dataset.records),
        "images": {"count": images, "hard_linked": linked, "copied": images - linked},
    }
