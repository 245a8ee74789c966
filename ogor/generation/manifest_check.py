"""``--from-manifest`` checks the manifest before it builds anything.

A manifest records its seed and protocol *and* the selection and placements they produced.
Rebuilding used to trust the recorded selection, so a manifest whose seed (or selection) had
been edited rebuilt a dataset that ``ogor verify`` then rejects. :func:`check_manifest_recipe`
re-derives, from the manifest's own seed, protocol, ratio and mode and from the source, the
list of output images (which are occluded, under which names) and every occluded image's
placement, and refuses the first difference with one line naming the manifest and the image,
before any output is written.

Decision (issue 16): there is no "edited on purpose" escape. A manifest is a record of what a
seed produced, not a recipe to hand-edit: an edited one could never pass ``ogor verify``, so a
dataset built from it would be unverifiable. A custom selection belongs in a protocol (a
registered, seeded rule), whose manifests then verify like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ogor.datasets import Dataset
from ogor.errors import GenerationError
from toreid.io import sha256_file

_TASK_FIELDS = ("path", "source_path", "split", "person_id", "occlude")


def check_manifest_recipe(
    manifest_path: str | Path | None,
    recorded: Sequence[Any],
    images: Sequence[Any],
    dataset: Any,
    params: dict[str, Any],
    ratio: float,
    protocol: Any,
    library: Any,
) -> None:
    """Refuse a manifest whose images or placements are not the ones its seed produces.

    Args:
        manifest_path: the manifest (for the message).
        recorded: the output images the manifest lists (tasks with ``path``, ``source_path``,
            ``split``, ``person_id``, ``occlude`` and the recorded ``placement``).
        images: the source's images (``ogor.occlude.selection.collect_images``).
        dataset: the source dataset (its image folder gives the sizes for the placements).
        params: the manifest's recipe (``seed``, ``mode``); ``ratio`` as a number.
        protocol, library: what the selection and the placements are re-derived from.

    Raises:
        GenerationError: the first difference, naming the manifest and the image.
    """
    from ogor.generation.plan import _plan
    from ogor.imageio import image_seed

    seed = int(params["seed"])
    selected = protocol.select(images, float(ratio), seed)
    planned = _plan(images, selected, params["mode"], dataset.annotation_path)
    image_root = Path(dataset.image_root)
    by_path = {t.path: t for t in recorded}
    wanted = {t.path: t for t in planned}
    for path in sorted(set(by_path) | set(wanted)):
        if path not in by_path:
            raise GenerationError(f"{manifest_path}: image '{path}' is missing from the manifest, "
                                  "but its seed and the source produce it (an edited manifest?)")
        if path not in wanted:
            raise GenerationError(f"{manifest_path}: image '{path}' is listed, but its seed and "
                                  "the source do not produce it (an edited manifest?)")
        for field in _TASK_FIELDS:
            have, want = getattr(by_path[path], field), getattr(wanted[path], field)
            if have != want:
                state = {"occlude": "field 'occluded'"}.get(field, f"field '{field}'")
                raise GenerationError(
                    f"{manifest_path}: image '{path}': {state} is {have!r}, but the manifest's "
                    f"seed {seed} and protocol '{protocol.name}' give {want!r} (an edited "
                    "manifest? it would not pass 'ogor verify')")
    for task in sorted((t for t in recorded if t.occlude), key=lambda t: t.path):
        derived = _placement(image_root / task.source_path, seed, task, protocol, library,
                             image_seed)
        if derived != task.placement:
            raise GenerationError(
                f"{manifest_path}: image '{task.path}': the recorded placement differs from the "
                f"one its seed {seed} gives (an edited manifest? it would not pass 'ogor verify')")


def _placement(file: Path, seed: int, task: Any, protocol: Any, library: Any,
               image_seed: Any) -> dict[str, Any]:
    from PIL import Image

    try:
        with Image.open(file) as image:
            width, height = image.size
    except OSError as exc:
        raise GenerationError(f"{file}: cannot read image ({exc})") from None
    rng = np.random.default_rng(image_seed(seed, task.split, task.source_path))
    return protocol.place(rng, (height, width), library).to_json()


def split_file_for(given: str | Path | None, recipe: dict[str, Any] | None) -> Path | None:
    """The split file of a split-less source: the one given, else on a rebuild the one the
    manifest records, when it is still there with the same sha256."""
    if given is not None:
        if not Path(given).is_file():
            raise GenerationError(f"{given}: split file not found (option --split-file)")
        return Path(given)
    recorded = (recipe or {}).get("source", {}).get("split_file")
    if recorded is None or not Path(recorded["path"]).is_file():
        return None
    if sha256_file(recorded["path"]) != recorded["sha256"]:
        raise GenerationError(
            f"{recorded['path']}: split file differs from the one the manifest records (sha256); "
            "pass the one it was made with (--split-file)"
        )
    return Path(recorded["path"])


def check_recipe(
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


def rebuild_mismatch(file: Path, recipe: dict[str, Any] | None) -> str:
    import cv2

    built_with = recipe["tool"]["opencv"] if recipe else "?"
    return (
        f"{file}: rebuilt image differs from the manifest's sha256 (the source image differs, or "
        f"the OpenCV build: {cv2.__version__} here, {built_with} in the manifest)"
    )
