"""``bench index``: encode a gallery with a run's model into an index folder, resumably.

A gallery is a dataset's split (``--dataset NAME=ROOT --split test``: the split's images in the
evaluator's order, decoded as the evaluator decodes them, so an index of a test split ranks as
``bench query`` does) or any folder of images (``--images FOLDER``: every image file below it,
sorted by relative path, decoded as ``ogor extract-oil`` decodes photos: EXIF orientation
applied; an unreadable file is skipped and listed in the record, as ``extract-oil`` does).

Images already in the index (same source key and same bytes) are not encoded again: running the
same command after an interruption resumes, and running it with new images appends them. An
index belongs to one run's weights; another run is refused in one line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm import tqdm

from benchmark.data.sets import resized_rgb, to_tensor
from benchmark.search import first_stage
from benchmark.search.store import (
    FAISS_FILE,
    RECORD,
    GalleryIndex,
    GalleryIndexError,
    Shapes,
    check_same_weights,
    features_to_arrays,
)
from ogor.errors import DatasetError
from toreid.errors import ToreidError


@dataclass(frozen=True)
class GalleryItem:
    """One image to index: its key (unique within the index), its file, how to decode it."""

    key: str
    path: Path
    exif: bool
    source: str


def dataset_items(name: str, root: Path, split: str) -> list[GalleryItem]:
    """The images of a dataset split, in the evaluator's gallery order."""
    from benchmark.data.sets import eval_set
    from ogor.datasets import read_dataset

    problem = eval_set(read_dataset(root), split)
    return [GalleryItem(key=f"{name}:{split}:{record.image_path}",
                        path=problem.dataset.image_file(record), exif=False, source=name)
            for record in problem.gallery]


def folder_items(folder: Path) -> list[GalleryItem]:
    """Every image file under ``folder`` (recursively, sorted), as ``extract-oil`` scans."""
    from ogor.extract.inputs import scan_images

    try:
        refs = scan_images(folder)
    except ToreidError as exc:
        raise ToreidError(f"--images: {exc}") from None
    root = Path(folder).resolve()
    return [GalleryItem(key=f"{root.as_posix()}/{ref.key}", path=ref.path, exif=True,
                        source=str(root)) for ref in refs]


def decode(item: GalleryItem, model: torch.nn.Module
           ) -> tuple[torch.Tensor, tuple[int, int], str]:
    """The model's input tensor of one image, the image's (width, height) and the sha256 of
    its file, from one read of the file."""
    try:
        data = Path(item.path).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if item.exif:  # a photo: upright, as extract-oil reads it
                image = ImageOps.exif_transpose(image)
            original = image.size
            pixels = resized_rgb(image, tuple(model.image_size),
                                 getattr(model, "image_interpolation", "bicubic"))
    except FileNotFoundError:
        raise DatasetError(item.path, "image file not found") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DatasetError(item.path, f"cannot decode image: {exc}") from None
    return (to_tensor(pixels, model.image_mean, model.image_std), original,
            hashlib.sha256(data).hexdigest())


def pad_tokens(features: Any, width: int) -> Any:
    """Features with exactly ``width`` token slots (``Features.cat`` pads to the widest part
    with masked-out slots)."""
    if features.num_tokens == width:
        return features
    if features.num_tokens > width:
        raise GalleryIndexError(f"a batch has {features.num_tokens} token slots, the index "
                          f"stores {width}")
    return features.padded_to(width)


@dataclass
class IndexReport:
    """What one ``bench index`` call did."""

    added: int
    already: int
    skipped: list[dict[str, str]]
    count: int
    seconds: float


