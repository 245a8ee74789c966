"""Gallery search (issue 25): ``bench index`` / ``bench search`` against ``bench query`` and
``bench eval``, an index of a plain photo folder, appending, resuming, and refusals.

The run is a tiny MGCC with random weights saved to and loaded from a real run folder: MGCC has
a second stage (its fused similarity over token features), so re-ranking really changes order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from benchmark.cli import main
from tests.benchmark.helpers import make_color_dataset, make_random_run


def _bench(*args: str) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def _refused(*args: str) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture(scope="module")
def gallery(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("search")
    dataset = make_color_dataset(base / "ds", ids=32, views=3)
    run = make_random_run(base / "run", seed=0)
    index = base / "index"
    _bench("index", "--run", run, "--dataset", f"ds={dataset}", "--out", index,
           "--token-dtype", "float32", "--device", "cpu", "--quiet")
    return {"base": base, "dataset": dataset, "run": run, "index": index}


def _search(index: Path, text: str, topk: int, rerank: int) -> dict:
    return json.loads(_bench("search", index, text, "--topk", topk, "--rerank", rerank,
                             "--json", "--device", "cpu"))


def test_search_of_the_whole_gallery_is_bench_querys_order(gallery):
    from benchmark.data.sets import eval_set
    from benchmark.evaluation.query import rank_text
    from benchmark.records.rebuild import rebuild_from_run
    from ogor.datasets import read_dataset

    problem = eval_set(read_dataset(gallery["dataset"]), "test")
    size = len(problem.gallery)
    model, _ = rebuild_from_run(gallery["run"])
    text = problem.captions[3]
    expected = rank_text(model, problem, text, topk=size, progress=False)
    found = _search(gallery["index"], text, topk=size, rerank=size)
    assert [hit["row"] for hit in found["hits"]] == expected.gallery_index
    assert [hit["score"] for hit in found["hits"]] == pytest.approx(expected.scores, abs=1e-6)
    assert {hit["stage"] for hit in found["hits"]} == {2}
    # a small re-rank keeps the candidates on top, in the full similarity's order
    few = _search(gallery["index"], text, topk=size, rerank=3)
    assert [hit["stage"] for hit in few["hits"]] == [2] * 3 + [1] * (size - 3)
    top3 = [hit["score"] for hit in few["hits"][:3]]
    assert top3 == sorted(top3, reverse=True)


def test_rerank_of_the_whole_gallery_equals_exact_evaluation(gallery, tmp_path):
    size = 3 * 8  # 8 test ids x 3 views
    plain, both = tmp_path / "plain.json", tmp_path / "two.json"
    _bench("eval", "--run", gallery["run"], "--dataset", gallery["dataset"], "--device", "cpu",
           "--json-out", plain, "--quiet")
    output = _bench("eval", "--run", gallery["run"], "--dataset", gallery["dataset"],
                    "--device", "cpu", "--rerank-k", size, "--json-out", both, "--quiet")
    exact = json.loads(plain.read_text())["test"]
    record = json.loads(both.read_text())["two_stage"]
    assert record["two_stage"] == exact
    assert record["exact"] == exact
    assert set(record["two_stage_minus_exact"].values()) == {0.0}
    assert "ranking below K" in output and record["rule"].startswith("top K")
    # a truncated re-rank is a different ranking: stage 1 and K=2 are recorded apart
    _bench("eval", "--run", gallery["run"], "--dataset", gallery["dataset"], "--device", "cpu",
           "--rerank-k", 2, "--json-out", both, "--quiet")
    record = json.loads(both.read_text())["two_stage"]
    assert record["rerank_k"] == 2 and record["second_stage"] is True
    assert record["stage1"]["num_queries"] == record["two_stage"]["num_queries"] == 48


def test_rerank_places_candidates_above_the_rest_in_first_stage_order():
    from benchmark.evaluation.two_stage import rerank
    from models.registry import build_model, tiny_options

    torch.manual_seed(0)
    model = build_model("mgcc", **tiny_options("mgcc")).eval()
    with torch.no_grad():
        images = model.encode_images(torch.rand(9, 3, *model.image_size))
        texts = model.encode_texts(model.tokenize(["a man in red", "a woman in blue"]))
    first = torch.tensor([[.9, .1, .8, .2, .7, .3, .6, .4, .5],
                          [.1, .2, .3, .4, .5, .6, .7, .8, .9]])
    top = torch.sort(first, dim=1, descending=True, stable=True).indices[:, :3]
    rows = rerank(model, texts, images, first, top)
    for row, scores in zip(rows, first, strict=True):
        top = set(torch.sort(scores, descending=True).indices[:3].tolist())
        order = torch.sort(row, descending=True, stable=True).indices.tolist()
        assert set(order[:3]) == top
        rest = order[3:]
        assert rest == sorted(rest, key=lambda i: -float(scores[i]))


def _photo_folder(folder: Path, names: list[str], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (48, 24, 3), dtype=np.uint8)).save(path)
    return folder


def test_a_plain_folder_is_indexed_appended_resumed_and_guarded(gallery, tmp_path):
    photos = _photo_folder(tmp_path / "photos", ["cam1/a.jpg", "cam1/b.png", "cam2/c.jpg"], 1)
    (photos / "cam2" / "broken.jpg").write_bytes(b"not an image")
    index = tmp_path / "gallery"
    output = _bench("index", "--run", gallery["run"], "--images", photos, "--out", index,
                    "--device", "cpu", "--quiet")
    assert "3 images (3 added" in output and "1 unreadable skipped" in output
    record = json.loads((index / "index.json").read_text())
    assert record["skipped"][0]["path"].endswith("broken.jpg")
    assert record["shapes"]["token_dtype"] == "float16" and record["complete"]
    found = _search(index, "a person with a bag", topk=2, rerank=3)
    assert len(found["hits"]) == 2 and all(Path(h["path"]).is_file() for h in found["hits"])

    # appending: new images are added, the old rows are kept as they were
    tokens_before = (index / "tokens.f16").read_bytes()
    _photo_folder(photos, ["cam3/d.jpg", "cam3/e.jpg"], 2)
    output = _bench("index", "--run", gallery["run"], "--images", photos, "--out", index,
                    "--device", "cpu", "--quiet")
    assert "5 images (2 added, 3 already indexed" in output
    assert (index / "tokens.f16").read_bytes().startswith(tokens_before)
    paths = [json.loads(line)["path"] for line in (index / "images.jsonl").read_text().splitlines()]
    assert [Path(p).name for p in paths] == ["a.jpg", "b.png", "c.jpg", "d.jpg", "e.jpg"]

    # resuming: a batch written past the recorded count (interrupted) is cut off and redone
    record = json.loads((index / "index.json").read_text())
    with open(index / "tokens.f16", "ab") as handle:
        handle.write(b"\0" * 1000)
    with open(index / "images.jsonl", "a") as handle:
        handle.write('{"key": "half-written"}\n')
    record["complete"] = False
    (index / "index.json").write_text(json.dumps(record))
    _refused("search", index, "a person", "--device", "cpu")  # incomplete: not searchable
    _photo_folder(photos, ["cam3/f.jpg"], 3)
    output = _bench("index", "--run", gallery["run"], "--images", photos, "--out", index,
                    "--device", "cpu", "--quiet")
    assert "6 images (1 added, 5 already indexed" in output
    assert len((index / "images.jsonl").read_text().splitlines()) == 6
    assert len(_search(index, "a person", topk=6, rerank=6)["hits"]) == 6

    # another run's weights are refused, in one line naming the field
    other = make_random_run(tmp_path / "other-run", seed=1)
    refusal = _refused("index", "--run", other, "--images", photos, "--out", index,
                       "--device", "cpu", "--quiet")
    assert "weights_sha256" in refusal and len(refusal.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_first_stages_record_their_parameters(gallery, tmp_path, kind):
    index = tmp_path / kind
    params = "nlist=4,nprobe=4" if kind == "ivf" else "M=8,efConstruction=16,efSearch=32"
    _bench("index", "--run", gallery["run"], "--dataset", f"ds={gallery['dataset']}",
           "--out", index, "--faiss", kind, "--faiss-params", params, "--device", "cpu",
           "--quiet")
    record = json.loads((index / "index.json").read_text())
    assert record["faiss"]["kind"] == kind
    given = dict(item.split("=") for item in params.split(","))
    assert {name: int(value) for name, value in given.items()}.items() <= \
        record["faiss"]["params"].items()
    exact = _search(gallery["index"], "a man in a red shirt", topk=5, rerank=0)
    approximate = _search(index, "a man in a red shirt", topk=5, rerank=0)
    # every list is probed / the graph is tiny: the approximate top 5 is the exact one
    assert [h["row"] for h in approximate["hits"]] == [h["row"] for h in exact["hits"]]


def test_bad_options_are_refused_before_work(gallery, tmp_path):
    out = _refused("index", "--run", gallery["run"], "--out", tmp_path / "x")
    assert "--dataset" in out and "--images" in out
    assert "nlist" in _refused("index", "--run", gallery["run"], "--images", gallery["dataset"],
                               "--out", tmp_path / "y", "--faiss", "flat",
                               "--faiss-params", "nlist=3")
    assert "--topk" in _refused("search", gallery["index"], "x", "--topk", 0)
    assert "empty" in _refused("search", gallery["index"], "  ")
    assert "not a gallery index" in _refused("search", gallery["dataset"], "a man")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
