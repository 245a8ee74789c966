"""Identity-balanced batches and same-person captions, the batches some methods train on.

Two things the plain shuffled order of :class:`benchmark.data.sets.EpochSampler` cannot give:

* :class:`IdentityBatchSampler`: every batch holds ``P`` persons x ``K`` samples of each
  (ViTAA's ``TripletSampler``, ``DATALOADER.IMS_PER_ID = 4``; its same-person alignment losses
  need several samples of a person in one batch). Asked for by a preset with the training
  options ``sampler: "identity"`` and ``ims_per_id: K``
  (:class:`benchmark.records.spec.TrainConfig`).
* :func:`same_person_caption`: for one sample, a caption of the same person drawn from
  ``(seed, epoch, sample index)``: of *another image* (SSAN's ``same_id_index``, the weak positive
  of its compound ranking loss; option ``weak_caption: true``) or of *any image* of the person
  (Dual-Path's ``rand_same_class``, which pairs each image with a random caption of its person;
  option ``person_caption: "same-person"``). :class:`benchmark.data.sets.TrainPairs` draws it.

Both are seeded per ``(seed, epoch)`` (and sample), never by a global random state: the batches of
epoch ``e`` depend only on ``(seed, e)``, so a run resumed at an epoch boundary sees exactly the
batches of an uninterrupted one, and the batch sampler runs in the main process, so the number
of DataLoader workers changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from toreid.errors import ToreidError
from toreid.io import stable_seed

#: The training options' values (``TrainConfig.sampler``, ``TrainConfig.person_caption``).
SAMPLERS = ("random", "identity")
PERSON_CAPTIONS = ("own", "same-person")


def person_groups(pids: Sequence[int]) -> dict[int, list[int]]:
    """Person id -> the indices of its samples, persons in ascending id order."""
    groups: dict[int, list[int]] = {}
    for index, pid in enumerate(pids):
        groups.setdefault(int(pid), []).append(index)
    return dict(sorted(groups.items()))


class IdentityBatchSampler(torch.utils.data.Sampler[list[int]]):
    """``P`` persons x ``K`` samples per global batch, sharded over DDP ranks.

    The global batch of ``B = P x K`` samples is the unit: every rank builds the same sequence of
    global batches from ``(seed, epoch)`` and rank ``r`` of ``W`` takes the ``r``-th contiguous
    slice of ``B / W`` samples of each, so the batch the DDP step averages over (the global one)
    is balanced, whatever ``W``. When ``K`` divides ``B / W`` each rank also holds whole persons
    (``K`` samples of each of ``P / W`` persons); otherwise one person's samples straddle two
    ranks. With ``W = 1`` this is the plain sampler: one global batch per step.

    An epoch (ViTAA's ``TripletSampler``, with two changes said below):

    1. each person's samples are shuffled and cut into chunks of ``K``. A person with fewer
       than ``K`` samples repeats its shuffled samples to fill one chunk (ViTAA repeats them
       too); a last incomplete chunk is completed the same way, with the person's first samples
       of the shuffled order, so every sample is seen at least once per epoch (ViTAA drops it);
    2. a batch picks ``P`` distinct persons that still have chunks, at random with probability
       proportional to the chunks they have left (ViTAA: uniformly), and takes one chunk of
       each. Weighting by the chunks left empties the persons together, so an epoch is always
       ``C // P`` batches for ``C`` chunks (a length that depends on the data only, as the
       trainer's per-step schedule needs): if fewer than ``P`` persons still have chunks before
       the last batch, the missing persons are drawn uniformly from the others and give a chunk
       of their own shuffled samples again. The chunks left after ``C // P`` batches (fewer
       than ``P`` in practice) wait for another epoch, where the shuffle differs.

    Args:
        pids: the person id of every sample of the dataset (in dataset order).
        batch_size: the global batch ``B`` (all ranks together); a multiple of ``ims_per_id``
            and of ``world``.
        ims_per_id: ``K``, samples per person in a batch (ViTAA: 4).
        seed, epoch: what the batches are drawn from.
        rank, world: this process's rank and the world size (``benchmark.runtime.dist.World``).
    """

    def __init__(self, pids: Sequence[int], *, batch_size: int, ims_per_id: int, seed: int,
                 epoch: int, rank: int = 0, world: int = 1) -> None:
        if ims_per_id < 1:
            raise ToreidError(f"training option 'ims_per_id': must be >= 1 (got {ims_per_id})")
        if batch_size % ims_per_id:
            raise ToreidError(f"training option 'batch_size': the identity sampler needs a "
                              f"multiple of ims_per_id={ims_per_id} (got {batch_size})")
        if batch_size % world:
            raise ToreidError(f"training option 'batch_size': the global batch {batch_size} does "
                              f"not split evenly over {world} processes")
        self.groups = person_groups(pids)
        self.batch_size, self.ims_per_id = batch_size, ims_per_id
        self.persons_per_batch = batch_size // ims_per_id
        if len(self.groups) < self.persons_per_batch:
            raise ToreidError(
                f"training option 'batch_size': {batch_size} = {self.persons_per_batch} persons x "
                f"{ims_per_id} samples, but the training split has only {len(self.groups)} "
                "persons (lower batch_size or raise ims_per_id)")
        self.seed, self.epoch, self.rank, self.world = seed, epoch, rank, world
        self.num_chunks = sum(-(-max(len(v), ims_per_id) // ims_per_id)
                              for v in self.groups.values())
        self._batches: list[list[int]] | None = None

    def _chunks(self, rng: np.random.Generator) -> list[list[list[int]]]:
        """Each person's shuffled samples in chunks of ``K`` (the last completed, see above)."""
        k, out = self.ims_per_id, []
        for samples in self.groups.values():
            order = [samples[i] for i in rng.permutation(len(samples))]
            count = -(-len(order) // k)
            cycled = [order[i % len(order)] for i in range(count * k)]
            out.append([cycled[c * k:(c + 1) * k] for c in range(count)])
        return out

    def global_batches(self) -> list[list[int]]:
        """Every global batch of the epoch, each ``P`` persons x ``K`` samples."""
        if self._batches is not None:
            return self._batches
        rng = np.random.default_rng(stable_seed(self.seed, f"identity-batches/{self.epoch}"))
        chunks = self._chunks(rng)
        left = np.array([len(c) for c in chunks], dtype=np.int64)
        taken = np.zeros(len(chunks), dtype=np.int64)
        p, batches = self.persons_per_batch, []
        for _ in range(self.num_chunks // p):
            having = np.flatnonzero(left > 0)
            if len(having) >= p:
                weights = left[having] / left[having].sum()
                persons = rng.choice(having, size=p, replace=False, p=weights)
            else:  # too few persons left: others give a chunk again
                others = np.setdiff1d(np.arange(len(chunks)), having)
                persons = np.concatenate([having, rng.choice(others, size=p - len(having),
                                                             replace=False)])
            batch = []
            for person in persons:
                person_chunks = chunks[int(person)]
                batch.extend(person_chunks[int(taken[person]) % len(person_chunks)])
                taken[person] += 1
                left[person] = max(0, left[person] - 1)
            batches.append(batch)
        self._batches = batches
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        share = self.batch_size // self.world
        for batch in self.global_batches():
            yield batch[self.rank * share:(self.rank + 1) * share]

    def __len__(self) -> int:
        return self.num_chunks // self.persons_per_batch


def same_person_caption(index: int, groups: dict[int, list[int]], pid: int,
                        image_of: Sequence[object], *, other_image: bool, seed: int,
                        epoch: int) -> int:
    """The sample whose caption pairs with sample ``index``: one of the same person, drawn from
    ``(seed, epoch, index)``.

    Args:
        index: the sample.
        groups: :func:`person_groups` of the dataset; ``pid`` is the sample's person.
        image_of: a key of each sample's image (samples of one image share it).
        other_image: draw among the samples of the person's *other* images (SSAN's
            ``same_id_index``); a person with one image gives the sample itself (its own
            caption: SSAN's release drops such persons, which would change the training set).
            False: among all the person's samples, the sample itself included (Dual-Path's
            ``rand_same_class``).
    """
    candidates = groups[pid]
    if other_image:
        own = image_of[index]
        candidates = [i for i in candidates if image_of[i] != own]
        if not candidates:
            return index
    kind = "other-image" if other_image else "any-image"
    rng = np.random.default_rng(stable_seed(seed, f"person-caption/{kind}/{epoch}/{index}"))
    return int(candidates[int(rng.integers(len(candidates)))])
