"""Released checkpoints: each release's key layout round-trips to identical features; files
that do not fit or that would run code when unpickled are refused; the imported run works with
``bench eval`` (occluded/clean breakdown), ``bench query`` and ``bench table``.

The release layouts are written here by hand from our own tiny models (as the releases' code
names its keys: IRRA ``base_model.`` + ``cross_modal_transformer`` ..., RDE
``visul_emb_layer``/``texual_emb_layer``, TBPS-CLIP ``visual.``/``encode_text.``, OpenAI's
bare CLIP keys), independently of the importer's own mapping, in float16 as the releases store
them.
"""

from __future__ import annotations

import json
import pathlib
import pickle
import sys
import types

import pytest
import torch
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.released.importers import build_imported_model
from models import build_model, tiny_options
from ogor.errors import ToreidError
from tests.benchmark.helpers import make_color_dataset

CAPTIONS = ["a person in a red shirt and blue trousers", "a man with a black bag",
            "this pedestrian wears white trousers with a green top"]


def _clip_keys(state: dict, prefix: str, skip_logit_scale: bool) -> dict:
    out = {}
    for key, value in state.items():
        if key.startswith("backbone.clip."):
            rest = key[len("backbone.clip."):]
            if skip_logit_scale and rest == "logit_scale":
                continue
            out[prefix + rest] = value
    return out


def irra_layout(state: dict) -> dict:
    heads = {"cross_modal.ln_pre_text.": "ln_pre_t.", "cross_modal.ln_pre_image.": "ln_pre_i.",
             "cross_modal.ln_post.": "ln_post.", "cross_modal.cross_attn.": "cross_attn.",
             "cross_modal.transformer.": "cross_modal_transformer.",
             "cross_modal.mlm_head.": "mlm_head.", "classifier.": "classifier."}
    out = _clip_keys(state, "base_model.", skip_logit_scale=True)
    for key, value in state.items():
        for ours, theirs in heads.items():
            if key.startswith(ours):
                out[theirs + key[len(ours):]] = value
    return out


def rde_layout(state: dict) -> dict:
    out = _clip_keys(state, "base_model.", skip_logit_scale=True)
    for key, value in state.items():
        if key.startswith("visual_tse.linear."):
            out["visul_emb_layer.fc." + key[len("visual_tse.linear."):]] = value
        elif key.startswith("visual_tse."):
            out["visul_emb_layer." + key[len("visual_tse."):]] = value
        elif key.startswith("textual_tse."):
            out["texual_emb_layer." + key[len("textual_tse."):]] = value
    # the release also holds parts its forward never uses
    for branch in ("visul_emb_layer", "texual_emb_layer"):
        width = out[f"{branch}.mlp.layers.1.weight"].shape[0]
        out[f"{branch}.mlp.bns.1.weight"] = torch.ones(width)
        out[f"{branch}.mlp.bns.1.bias"] = torch.zeros(width)
        out[f"{branch}.mlp.bns.1.running_mean"] = torch.zeros(width)
        out[f"{branch}.mlp.bns.1.running_var"] = torch.ones(width)
        out[f"{branch}.mlp.bns.1.num_batches_tracked"] = torch.tensor(0)
    out["visul_emb_layer.linear.weight"] = torch.randn_like(out["visul_emb_layer.fc.weight"])
    out["visul_emb_layer.linear.bias"] = torch.randn_like(out["visul_emb_layer.fc.bias"])
    return out


