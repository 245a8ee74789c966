"""``ogor synth``: write a complete SYNTHETIC dataset root in one of the three source formats.

Splits are assigned by identity as in the real formats; the root is built aside and renamed into
place, and gets ``SYNTHETIC.md`` and ``synth-attributes.json`` (the ground truth per image).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ogor.datasets import Dataset, Record, get_format, read_dataset
from ogor.errors import DatasetError
from ogor.synth.attributes import (
    PALETTE,
    sample_identities,
    sample_view,
)
from ogor.synth.captions import make_captions
from ogor.synth.person import render_person
from toreid.io import atomic_write_bytes, dumps_json, stable_seed

#: Split shares by identity, per format (the real formats' splits; ICFG-PEDES has no val).
SPLIT_SHARES: dict[str, tuple[tuple[str, float], ...]] = {
    "cuhk-pedes": (("train", 0.7), ("val", 0.1), ("test", 0.2)),
    "icfg-pedes": (("train", 0.75), ("test", 0.25)),
    "rstpreid": (("train", 0.7), ("val", 0.1), ("test", 0.2)),
}
CAPTIONS_PER_IMAGE: dict[str, int] = {"cuhk-pedes": 2, "icfg-pedes": 1, "rstpreid": 2}
#: First person id of each format (CUHK-PEDES counts from 1).
FIRST_ID: dict[str, int] = {"cuhk-pedes": 1, "icfg-pedes": 0, "rstpreid": 0}
CAMERAS: dict[str, int] = {"cuhk-pedes": 2, "icfg-pedes": 6, "rstpreid": 15}
JPEG_QUALITY = 95
ATTRIBUTES_FILE = "synth-attributes.json"
NOTE_FILE = "SYNTHETIC.md"


def split_of_identities(format: str, ids: int) -> list[str]:
    """Split of each identity index: contiguous blocks, train first (as T-ReID code expects).

    Every split of the format gets at least one identity when there are enough (3 for CUHK-PEDES
    and RSTPReid, 2 for ICFG-PEDES); with fewer, train is filled first, then test.
    """
    shares = SPLIT_SHARES[format]
    names = [name for name, _ in shares]
    counts = {name: 0 for name in names}
    if ids >= len(names):
        for name, share in shares[1:]:
            counts[name] = max(1, round(share * ids))
        counts["train"] = ids - sum(counts.values())
    else:
        counts["train"] = 1
        if ids > 1:
            counts["test"] = 1
    out: list[str] = []
    for name in ("train", "val", "test"):
        out += [name] * counts.get(name, 0)
    return out


def image_path(format: str, person_id: int, view: int, split: str) -> str:
    """Image path (relative to ``imgs/``) in the spirit of each real format's layout."""
    camera = (person_id + view) % CAMERAS[format] + 1
    if format == "cuhk-pedes":
        return f"synth/{person_id:05d}_{view + 1:02d}.jpg"
    if format == "icfg-pedes":
        return f"{split}/{person_id:04d}/{person_id:04d}_c{camera:02d}_{view + 1:03d}.jpg"
    return f"{person_id:04d}_c{camera}_{view + 1:04d}.jpg"


def parse_size(text: str) -> tuple[int, int]:
    """``"128x64"`` -> ``(128, 64)`` (height x width)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise DatasetError("--size", f"expected HxW such as 128x64, got {text!r}", field="size")
    return int(parts[0]), int(parts[1])


def _note(format: str, ids: int, views: int, seed: int, size: tuple[int, int]) -> str:
    return (
        "# SYNTHETIC demo data: not a real dataset\n\n"
        "Every image in this folder was rendered by `ogor synth` from randomly drawn attributes;\n"
        "no real person, camera or caption is involved. It exists to run and test the toolkit\n"
        "without the real datasets. Never report results on it as results on "
        "CUHK-PEDES,\nICFG-PEDES or RSTPReid.\n\n"
        f"Made with: `ogor synth --format {format} --ids {ids} --views {views} --seed {seed} "
        f"--size {size[0]}x{size[1]}`\n\n"
        f"`{ATTRIBUTES_FILE}` holds each image's attributes and region boxes.\n"
    )


def is_synthetic(root: str | Path) -> bool:
    """Whether a dataset root was made by ``ogor synth`` (so results on it are demo results)."""
    root = Path(root)
    return (root / NOTE_FILE).is_file() or (root / ATTRIBUTES_FILE).is_file()


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse an output that is a file, or a non-empty folder without ``overwrite``.

    ``overwrite`` deletes the old folder, so it only replaces an earlier synthetic dataset:
    a mistyped ``--out`` must never wipe a real dataset or a source tree.
    """
    if out.exists() and not out.is_dir():
        raise DatasetError(out, "output exists and is not a folder", field="out")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise DatasetError(
            out, "output folder is not empty (choose another --out or pass --overwrite)",
            field="out",
        )
    if not is_synthetic(out):
        raise DatasetError(
            out, f"--overwrite only replaces an earlier synthetic dataset (no {NOTE_FILE} here); "
            "remove the folder yourself if it should go",
            field="out",
        )


