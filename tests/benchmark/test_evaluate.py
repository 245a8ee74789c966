"""Evaluation: chunked equals unchunked; the occluded/clean split sums back to the whole."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.data.sets import eval_set
from benchmark.evaluation.evaluate import encode_images, encode_texts, evaluate, rank_all
from benchmark.evaluation.metrics import retrieval_metrics, summarize
from models import build_model
from ogor.datasets import read_dataset
from tests.benchmark.helpers import make_color_dataset

KEYS = ("R@1", "R@5", "R@10", "mAP", "mINP", "Rsum")


@pytest.fixture(scope="module")
def mgcc_and_problem(color_dataset):
    torch.manual_seed(0)
    model = build_model("mgcc", backbone="tiny", rho_image=0.5, rho_text=0.5).eval()
    dataset = read_dataset(color_dataset)
    return model, dataset


def test_chunked_equals_unchunked(mgcc_and_problem):
    model, dataset = mgcc_and_problem
    problem = eval_set(dataset, "test")
    images = encode_images(model, problem.image_paths(), device=torch.device("cpu"),
                           batch_size=5, progress=False)
    texts = encode_texts(model, problem.captions, device=torch.device("cpu"), batch_size=7,
                         progress=False)
    # Encoding in batches equals encoding at once.
    whole_images = encode_images(model, problem.image_paths(), device=torch.device("cpu"),
                                 batch_size=1000, progress=False)
    torch.testing.assert_close(images.pooled, whole_images.pooled, rtol=1e-5, atol=1e-6)
    full = model.similarity(texts, images)  # one block, the full Q x G matrix
    reference = retrieval_metrics(full, problem.query_pids, problem.gallery_pids, chunk=10**6)
    cpu = torch.device("cpu")
    for query_chunk, gallery_chunk in ((1, 1), (3, 2), (7, None), (10**6, 10**6)):
        stats = rank_all(model, texts, images, problem.query_pids, problem.gallery_pids,
                         device=cpu, query_chunk=query_chunk, gallery_chunk=gallery_chunk,
                         progress=False)
        got = summarize(stats)
        for key in KEYS:
            assert got[key] == pytest.approx(reference[key], abs=1e-9), (key, query_chunk)
    # And the evaluate() entry point agrees with the reference.
    result = evaluate(model, problem, batch_size=4, query_chunk=5, progress=False)
    for key in KEYS:
        assert result.t2i[key] == pytest.approx(reference[key], abs=1e-9)
    assert result.t2i["num_queries"] == len(problem.captions)
    assert result.t2i["num_gallery"] == len(problem.gallery)


def test_occluded_and_clean_split_sum_back(mgcc_and_problem):
    model, dataset = mgcc_and_problem
    test = dataset.split("test")
    flags = {r.image_path: i % 3 == 0 for i, r in enumerate(dataset.records)}
    problem = eval_set(dataset, "test", flags)
    result = evaluate(model, problem, batch_size=8, query_chunk=4, i2t=True, progress=False)
    occ, clean = result.occlusion["occluded"], result.occlusion["clean"]
    expected_occluded = sum(len(r.captions) for r in test if flags[r.image_path])
    assert occ["num_queries"] == expected_occluded > 0
    assert occ["num_queries"] + clean["num_queries"] == result.t2i["num_queries"]
    n = result.t2i["num_queries"]
    for key in KEYS:
        combined = (occ[key] * occ["num_queries"] + clean[key] * clean["num_queries"]) / n
        assert combined == pytest.approx(result.t2i[key], abs=1e-9)
    # i2t: every gallery image is a query over the captions.
    assert result.i2t["num_queries"] == len(problem.gallery)
    assert 0 <= result.i2t["R@1"] <= 100


def test_dataset_without_test_split_is_a_clear_error(tmp_path):
    from ogor.errors import ToreidError

    root = make_color_dataset(tmp_path / "d", ids=4, views=1,
                              splits={"train": 3, "val": 1, "test": 0})
    with pytest.raises(ToreidError, match="no 'test' split"):
        eval_set(read_dataset(root), "test")


def test_stats_keep_topk_in_rank_order():
    # A hand-made similarity: the top-k indices come out in descending score order.
    from benchmark.evaluation.metrics import rank_chunk

    sim = torch.tensor([[0.1, 0.9, 0.5, 0.7]])
    stats = rank_chunk(sim, torch.tensor([1]), torch.tensor([0, 0, 1, 0]), keep_topk=3)
    assert stats.topk.tolist() == [[1, 3, 2]]
    assert stats.first_rank.tolist() == [3]
    assert np.isclose(stats.ap[0], 1 / 3)
