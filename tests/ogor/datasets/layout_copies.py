"""Synthetic copies of a dataset in every layout ogor reads, made from ``ogor synth`` output.

Each builder starts from a synthetic root in the base layout (IRRA's file) and writes the same
records the way that layout's users hold them, by hand (not through ``ogor convert``), so a test
reading them checks the readers against the layouts, not against our own writer.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: layout -> (synth format it starts from, expected registry format name)
LAYOUTS: dict[str, tuple[str, str]] = {
    "reid_raw.json": ("cuhk-pedes", "cuhk-pedes"),
    "CUHK-PEDES.json": ("cuhk-pedes", "cuhk-pedes"),
    "textreid": ("cuhk-pedes", "cuhk-pedes-textreid"),
    "caption_all.json": ("cuhk-pedes", "cuhk-pedes-caption-all"),
    "ICFG-PEDES.json": ("icfg-pedes", "icfg-pedes"),
    "ICFG_PEDES.json": ("icfg-pedes", "icfg-pedes"),
    "data_captions.json": ("rstpreid", "rstpreid"),
    "RSTPReid.json": ("rstpreid", "rstpreid"),
}
BASE_NAMES = {"cuhk-pedes": "reid_raw.json", "icfg-pedes": "ICFG-PEDES.json",
              "rstpreid": "data_captions.json"}


def _records(synth_root: Path) -> list[dict[str, Any]]:
    name = next(n for n in BASE_NAMES.values() if (synth_root / n).is_file())
    return json.loads((synth_root / name).read_text(encoding="utf-8"))


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def _renamed(name: str) -> Callable[[Path, Path], None]:
    def build(synth_root: Path, dest: Path) -> None:
        _write(dest / name, _records(synth_root))
    return build


def _textreid(synth_root: Path, dest: Path) -> None:
    """annotations/{split}.json: one entry per caption, as TextReID's loader reads them."""
    by_split: dict[str, list[dict[str, Any]]] = {}
    for image_id, record in enumerate(_records(synth_root)):
        for k, sentence in enumerate(record["captions"]):
            by_split.setdefault(record["split"], []).append({
                "image_id": image_id, "id": record["id"], "file_path": record["file_path"],
                "sentence": sentence, "onehot": [image_id, k, 7],
            })
    for split, entries in by_split.items():
        _write(dest / "annotations" / f"{split}.json", {"annotations": entries})


def _caption_all(synth_root: Path, dest: Path) -> None:
    """caption_all.json: the records without their split field."""
    records = [{k: v for k, v in r.items() if k != "split"} for r in _records(synth_root)]
    _write(dest / "caption_all.json", records)


BUILDERS: dict[str, Callable[[Path, Path], None]] = {
    "reid_raw.json": _renamed("reid_raw.json"),
    "CUHK-PEDES.json": _renamed("CUHK-PEDES.json"),
    "textreid": _textreid,
    "caption_all.json": _caption_all,
    "ICFG-PEDES.json": _renamed("ICFG-PEDES.json"),
    "ICFG_PEDES.json": _renamed("ICFG_PEDES.json"),
    "data_captions.json": _renamed("data_captions.json"),
    "RSTPReid.json": _renamed("RSTPReid.json"),
}


def make_copy(synth_root: Path, layout: str, dest: Path) -> tuple[Path, Path | None]:
    """A copy of ``synth_root`` in ``layout`` at ``dest``: (root, split file or ``None``).

    The caption_all.json copy gets its split file (the synthetic reid_raw.json) outside the
    root, where a user who downloaded it separately would keep it.
    """
    shutil.copytree(synth_root / "imgs", dest / "imgs")
    BUILDERS[layout](synth_root, dest)
    split_file = None
    if layout == "caption_all.json":
        split_file = dest.parent / f"{dest.name}-split" / "reid_raw.json"
        _write(split_file, _records(synth_root))
    return dest, split_file


@pytest.fixture(scope="session")
def synth_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny ``ogor synth`` root per base format (few ids, small images: fast)."""
    from ogor.synth import synthesize

    base = tmp_path_factory.mktemp("synth-layouts")
    return {
        fmt: synthesize(base / fmt, format=fmt, ids=4, views=2, seed=1, size=(48, 24)).root
        for fmt in BASE_NAMES
    }


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root``: proof that nothing changed there."""
    import hashlib

    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }
