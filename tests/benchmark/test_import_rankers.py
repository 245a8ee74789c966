"""``bench import --format rasa|aptm``: the releases' layouts, written here by hand from our own
tiny models under the releases' key names (tied MLM decoder, ``position_ids``, Microsoft's
Swin names and buffers, no vocabulary), import and give the same retrieval scores."""

from __future__ import annotations

import re

import pytest
import torch
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.released.importers import build_imported_model
from models import build_model, tiny_options
from ogor.errors import ToreidError

CAPTIONS = ["a man in a red shirt and blue jeans", "a woman with a black bag",
            "a child in a yellow coat", "an old man in grey trousers"]


def _release_layout(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Our state dict under the release's names, as its training script saves it."""
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("vocab_bytes"):
            continue  # the releases keep the vocabulary in bert-base-uncased's vocab.txt
        found = re.match(r"^vision_encoder\.layers\.(\d+)\.downsample\.", key)
        if found:  # Microsoft's Swin: the merging closes stage i, timm's opens stage i + 1
            key = f"vision_encoder.layers.{int(found.group(1)) - 1}.downsample." + \
                key[found.end():]
        state[key] = value.clone()
    for prefix in ("text_encoder.", "text_encoder_m."):
        if prefix + "bert.embeddings.word_embeddings.weight" in state:
            words = state[prefix + "bert.embeddings.word_embeddings.weight"]
            state[prefix + "cls.predictions.decoder.weight"] = words.clone()
            state[prefix + "cls.predictions.decoder.bias"] = \
                state[prefix + "cls.predictions.bias"].clone()
            state[prefix + "bert.embeddings.position_ids"] = torch.arange(128)[None]
    for key in list(state):
        if key.endswith("attn.relative_position_bias_table"):
            block = key[: -len("relative_position_bias_table")]
            state[block + "relative_position_index"] = torch.zeros(1, dtype=torch.long)
    return state


def _scores(model, pixels):
    with torch.no_grad():
        return model.similarity(model.encode_texts(model.tokenize(CAPTIONS)),
                                model.encode_images(pixels))


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    folder = tmp_path_factory.mktemp("released")
    out = {}
    for fmt in ("rasa", "aptm"):
        torch.manual_seed(0)
        model = build_model(fmt, **{**tiny_options(fmt), "rerank_k": 128,
                                    "max_words": 50}).eval()
        path = folder / f"{fmt}.pth"
        torch.save({"model": _release_layout(model), "config": {"k_test": 128}, "epoch": 3},
                   path)
        out[fmt] = (model, path)
    return out


@pytest.mark.parametrize("fmt", ["rasa", "aptm"])
def test_release_layout_imports_to_the_same_scores(fmt, released) -> None:
    source, path = released[fmt]
    imported = build_imported_model(fmt, path, backbone="tiny")
    pixels = torch.randn(5, 3, *source.image_size)
    expected = _scores(source, pixels)
    torch.testing.assert_close(_scores(imported, pixels), expected, rtol=0, atol=0)
    assert imported.tokenize(CAPTIONS).tolist() == source.tokenize(CAPTIONS).tolist()


@pytest.mark.parametrize("fmt", ["rasa", "aptm"])
def test_a_misfit_key_is_refused_in_one_line(fmt, released, tmp_path) -> None:
    _, path = released[fmt]
    state = torch.load(path, weights_only=True)["model"]
    key = next(k for k in state if k.endswith("itm_head.weight")
               or k.endswith("itm_head.0.weight"))
    state[key] = torch.zeros(3, 3)
    bad = tmp_path / "bad.pth"
    torch.save({"model": state}, bad)
    result = CliRunner().invoke(main, ["import", "--format", fmt, str(bad), "--out",
                                       str(tmp_path / "run"), "--backbone", "tiny"])
    assert result.exit_code != 0
    assert key in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
    del state[key]
    torch.save({"model": state}, bad)
    with pytest.raises(ToreidError, match="is missing"):
        build_imported_model(fmt, bad, backbone="tiny")


@pytest.fixture(scope="module")
def occluded_dataset(tmp_path_factory):
    from ogor.generation import generate_dataset
    from tests.benchmark.helpers import make_color_dataset

    base = tmp_path_factory.mktemp("occ")
    clean = make_color_dataset(base / "clean", ids=12, views=2,
                               splits={"train": 4, "val": 2, "test": 6})
    generate_dataset(clean, base / "occluded", ratio=0.5, seed=0)
    return base / "occluded"


def test_imported_aptm_evaluates_queries_and_records_its_file(released, occluded_dataset,
                                                              tmp_path) -> None:
    """bench import --format aptm, then bench eval and bench query on the imported run: the
    two-stage scores go through the ordinary evaluator."""
    import hashlib
    import json

    _, path = released["aptm"]
    run = tmp_path / "runs" / "occ" / "aptm-released"
    result = CliRunner().invoke(main, ["import", "--format", "aptm", str(path), "--out",
                                       str(run), "--backbone", "tiny", "--dataset",
                                       f"occ={occluded_dataset}", "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert metrics["model"] == "aptm [released checkpoint]"
    evaluated = CliRunner().invoke(main, ["eval", "--run", str(run), "--device", "cpu",
                                          "--quiet"])
    assert evaluated.exit_code == 0, evaluated.output
    rows = {line.split()[0]: line.split() for line in evaluated.output.splitlines()[1:]}
    assert float(rows["all"][2]) == pytest.approx(metrics["test"]["R@1"], abs=0.006)
    assert {"occluded", "clean"} <= set(rows)
    query = CliRunner().invoke(main, ["query", CAPTIONS[0], "--run", str(run), "--topk", "3",
                                      "--out", str(tmp_path / "rank.png"), "--device", "cpu"])
    assert query.exit_code == 0, query.output
