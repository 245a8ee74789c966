"""Identity-balanced batches and same-person captions (benchmark.data.samplers,
benchmark.data.sets)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.data.samplers import IdentityBatchSampler, person_groups
from benchmark.data.sets import Augment, EpochSampler, TrainPairs, collate_pairs, train_loader
from ogor.datasets import Record, get_format, read_dataset
from toreid.errors import ToreidError

#: persons with 1, 2, 3, 5, 8 and 13 samples (fewer and more than K = 4), 32 samples in all
UNEVEN = [pid for pid, n in enumerate([1, 2, 3, 5, 8, 13]) for _ in range(n)]


def _sampler(pids, **kw) -> IdentityBatchSampler:
    options = {"batch_size": 8, "ims_per_id": 4, "seed": 3, "epoch": 0} | kw
    return IdentityBatchSampler(pids, **options)


def test_every_batch_is_p_persons_of_k_samples_each() -> None:
    pids = np.repeat(np.arange(40), np.arange(40) % 7 + 1).tolist()  # 1..7 samples a person
    sampler = _sampler(pids, batch_size=16)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 10
    for batch in batches:
        counts = Counter(pids[i] for i in batch)
        assert len(batch) == 16 and len(counts) == 4 and set(counts.values()) == {4}


def test_persons_with_fewer_than_k_samples_repeat_theirs_and_every_sample_is_seen() -> None:
    sampler = _sampler(UNEVEN)
    seen = Counter(i for batch in sampler for i in batch)
    # the one-sample person fills its chunk with itself; the chunks are whole
    groups = person_groups(UNEVEN)
    assert sampler.num_chunks == sum(-(-max(len(v), 4) // 4) for v in groups.values()) == 11
    assert len(sampler) == 11 // 2
    # every sample of an epoch appears (chunk completion), except those of the chunk left over
    assert len(seen) >= len(UNEVEN) - 4
    assert all(i in seen for i in groups[0] + groups[1] + groups[2])  # fewer than K: repeated


def test_same_seed_and_epoch_same_batches_other_epoch_other_batches() -> None:
    pids = np.repeat(np.arange(30), 6).tolist()
    assert list(_sampler(pids)) == list(_sampler(pids))
    assert list(_sampler(pids)) != list(_sampler(pids, epoch=1))
    assert list(_sampler(pids)) != list(_sampler(pids, seed=4))


def test_ranks_split_each_global_batch_in_contiguous_slices() -> None:
    pids = np.repeat(np.arange(30), 5).tolist()
    whole = list(_sampler(pids, batch_size=16))
    ranks = [list(_sampler(pids, batch_size=16, rank=r, world=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(whole)
    for step, batch in enumerate(whole):
        assert ranks[0][step] + ranks[1][step] == batch  # the global batch is P x K
        # K divides B / W here, so each rank holds whole persons
        for r in range(2):
            assert set(Counter(pids[i] for i in ranks[r][step]).values()) == {4}


def test_two_ranks_of_the_plain_sampler_see_each_sample_once() -> None:
    orders = [EpochSampler(10, seed=1, epoch=2, rank=r, world=2).order() for r in range(2)]
    assert sorted(np.concatenate(orders).tolist()) == list(range(10))


@pytest.mark.parametrize(("kw", "field"), [
    ({"batch_size": 10}, "batch_size"),               # not a multiple of K
    ({"batch_size": 8, "world": 3}, "batch_size"),   # does not split over 3 ranks
    ({"batch_size": 32}, "batch_size"),              # 8 persons wanted, 6 exist
    ({"ims_per_id": 0}, "ims_per_id"),
])
def test_impossible_batches_are_one_line_errors_naming_the_option(kw, field) -> None:
    with pytest.raises(ToreidError, match=f"'{field}'") as err:
        _sampler(UNEVEN, **kw)
    assert "\n" not in str(err.value)


def _dataset(root: Path) -> Path:
    """Persons with 3 images, 1 image and 2 images, two captions per image."""
    (root / "imgs").mkdir(parents=True)
    records = []
    for pid, views in ((1, 3), (2, 1), (3, 2), (4, 2)):
        for view in range(views):
            path = f"p{pid}_{view}.png"
            Image.fromarray(np.full((16, 8, 3), 40 * pid, np.uint8)).save(root / "imgs" / path)
            records.append(Record(path, pid, "train",
                                  (f"person {pid} image {view} a", f"person {pid} image {view} b")))
    get_format("cuhk-pedes").write(records, root)
    return root


def _pairs(root: Path, **kw) -> TrainPairs:
    return TrainPairs(read_dataset(root), (16, 8), (0.5,) * 3, (0.5,) * 3, aug=Augment.none(),
                      seed=5, **kw)


def test_weak_caption_is_of_the_same_person_and_another_image(tmp_path) -> None:
    pairs = _pairs(_dataset(tmp_path / "d"), weak_caption=True)
    for epoch in range(3):
        pairs.set_epoch(epoch)
        for index in range(len(pairs)):
            record, own = pairs.samples[index]
            weak = pairs[index]["weak_caption"]
            pid, view = record.person_id, record.image_path.split("_")[1][0]
            if pid == 2:  # one image only: its own caption, as documented
                assert weak == own
            else:
                assert weak.startswith(f"person {pid} ") and f"image {view} " not in weak
    # drawn per sample and epoch: both captions of both other images of person 1 occur
    drawn = set()
    for epoch in range(30):
        pairs.set_epoch(epoch)
        drawn.add(pairs[0]["weak_caption"])
    assert drawn == {f"person 1 image {v} {c}" for v in (1, 2) for c in "ab"}
    batch = collate_pairs([pairs[0], pairs[1]])
    assert len(batch["weak_captions"]) == 2 and batch["captions"][0] == "person 1 image 0 a"


def test_person_caption_pairs_the_image_with_a_random_caption_of_its_person(tmp_path) -> None:
    pairs = _pairs(_dataset(tmp_path / "d"), person_caption="same-person")
    captions = set()
    for epoch in range(6):
        pairs.set_epoch(epoch)
        sample = pairs[0]
        assert sample["caption"].startswith("person 1 ") and sample["pid"] == 0
        captions.add(sample["caption"])
    assert len(captions) > 1  # not the image's own caption every time
    again = _pairs(tmp_path / "d", person_caption="same-person")
    again.set_epoch(5)
    assert again[0]["caption"] == pairs[0]["caption"]  # seeded, not global randomness


def test_identity_loader_with_workers_gives_the_same_balanced_batches(tmp_path) -> None:
    pairs = _pairs(_dataset(tmp_path / "d"))
    loaders = [train_loader(pairs, batch_size=4, epoch=1, seed=2, workers=w, sampler="identity",
                            ims_per_id=2) for w in (0, 2)]
    runs = [[b["pids"].tolist() for b in loader] for loader in loaders]
    assert runs[0] == runs[1] and len(runs[0]) == len(loaders[0]) > 0
    for pids in runs[0]:
        assert sorted(Counter(pids).values()) == [2, 2]


def test_identity_loaders_of_two_ranks_split_the_global_p_by_k_batch(tmp_path) -> None:
    """Under DDP (``train_loader`` with ``rank``/``world``, as every torchrun process builds it)
    the global batch is P x K and each rank loads its half of it, in rank order."""
    pairs = _pairs(_dataset(tmp_path / "d"))
    options = {"batch_size": 4, "epoch": 1, "seed": 2, "sampler": "identity", "ims_per_id": 2}
    whole = [b["pids"].tolist() for b in train_loader(pairs, **options)]
    ranks = [[b["pids"].tolist() for b in train_loader(pairs, rank=r, world=2, **options)]
             for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(whole) > 0
    for step, pids in enumerate(whole):
        assert len(ranks[0][step]) == len(ranks[1][step]) == 2  # batch_size / world each
        assert ranks[0][step] + ranks[1][step] == pids
        assert sorted(Counter(pids).values()) == [2, 2]  # P = 2 persons x K = 2 samples


def test_a_run_on_identity_batches_resumes_exactly(tmp_path) -> None:
    """Batches of epoch e depend on (seed, e) only: stopped after epoch 1 and resumed, a run on
    identity-balanced batches with same-person captions ends with the same weights."""
    import torch

    from benchmark.records.checkpoints import load_checkpoint
    from benchmark.records.spec import RunSpec, TrainConfig
    from benchmark.training.loop import run_training
    from tests.benchmark.helpers import make_color_dataset

    root = make_color_dataset(tmp_path / "root", ids=8, views=2,
                              splits={"train": 4, "val": 0, "test": 4})

    def spec() -> RunSpec:
        cfg = TrainConfig(epochs=2, batch_size=4, lr=1e-3, lr_new_mult=1.0, device="cpu",
                          seed=2, sampler="identity", ims_per_id=2,
                          person_caption="same-person")
        return RunSpec(model="dpath", dataset="colors", dataset_root=root, train=cfg,
                       model_options={"backbone": "tiny", "stage1_epochs": 0}, preset="test")

    straight = run_training(spec(), tmp_path / "a", progress=False)
    assert run_training(spec(), tmp_path / "b", progress=False, stop_after=1) is None
    resumed = run_training(spec(), tmp_path / "b", progress=False, resume=True)
    assert resumed["test"] == straight["test"]
    weights = [load_checkpoint(tmp_path / run / "colors" / "dpath" / "seed2" / "checkpoints"
                               / "last.pt")["model"] for run in ("a", "b")]
    assert all(torch.equal(t, weights[1][name]) for name, t in weights[0].items())
