"""Torch datasets over ``ogor.datasets`` records: training pairs, eval sets, transforms, sampling.

Training follows IRRA: one sample per (image, caption) pair of the train split, person ids
remapped to contiguous train ids ``0..K-1`` (sorted by the original id). Evaluation follows the
T-ReID protocol (FACTS.md section 1): gallery = every image of the split, queries = every caption
of the split, positives = gallery images with the query's person id.

Randomness never depends on worker count or order: the sample order of an epoch is drawn from
(seed, epoch) and each sample's augmentation from (seed, epoch, sample index), so a resumed run
sees exactly the batches an uninterrupted one would, with any ``--workers``. Identity-balanced
batches and same-person captions (a preset's ``sampler``, ``ims_per_id``, ``person_caption`` and
``weak_caption``) come from :mod:`benchmark.data.samplers`, seeded the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from benchmark.data.parsing import ParsingMaps
from benchmark.data.samplers import (
    PERSON_CAPTIONS,
    SAMPLERS,
    IdentityBatchSampler,
    person_groups,
    same_person_caption,
)
from ogor.datasets import Dataset, Record
from ogor.errors import DatasetError, ToreidError
from toreid.io import stable_seed


@dataclass(frozen=True)
class Augment:
    """Training augmentation, preset-dependent.

    As IRRA's torchvision pipeline (``Resize, RandomHorizontalFlip, Pad(10), RandomCrop,
    ToTensor, Normalize, RandomErasing(scale=(0.02, 0.4), value=mean)``):

    Attributes:
        hflip: probability of a horizontal flip (MGCC and IRRA: 0.5).
        pad_crop: pixels of black padding (0 before normalisation, as ``T.Pad`` fills) before
            a random crop back to size (IRRA: 10, at any image size); 0 disables it.
        erase: probability of random erasing (IRRA: 0.5), drawn as torchvision's
            ``RandomErasing`` draws it (area .02-.4 of the image, log-uniform aspect ratio
            0.3-3.3, 10 tries) and filled, after normalisation, with the value IRRA passes:
            the CLIP mean itself (0.481, 0.458, 0.408) per channel; 0 disables it.
    """

    hflip: float = 0.5
    pad_crop: int = 0
    erase: float = 0.0

    @classmethod
    def none(cls) -> Augment:
        return cls(hflip=0.0, pad_crop=0, erase=0.0)


RESAMPLING = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}
#: IRRA's ``RandomErasing(value=mean)``: the fill, in normalised units, is the CLIP mean.
ERASE_VALUE = (0.48145466, 0.4578275, 0.40821073)


def load_image(path: Path, size: tuple[int, int], interpolation: str = "bicubic") -> np.ndarray:
    """Decode an image as RGB uint8 ``[H, W, 3]`` resized to ``size`` (H, W).

    ``interpolation`` is the model's (``model.image_interpolation``): "bicubic" (CLIP, MGCC)
    or "bilinear" (IRRA's ``T.Resize``); PIL's resize, as torchvision's on PIL images.

    Raises a one-line :class:`DatasetError` naming the file when it is missing or corrupt.
    """
    try:
        with Image.open(path) as img:
            return resized_rgb(img, size, interpolation)
    except FileNotFoundError:
        raise DatasetError(path, "image file not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(path, f"cannot decode image: {exc}") from None


def resized_rgb(img: Image.Image, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """An opened image as RGB uint8 ``[H, W, 3]`` resized to ``size`` (H, W): the one decode of
    evaluation and of gallery indexing, so an index of a split ranks as ``bench query``."""
    img = img.convert("RGB")
    if img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), RESAMPLING[interpolation])
    return np.asarray(img, dtype=np.uint8).copy()


class ImageCache:
    """Decoded, resized images kept in memory (small datasets are decoded once, not per epoch).

    Bounded by ``max_bytes``: past it, images are decoded on every access.
    """

    def __init__(self, size: tuple[int, int], max_bytes: int = 2 << 30,
                 interpolation: str = "bicubic") -> None:
        self.size = size
        self.interpolation = interpolation
        self.max_items = max(0, max_bytes // (size[0] * size[1] * 3))
        self._items: dict[Path, np.ndarray] = {}

    def get(self, path: Path) -> np.ndarray:
        cached = self._items.get(path)
        if cached is not None:
            return cached
        array = load_image(path, self.size, self.interpolation)
        if len(self._items) < self.max_items:
            self._items[path] = array
        return array


def to_tensor(array: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` -> normalised float ``[3, H, W]``."""
    pixels = torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.tensor(std, dtype=torch.float32)[:, None, None]
    return (pixels - m) / s


def augment(pixels: torch.Tensor, aug: Augment, rng: np.random.Generator,
            mean: Sequence[float] = (0.0, 0.0, 0.0),
            std: Sequence[float] = (1.0, 1.0, 1.0)) -> torch.Tensor:
    """Apply ``aug`` to one normalised ``[3, H, W]`` image with its own random stream.

    ``mean``/``std`` are the normalisation the image went through, so that padding is black
    (pixel value 0) as ``T.Pad`` pads before ``T.Normalize``.
    """
    _, h, w = pixels.shape
    if aug.hflip and rng.random() < aug.hflip:
        pixels = pixels.flip(-1)
    if aug.pad_crop:
        pad = aug.pad_crop
        black = [-m / s for m, s in zip(mean, std, strict=True)]
        padded = torch.empty(3, h + 2 * pad, w + 2 * pad, dtype=pixels.dtype)
        padded[:] = torch.tensor(black, dtype=pixels.dtype)[:, None, None]
        padded[:, pad:pad + h, pad:pad + w] = pixels
        top, left = int(rng.integers(0, 2 * pad + 1)), int(rng.integers(0, 2 * pad + 1))
        pixels = padded[:, top : top + h, left : left + w]
    if aug.erase and rng.random() < aug.erase:
        pixels = _random_erase(pixels, rng)
    return pixels.contiguous()


def _random_erase(pixels: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """torchvision's ``RandomErasing(scale=(0.02, 0.4), ratio=(0.3, 3.3), value=mean)`` draw:
    up to 10 tries of (area, log-uniform aspect); the first box that fits is filled."""
    _, h, w = pixels.shape
    for _ in range(10):
        area = h * w * rng.uniform(0.02, 0.4)
        ratio = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
        eh, ew = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
        if not (eh < h and ew < w):
            continue
        top, left = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
        pixels = pixels.clone()
        pixels[:, top : top + eh, left : left + ew] = torch.tensor(
            ERASE_VALUE, dtype=pixels.dtype)[:, None, None]
        return pixels
    return pixels


def train_pid_map(records: Sequence[Record]) -> dict[int, int]:
    """Original person id -> contiguous train id, in ascending original id order."""
    return {pid: i for i, pid in enumerate(sorted({r.person_id for r in records}))}


class TrainPairs(torch.utils.data.Dataset):
    """One sample per (image, caption) of the train split, as IRRA trains.

    ``__getitem__`` returns ``(pixels [3,H,W], caption, train pid)``; captions are tokenised per
    batch by the model's tokenizer in the training loop (it needs no worker process).
    """

    def __init__(
        self,
        dataset: Dataset,
        image_size: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
        *,
        aug: Augment,
        seed: int,
        split: str = "train",
        interpolation: str = "bicubic",
        parsing: ParsingMaps | None = None,
        person_caption: str = "own",
        weak_caption: bool = False,
    ) -> None:
        if person_caption not in PERSON_CAPTIONS:
            raise ToreidError(f"training option 'person_caption': must be one of "
                              f"{', '.join(PERSON_CAPTIONS)} (got {person_caption!r})")
        self.dataset = dataset
        self.parsing = parsing
        records = dataset.split(split)
        if not records:
            raise DatasetError(dataset.annotation_path, f"no '{split}' records", field="split")
        self.pid_map = train_pid_map(records)
        self.samples: list[tuple[Record, str]] = [(r, c) for r in records for c in r.captions]
        self.images = ImageCache(tuple(image_size), interpolation=interpolation)
        self.mean, self.std, self.aug, self.seed = tuple(mean), tuple(std), aug, seed
        self.person_caption, self.weak_caption = person_caption, weak_caption
        self.groups = person_groups(self.pids)
        self._image_of = [r.image_path for r, _ in self.samples]
        self.epoch = 0

    @property
    def pids(self) -> list[int]:
        """The train pid of every sample (what :class:`IdentityBatchSampler` groups by)."""
        return [self.pid_map[r.person_id] for r, _ in self.samples]

    @property
    def num_classes(self) -> int:
        return len(self.pid_map)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation stream ``__getitem__`` draws from."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def _person_caption(self, index: int, pid: int, other_image: bool) -> str:
        """A caption of the same person (:func:`benchmark.data.samplers.same_person_caption`)."""
        chosen = same_person_caption(index, self.groups, pid, self._image_of,
                                     other_image=other_image, seed=self.seed, epoch=self.epoch)
        return self.samples[chosen][1]

    def __getitem__(self, index: int) -> dict:
        """``{"image", "caption", "pid"}``; plus ``"parsing"``, the parsing map ``[H, W]``, when
        the model trains against one (the augmentation is replayed on it with the same random
        draws, so flips and crops move it with the pixels; padding and random erasing make
        background), and ``"weak_caption"`` (a caption of another image of the same person) with
        ``weak_caption``. With ``person_caption="same-person"`` the caption is a random one of the
        person's (Dual-Path), not necessarily the image's own."""
        record, caption = self.samples[index]
        pixels = to_tensor(self.images.get(self.dataset.image_file(record)), self.mean, self.std)
        rng = np.random.default_rng(stable_seed(self.seed, f"aug/{self.epoch}/{index}"))
        pid = self.pid_map[record.person_id]
        if self.person_caption == "same-person":
            caption = self._person_caption(index, pid, other_image=False)
        sample: dict = {"caption": caption, "pid": pid}
        if self.weak_caption:
            sample["weak_caption"] = self._person_caption(index, pid, other_image=True)
        if self.parsing is None:
            sample["image"] = augment(pixels, self.aug, rng, self.mean, self.std)
            return sample
        # the same draws again move the parsing map exactly as the pixels (labels + 1, so that
        # padding (0) and the erasing fill (< 0.5) both come out as background)
        replay = np.random.default_rng(stable_seed(self.seed, f"aug/{self.epoch}/{index}"))
        sample["image"] = augment(pixels, self.aug, rng, self.mean, self.std)
        labels = (self.parsing.get(record.image_path) + 1).float().expand(3, -1, -1)
        moved = augment(labels.clone(), self.aug, replay)
        sample["parsing"] = (moved[0].round().long() - 1).clamp_min(0)
        return sample


def collate_pairs(batch: list[dict]) -> dict:
    """Stack a list of :class:`TrainPairs` samples; captions stay strings."""
    out = {
        "images": torch.stack([b["image"] for b in batch]),
        "captions": [b["caption"] for b in batch],
        "pids": torch.tensor([b["pid"] for b in batch], dtype=torch.long),
    }
    if batch and "parsing" in batch[0]:
        out["parsing"] = torch.stack([b["parsing"] for b in batch])
    if batch and "weak_caption" in batch[0]:
        out["weak_captions"] = [b["weak_caption"] for b in batch]
    return out


class EpochSampler(torch.utils.data.Sampler[int]):
    """A shuffled order drawn from (seed, epoch), sharded over DDP ranks.

    Like ``DistributedSampler`` (pads to a multiple of the world size by repeating the head of
    the order) but seeded with :func:`ogor.io.stable_seed`, so the order is the same across
    processes, platforms and resumes.
    """

    def __init__(self, size: int, *, seed: int, epoch: int, rank: int = 0, world: int = 1):
        self.size, self.seed, self.epoch, self.rank, self.world = size, seed, epoch, rank, world
        self.per_rank = math.ceil(size / world)

    def order(self) -> np.ndarray:
        rng = np.random.default_rng(stable_seed(self.seed, f"order/{self.epoch}"))
        perm = rng.permutation(self.size)
        total = self.per_rank * self.world
        if total > self.size:
            perm = np.concatenate([perm, perm[: total - self.size]])
        return perm[self.rank :: self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(int(i) for i in self.order())

    def __len__(self) -> int:
        return self.per_rank


def _seed_worker(worker_id: int) -> None:
    """Workers draw every random number from per-sample streams; fix torch's anyway."""
    torch.manual_seed(torch.initial_seed() % (1 << 62) + worker_id)


def per_process_batch(batch_size: int, world: int) -> int:
    """Each process's share of the global ``batch_size``; refused when it does not divide."""
    if batch_size % world:
        raise ToreidError(f"--batch-size {batch_size}: the global batch must divide by the "
                          f"{world} processes (each takes batch_size / {world} samples)")
    return batch_size // world


def train_loader(
    pairs: TrainPairs,
    *,
    batch_size: int,
    epoch: int,
    seed: int,
    workers: int = 0,
    rank: int = 0,
    world: int = 1,
    sampler: str = "random",
    ims_per_id: int = 4,
) -> torch.utils.data.DataLoader:
    """The DataLoader of one epoch (made per epoch so that workers see the epoch number).

    ``batch_size`` is the GLOBAL batch (the paper's number, all processes together); each of
    the ``world`` processes takes ``batch_size / world`` samples per step (a batch that does
    not divide is refused). ``sampler="random"``: the shuffled order of :class:`EpochSampler`.
    ``sampler="identity"``: :class:`benchmark.data.samplers.IdentityBatchSampler`, global batches of
    P persons x ``ims_per_id`` samples, each process taking its slice.
    """
    pairs.set_epoch(epoch)
    if sampler not in SAMPLERS:
        raise ToreidError(f"training option 'sampler': must be one of {', '.join(SAMPLERS)} "
                          f"(got {sampler!r})")
    per_process = per_process_batch(batch_size, world)
    if sampler == "identity":
        batches = IdentityBatchSampler(pairs.pids, batch_size=batch_size,
                                       ims_per_id=ims_per_id, seed=seed, epoch=epoch,
                                       rank=rank, world=world)
        return torch.utils.data.DataLoader(
            pairs, batch_sampler=batches, num_workers=workers, collate_fn=collate_pairs,
            worker_init_fn=_seed_worker if workers else None, pin_memory=False)
    order = EpochSampler(len(pairs), seed=seed, epoch=epoch, rank=rank, world=world)
    return torch.utils.data.DataLoader(
        pairs, batch_size=per_process, sampler=order, num_workers=workers,
        collate_fn=collate_pairs, drop_last=len(order) > per_process,
        worker_init_fn=_seed_worker if workers else None, pin_memory=False,
    )


@dataclass
class EvalSet:
    """The retrieval problem of one split.

    Attributes:
        split: the split's name.
        gallery: the split's records (one gallery image each), annotation order.
        gallery_pids: ``[G]`` original person ids.
        captions: every caption of the split, record by record.
        query_pids: ``[Q]`` person id of each caption.
        query_image: ``[Q]`` gallery index of each caption's own image.
        occluded: ``[G]`` bool, whether each gallery image is occluded; ``None`` without a
            manifest.
    """

    dataset: Dataset
    split: str
    gallery: list[Record]
    gallery_pids: torch.Tensor
    captions: list[str]
    query_pids: torch.Tensor
    query_image: torch.Tensor
    occluded: torch.Tensor | None = field(default=None)

    @property
    def num_ids(self) -> int:
        return int(torch.unique(self.gallery_pids).numel())

    def image_paths(self) -> list[Path]:
        return [self.dataset.image_file(r) for r in self.gallery]


def eval_set(dataset: Dataset, split: str, flags: dict[str, bool] | None = None) -> EvalSet:
    """Build the eval problem of ``split``; a missing split is a one-line error."""
    records = dataset.split(split)
    if not records:
        present = ", ".join(dataset.splits_present()) or "none"
        raise ToreidError(
            f"{dataset.annotation_path}: dataset has no '{split}' split (splits present: "
            f"{present})"
        )
    captions, qpids, qimage = [], [], []
    for index, record in enumerate(records):
        for caption in record.captions:
            captions.append(caption)
            qpids.append(record.person_id)
            qimage.append(index)
    occluded = None
    if flags is not None:
        missing = [r.image_path for r in records if r.image_path not in flags]
        if missing:
            raise DatasetError(
                dataset.root / "ogor-manifest.json", f"no record for image {missing[0]!r}",
                field="images",
            )
        occluded = torch.tensor([bool(flags[r.image_path]) for r in records])
    return EvalSet(
        dataset=dataset, split=split, gallery=records,
        gallery_pids=torch.tensor([r.person_id for r in records], dtype=torch.long),
        captions=captions, query_pids=torch.tensor(qpids, dtype=torch.long),
        query_image=torch.tensor(qimage, dtype=torch.long), occluded=occluded,
    )


class GalleryImages(torch.utils.data.Dataset):
    """Eval-time images: resized and normalised, no augmentation."""

    def __init__(self, paths: Sequence[Path], size: tuple[int, int], mean, std,
                 interpolation: str = "bicubic") -> None:
        self.paths, self.size, self.mean, self.std = list(paths), tuple(size), mean, std
        self.interpolation = interpolation

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return to_tensor(load_image(self.paths[index], self.size, self.interpolation),
                         self.mean, self.std)