def tbps_layout(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        if key.startswith("backbone.clip.visual."):
            out[key[len("backbone.clip."):]] = value
        elif key == "backbone.clip.logit_scale":
            out["logit_scale"] = value
        elif key.startswith("backbone.clip."):
            out["encode_text." + key[len("backbone.clip."):]] = value
        elif key.startswith("simclr_mlp."):
            out[key] = value
    return out


def openai_layout(state: dict) -> dict:
    out = _clip_keys(state, "", skip_logit_scale=False)
    out.update(input_resolution=torch.tensor(224), context_length=torch.tensor(77),
               vocab_size=torch.tensor(49408))
    return out


FORMATS = {  # format: (our model name, layout, a key of the release's to mis-shape)
    "irra": ("irra", irra_layout, "base_model.ln_final.weight"),
    "rde": ("rde", rde_layout, "texual_emb_layer.mlp.layers.0.weight"),
    "tbps-clip": ("tbps-clip", tbps_layout, "encode_text.text_projection"),
    "openai": ("clip-zeroshot", openai_layout, "visual.proj"),
}


def _half(state: dict) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def _features(model, pixels):
    model.eval()
    with torch.no_grad():
        return (model.encode_images(pixels).pooled,
                model.encode_texts(model.tokenize(CAPTIONS)).pooled)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Per format: (our source model, the release file, its payload)."""
    base = tmp_path_factory.mktemp("released")
    made = {}
    for fmt, (name, layout, _) in FORMATS.items():
        torch.manual_seed(7)
        model = build_model(name, num_classes=5, quick_gelu=True, **tiny_options(name))
        model.load_state_dict(_half(model.state_dict()))  # fp16-exact, as releases store them
        model.train()
        model({"images": torch.randn(8, 3, *model.image_size),  # BatchNorm statistics move
               "tokens": model.tokenize(CAPTIONS * 3)[:8], "pids": torch.arange(8) % 4})
        model.load_state_dict(_half(model.state_dict()))
        model.eval()
        state = layout(model.state_dict())
        state = _half(state)
        payload = state if fmt == "openai" else {
            "model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-5}]},
            "epoch": 60}
        path = base / f"{fmt}.pth"
        torch.save(payload, path)
        made[fmt] = (model, path, payload)
    return made


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_release_layout_round_trips_to_identical_features(fmt, released):
    source, path, _ = released[fmt]
    imported = build_imported_model(fmt, path, backbone="tiny")
    pixels = torch.randn(4, 3, *source.image_size, generator=torch.Generator().manual_seed(1))
    for ours, theirs in zip(_features(imported, pixels), _features(source, pixels), strict=True):
        assert torch.allclose(ours, theirs, atol=1e-6, rtol=0)
    assert imported.image_mean == source.image_mean


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_one_wrongly_shaped_tensor_is_refused_naming_its_key(fmt, released, tmp_path):
    _, _, payload = released[fmt]
    key = FORMATS[fmt][2]
    state = dict(payload if fmt == "openai" else payload["model"])
    state[key] = torch.zeros(*[n + 1 for n in state[key].shape])
    bad = tmp_path / "bad.pth"
    torch.save(state if fmt == "openai" else {**payload, "model": state}, bad)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["import", "--format", fmt, str(bad), "--out", str(out),
                                       "--backbone", "tiny"])
    assert result.exit_code == 2
    assert f"key '{key}' has shape" in result.output and str(bad) in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()  # nothing half-written


def test_a_foreign_key_is_refused(released, tmp_path):
    _, _, payload = released["irra"]
    bad = tmp_path / "extra.pth"
    torch.save({**payload, "model": {**payload["model"], "prompt_learner.ctx": torch.zeros(3)}},
               bad)
    with pytest.raises(ToreidError, match="key 'prompt_learner.ctx'"):
        build_imported_model("irra", bad, backbone="tiny")


class _Payload:
    """Unpickling this calls ``Path.touch(marker)``: a stand-in for any code a file could run."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_a_checkpoint_that_runs_code_when_unpickled_is_refused(released, tmp_path):
    marker = tmp_path / "code-ran"
    crafted = tmp_path / "crafted.pth"
    _, _, payload = released["irra"]
    torch.save({**payload, "extra": _Payload(marker)}, crafted)
    with open(crafted, "rb") as handle:  # the crafted file really would run code
        torch.load(handle, weights_only=False)
    assert marker.exists()
    marker.unlink()
    result = CliRunner().invoke(main, ["import", "--format", "irra", str(crafted), "--out",
                                       str(tmp_path / "run"), "--backbone", "tiny"])
    assert result.exit_code == 2 and "refused" in result.output and "unpickling" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "run").exists()
    assert not pickle.HIGHEST_PROTOCOL < 2  # (pickle is what torch.save used)


def test_tbps_clip_config_object_is_read_without_importing_its_class(released, tmp_path):
    _, _, payload = released["tbps-clip"]
    fake = types.ModuleType("easydict")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "easydict", "EasyDict"
    fake.EasyDict = EasyDict
    sys.modules["easydict"] = fake
    try:
        path = tmp_path / "checkpoint_best.pth"
        torch.save({**payload, "config": EasyDict(model={"embed_dim": 64})}, path)
    finally:
        del sys.modules["easydict"]
    model = build_imported_model("tbps-clip", path, backbone="tiny")
    assert model.config.family == "tbps-clip" and "easydict" not in sys.modules