def synthesize(
    out: str | Path,
    *,
    format: str = "cuhk-pedes",
    ids: int,
    views: int,
    seed: int = 0,
    size: tuple[int, int] = (128, 64),
    overwrite: bool = False,
) -> Dataset:
    """Write a complete SYNTHETIC dataset root in ``format`` and return it read back.

    Args:
        out: the dataset root to create; must be absent or empty unless ``overwrite``.
        format: ``cuhk-pedes``, ``icfg-pedes`` or ``rstpreid``.
        ids: number of identities.
        views: images per identity.
        seed: the only source of randomness; same arguments give identical bytes.
        size: image height and width in pixels.
        overwrite: replace a non-empty ``out``.

    The root is built in a sibling temporary folder and renamed into place, so ``out`` never
    holds a half-written dataset.
    """
    fmt = get_format(format)
    if ids < 1:
        raise DatasetError("synth", "need at least one identity", field="ids")
    if views < 1:
        raise DatasetError("synth", "need at least one view per identity", field="views")
    height, width = size
    if height < 32 or width < 16:
        raise DatasetError("synth", f"image size {height}x{width} is below 32x16", field="size")
    given = Path(out)
    out = given.resolve()
    if out.parent == out:
        raise DatasetError(out, "cannot write a dataset over a file system root", field="out")
    _check_out(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)

    build = Path(tempfile.mkdtemp(prefix=f".{out.name}.synth-", dir=out.parent))
    try:
        os.chmod(build, 0o755)
        records, ground_truth = _render_images(
            build / fmt.image_dir, format, ids, views, seed, size
        )
        fmt.write(records, build)
        atomic_write_bytes(build / ATTRIBUTES_FILE, dumps_json({
            "format": "ogor-synth-attributes",
            "version": 1,
            "synthetic": True,
            "arguments": {"format": format, "ids": ids, "views": views, "seed": seed,
                          "size": [height, width]},
            "palette": {name: list(rgb) for name, rgb in PALETTE.items()},
            "images": ground_truth,
        }).encode("utf-8"))
        atomic_write_bytes(build / NOTE_FILE, _note(format, ids, views, seed, size).encode())
        _replace_dir(build, out, overwrite)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return read_dataset(given, format)


def _render_images(
    image_root: Path, format: str, ids: int, views: int, seed: int, size: tuple[int, int]
) -> tuple[list[Record], dict[str, Any]]:
    """Render, caption and write every view of every identity; the records and ground truth.

    Each view draws from its own streams (view parameters, pixels, captions) seeded from
    ``(seed, "<kind>/<identity>/<view>")``, so no image depends on any other.
    """
    height, width = size
    people = sample_identities(seed, ids)
    splits = split_of_identities(format, ids)
    first = FIRST_ID[format]
    per_image = CAPTIONS_PER_IMAGE[format]
    records: list[Record] = []
    ground_truth: dict[str, Any] = {}
    for index, person in enumerate(people):
        person_id = first + index
        for view_index in range(views):
            rel = image_path(format, person_id, view_index, splits[index])
            key = f"{index}/{view_index}"
            view = sample_view(np.random.default_rng(stable_seed(seed, f"view/{key}")))
            pixels_rng = np.random.default_rng(stable_seed(seed, f"pixels/{key}"))
            image, regions = render_person(person, view, (height, width), pixels_rng)
            caption_rng = np.random.default_rng(stable_seed(seed, f"caption/{key}"))
            captions = make_captions(person, per_image, caption_rng)
            ok, encoded = cv2.imencode(
                ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY],
            )
            if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
                raise RuntimeError("JPEG encoding failed")
            target = image_root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(encoded.tobytes())
            records.append(Record(rel, person_id, splits[index], tuple(captions)))
            ground_truth[rel] = {
                "id": person_id,
                "view": view_index,
                "attributes": asdict(person),
                "view_params": _rounded(asdict(view)),
                "regions": regions,
            }
    return records, ground_truth


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    def r(v: Any) -> Any:
        if isinstance(v, float):
            return round(v, 4)
        if isinstance(v, (list, tuple)):
            return [r(x) for x in v]
        return v

    return {k: r(v) for k, v in values.items()}


def _replace_dir(build: Path, out: Path, overwrite: bool) -> None:
    """Move the finished ``build`` folder to ``out``, replacing an empty or allowed ``out``."""
    _check_out(out, overwrite)  # again: another process may have filled it meanwhile
    if not out.exists():
        os.rename(build, out)
        return
    if not any(out.iterdir()):
        out.rmdir()
        os.rename(build, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old.rmdir()
    os.rename(out, old)
    os.rename(build, out)
    shutil.rmtree(old, ignore_errors=True)