@torch.no_grad()
def encode_into(index: GalleryIndex, model: torch.nn.Module, items: list[GalleryItem], *,
                device: torch.device, batch_size: int = 64, progress: bool = True,
                log: Callable[[str], None] = print) -> IndexReport:
    """Encode the items the index does not hold yet, batch by batch; then bring the faiss
    index up to date. Interrupting loses at most the batch in flight."""
    started = time.perf_counter()
    index.cut_to_count()
    stored = {entry["key"]: entry["sha256"] for entry in index.images()}
    todo, already = [], 0
    for item in items:
        if item.key in stored:
            already += 1
        else:
            todo.append(item)
    skipped: list[dict[str, str]] = []
    model.eval()
    bar = tqdm(total=len(todo), desc="index images", unit="img", disable=not progress)
    for start in range(0, len(todo), batch_size):
        batch, entries, pixels = todo[start:start + batch_size], [], []
        for item in batch:
            try:
                tensor, (width, height), digest = decode(item, model)
            except DatasetError as exc:
                if not item.exif:  # a dataset's image must be there: the split would be wrong
                    raise
                skipped.append({"path": str(item.path), "reason": str(exc)})
                continue
            pixels.append(tensor)
            entries.append({"key": item.key, "path": str(Path(item.path).resolve()),
                            "width": width, "height": height, "source": item.source,
                            "sha256": digest})
        if pixels:
            features = model.encode_images(torch.stack(pixels).to(device)).to("cpu",
                                                                              torch.float32)
            features = pad_tokens(features, index.shapes.num_tokens)
            index.append(features_to_arrays(model, features), entries)
        bar.update(len(batch))
    bar.close()
    if skipped:
        index.record.setdefault("skipped", []).extend(skipped)
        for entry in skipped:
            log(f"skipped {entry['path']}: {entry['reason']}")
    update_faiss(index)
    return IndexReport(added=len(todo) - len(skipped), already=already, skipped=skipped,
                       count=index.count, seconds=time.perf_counter() - started)


def update_faiss(index: GalleryIndex) -> None:
    """Add the rows the faiss file lacks (or rebuild it when missing); record completion."""
    spec = index.record["faiss"]
    path = index.folder / FAISS_FILE
    vectors = index.vectors()
    indexed = int(index.record.get("indexed", 0))
    if not path.exists() or indexed > index.count or indexed == 0:
        faiss_index = first_stage.build(spec["kind"], spec["params"], np.asarray(vectors))
    else:
        faiss_index = first_stage.read(str(path))
        first_stage.add(faiss_index, np.asarray(vectors[indexed:]))
    tmp = path.with_name(path.name + ".tmp")
    first_stage.write(faiss_index, str(tmp))
    tmp.replace(path)
    index.record["indexed"] = index.count
    index.record["complete"] = True
    index.save_record()


def open_or_create(out: Path, *, run: Path, model_name: str, model: torch.nn.Module,
                   weights_sha256: str, sample: Any | None, faiss_kind: str,
                   faiss_params: dict[str, Any], token_dtype: str,
                   sources: list[dict[str, str]], toolkit: str) -> GalleryIndex:
    """The index at ``out``: an existing one (its run checked), or a new one whose shapes are
    those of ``sample`` (the features of one encoded image)."""
    if (out / RECORD).exists():
        index = GalleryIndex.open(out)
        check_same_weights(index, run, weights_sha256)
        known = {(s["kind"], s["where"], s.get("split")) for s in index.record["sources"]}
        for source in sources:
            if (source["kind"], source["where"], source.get("split")) not in known:
                index.record["sources"].append(source)
        index.record["complete"] = False
        index.save_record()
        return index
    assert sample is not None, "a new index needs the features of one image"
    if out.exists() and any(out.iterdir()):
        raise GalleryIndexError(f"{out}: the folder is not empty and holds no gallery index "
                          "(choose a new --out)")
    vectors = model.search_vectors(sample)
    shapes = Shapes(vector_dim=int(vectors.shape[1]), pooled_dim=int(sample.pooled.shape[1]),
                    num_tokens=int(sample.num_tokens), token_dim=int(sample.tokens.shape[2]),
                    token_dtype=token_dtype)
    return GalleryIndex.create(out, {
        "run": str(Path(run).resolve()), "model": model_name,
        "model_config": model.config.to_dict(), "weights_sha256": weights_sha256,
        "shapes": dataclasses.asdict(shapes), "faiss": {"kind": faiss_kind, "params": faiss_params,
                                              "metric": "inner product"},
        "second_stage": bool(model.has_second_stage(sample)), "sources": sources,
        "toolkit_version": toolkit, "skipped": []})