@pytest.fixture(scope="module")
def occluded_dataset(tmp_path_factory):
    from ogor.generation import generate_dataset

    base = tmp_path_factory.mktemp("occ")
    clean = make_color_dataset(base / "clean", ids=12, views=2,
                               splits={"train": 4, "val": 2, "test": 6})
    generate_dataset(clean, base / "occluded", ratio=0.5, seed=0)
    return base / "occluded"


def test_imported_run_works_with_eval_query_and_table(released, occluded_dataset, tmp_path):
    _, path, _ = released["irra"]
    run = tmp_path / "runs" / "occ" / "irra-released"
    result = CliRunner().invoke(main, [
        "import", "--format", "irra", str(path), "--out", str(run), "--backbone", "tiny",
        "--dataset", f"occ={occluded_dataset}", "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    config = json.loads((run / "config.json").read_text())
    import hashlib

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert metrics["source"]["sha256"] == digest == config["source"]["sha256"]
    assert metrics["source"]["format"] == "irra"
    assert metrics["model"] == "irra [released checkpoint]"
    assert metrics["selection"]["split"] == "none"

    evaluated = CliRunner().invoke(main, ["eval", "--run", str(run), "--device", "cpu",
                                          "--quiet"])
    assert evaluated.exit_code == 0, evaluated.output
    rows = {line.split()[0]: line.split() for line in evaluated.output.splitlines()[1:]}
    assert set(rows) == {"all", "occluded", "clean"}
    occ, clean = metrics["occlusion"]["occluded"], metrics["occlusion"]["clean"]
    assert int(rows["occluded"][1]) == occ["num_queries"] > 0
    assert int(rows["clean"][1]) == clean["num_queries"] > 0
    assert float(rows["all"][2]) == pytest.approx(metrics["test"]["R@1"], abs=0.006)

    table = CliRunner().invoke(main, ["table", str(tmp_path / "runs")])
    assert table.exit_code == 0 and "irra [released checkpoint]" in table.output
    query = CliRunner().invoke(main, ["query", CAPTIONS[0], "--run", str(run), "--topk", "3",
                                      "--out", str(tmp_path / "rank.png"), "--device", "cpu"])
    assert query.exit_code == 0, query.output
    assert (tmp_path / "rank.png").is_file()


def test_import_without_dataset_then_eval_needs_a_dataset(released, occluded_dataset, tmp_path):
    _, path, _ = released["rde"]
    run = tmp_path / "rde-released"
    result = CliRunner().invoke(main, ["import", "--format", "rde", str(path), "--out",
                                       str(run), "--backbone", "tiny"])
    assert result.exit_code == 0, result.output
    assert not (run / "metrics.json").exists()
    missing = CliRunner().invoke(main, ["eval", "--run", str(run), "--device", "cpu"])
    assert missing.exit_code == 2 and "pass --dataset" in missing.output
    again = CliRunner().invoke(main, ["import", "--format", "rde", str(path), "--out", str(run),
                                      "--backbone", "tiny"])
    assert again.exit_code == 2 and "already holds a run" in again.output
    ok = CliRunner().invoke(main, ["eval", "--run", str(run), "--dataset", str(occluded_dataset),
                                   "--device", "cpu", "--quiet"])
    assert ok.exit_code == 0 and "occluded" in ok.output


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::FutureWarning")
def test_openai_torchscript_archive_imports_like_the_backbone_loads_it(tmp_path):
    """OpenAI's file is a TorchScript archive with a square grid: the import resizes it to the
    model's grid exactly as ``Backbone(pretrained=FILE)`` does."""
    from models.encoders.clip import Backbone

    torch.manual_seed(4)
    square = Backbone("tiny", image_size=(64, 64), quick_gelu=True).eval()
    traced = torch.jit.trace_module(
        square.clip, {"encode_image": (torch.ones(1, 3, 64, 64),),
                      "encode_text": (torch.zeros(1, 77, dtype=torch.long),)},
        check_trace=False)
    path = tmp_path / "ViT-tiny.pt"
    traced.save(str(path))
    imported = build_imported_model("openai", path, backbone="tiny")
    reference = Backbone("tiny", pretrained=str(path)).eval()
    pixels = torch.randn(2, 3, *imported.image_size)
    tokens = imported.tokenize(CAPTIONS)
    with torch.no_grad():
        assert torch.equal(imported.encode_images(pixels).pooled,
                           reference.encode_images(pixels).pooled)
        assert torch.allclose(imported.encode_texts(tokens).pooled,
                              square.encode_texts(tokens).pooled, atol=1e-6)
