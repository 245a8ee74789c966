"""Derived test sets: a base test set (clean copy or occluded version) under one corruption.

Every derived set is keyed by content and recipe, like the occluded versions: the base's content
digest (annotation sha256 + the sha256 of every image, in order), the split, the corruption and
severity, the seed, that severity's parameters from the table, the library versions and the
toolkit version. The key names a folder (images) or a file (captions) under
``<cache>/robustness/derived/``; a complete one is reused, a changed base or table makes a new
one. Nothing is written inside the base or the source: images go to a ``.partial`` folder that
is renamed into place when complete, caption files are written atomically.

A perturbed-caption file records, for every query, the original caption, the text the model
saw and any fallback, so a reader can see exactly what was evaluated.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from toreid.io import atomic_write_json, sha256_file

DERIVED_DIR = "derived"
RECORD_NAME = "corruption.json"
#: JPEG quality of corrupted images written as .jpg (the same default as ``ogor generate``).
JPEG_QUALITY = 95
_DIGESTS: dict[tuple[str, str, float], str] = {}


def _fingerprint(recipe: dict[str, Any]) -> str:
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _library_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def content_digest(root: Path, split: str) -> str:
    """sha256 over the annotation's sha256 and every ``split`` image's sha256, record order;
    memoised per (root, split, annotation mtime) within a process."""
    from ogor.datasets import annotation_sha256, read_dataset

    dataset = read_dataset(root)
    memo = (str(Path(root).resolve()), split, dataset.annotation_path.stat().st_mtime)
    if memo not in _DIGESTS:
        digest = hashlib.sha256(annotation_sha256(dataset.annotation_path).encode())
        for record in dataset.split(split):
            digest.update(f"\x00{record.image_path}\x00".encode())
            digest.update(sha256_file(dataset.image_file(record)).encode())
        _DIGESTS[memo] = digest.hexdigest()
    return _DIGESTS[memo]


def recipe_of(base: Path, split: str, corruption: str, severity: int, seed: int) -> dict[str, Any]:
    """Everything a derived set's content depends on."""
    from benchmark.evaluation.corruptions.table import severity_params, table_sha256
    from benchmark.evaluation.corruptions.text import VOCABULARY_FILE
    from benchmark.records.results import toolkit_version

    modality, name = corruption.split(":", 1)
    recipe = {
        "base": content_digest(base, split), "split": split, "corruption": corruption,
        "severity": int(severity), "seed": int(seed),
        "params": severity_params(modality, name, severity), "toreid": toolkit_version(),
    }
    if modality == "image":
        recipe.update(albumentations=_library_version("albumentations"),
                      opencv=_library_version("opencv-python-headless"), quality=JPEG_QUALITY)
    else:
        recipe["vocabulary_sha256"] = sha256_file(VOCABULARY_FILE)
        recipe["table_sha256"] = table_sha256()
    return recipe


def _name(corruption: str, severity: int, seed: int, recipe: dict[str, Any]) -> str:
    modality, name = corruption.split(":", 1)
    return f"{modality}-{name}-s{severity}-seed{seed}-{_fingerprint(recipe)[:12]}"


def corrupted_images(base: Path, split: str, corruption: str, severity: int, seed: int,
                     cache: Path) -> Path:
    """A dataset root: ``base``'s annotation and its ``split`` images under the corruption.

    The random draw of each image is keyed by ``split/<image path>``, so an occluded version
    and the clean copy get the same draw for the same image.
    """
    from benchmark.evaluation.corruptions.image import corrupt_image
    from ogor.datasets import read_dataset
    from ogor.imageio import encode_image, read_image

    base = Path(base)
    recipe = recipe_of(base, split, corruption, severity, seed)
    out = Path(cache) / "robustness" / DERIVED_DIR / _name(corruption, severity, seed, recipe)
    if (out / RECORD_NAME).is_file():
        return out
    dataset = read_dataset(base)
    partial = out.parent / f"{out.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    for member in dataset.annotation_files or (dataset.annotation_path,):
        target = partial / Path(member).relative_to(base)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(member, target)
    name = corruption.split(":", 1)[1]
    images = {}
    for record in dataset.split(split):
        source = dataset.image_file(record)
        pixels = corrupt_image(read_image(source), name, severity, seed,
                               f"{split}/{record.image_path}")
        data = encode_image(pixels, source.suffix, JPEG_QUALITY, source)
        target = partial / dataset.format.image_dir / record.image_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        images[record.image_path] = hashlib.sha256(data).hexdigest()
    atomic_write_json(partial / RECORD_NAME, {"recipe": recipe, "images": images})
    shutil.rmtree(out, ignore_errors=True)
    try:
        os.replace(partial, out)
    except OSError:  # another process finished the same set first
        shutil.rmtree(partial, ignore_errors=True)
    return out


def perturbed_captions(base: Path, split: str, corruption: str, severity: int, seed: int,
                       cache: Path) -> tuple[list[str], Path]:
    """Every query caption of ``split`` (eval order: record by record) under the perturbation,
    and the file recording them (original, perturbed, fallback per query)."""
    from benchmark.evaluation.corruptions.text import perturb_caption
    from ogor.datasets import read_dataset
    from ogor.io import read_json

    base = Path(base)
    recipe = recipe_of(base, split, corruption, severity, seed)
    path = (Path(cache) / "robustness" / DERIVED_DIR /
            f"{_name(corruption, severity, seed, recipe)}.json")
    if path.is_file():
        return [q["perturbed"] for q in read_json(path, "perturbed captions")["queries"]], path
    name = corruption.split(":", 1)[1]
    queries = []
    for record in read_dataset(base).split(split):
        for index, caption in enumerate(record.captions):
            made = perturb_caption(name, severity, caption, seed,
                                   f"{split}/{record.image_path}/{index}")
            queries.append({"image": record.image_path, "caption": index, "original": caption,
                            "perturbed": made.text, "fallback": made.fallback})
    atomic_write_json(path, {"recipe": recipe, "queries": queries})
    return [q["perturbed"] for q in queries], path
