"""Fidelity of the models to the papers and releases: logit scale, mixed precision, IRRA's
position-embedding resize and masking, MGCC's paper space and the release's architecture."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models import build_model
from models.encoders.clip import TINY_MODEL_CFG, Backbone
from models.methods.irra import IGNORE_INDEX, MASK_TOKEN_ID, mask_tokens
from models.methods.mgcc import cap_words, component_similarities
from models.methods.mgcc_release import release_count

OPENAI_STORED_LOGIT_SCALE = 4.6052  # OpenAI's ViT-B checkpoints: exp = 100.03 > 100

CAPTIONS = [
    "a man in a red shirt and blue jeans carrying a black bag",
    "a woman with long hair",
    "a child",
    "an old man walking with a stick in grey trousers and a white cap and a long coat",
]


def _batch(model) -> dict:
    torch.manual_seed(1)
    return {"images": torch.randn(len(CAPTIONS), 3, *model.image_size),
            "tokens": model.tokenize(CAPTIONS), "pids": torch.tensor([0, 1, 0, 2])}


@pytest.mark.parametrize("name", ["mgcc", "clip"])
def test_logit_scale_moves_from_openais_stored_value(name, tmp_path) -> None:
    import open_clip

    from benchmark.records.spec import TrainConfig
    from benchmark.training.optim import build_optimizer

    clip = open_clip.CLIP(**TINY_MODEL_CFG)
    state = clip.state_dict()
    state["logit_scale"] = torch.tensor(OPENAI_STORED_LOGIT_SCALE)
    weights = tmp_path / "openai-like.pt"
    torch.save(state, weights)
    model = build_model(name, backbone="tiny", pretrained=str(weights))
    scale = model.backbone.clip.logit_scale
    assert scale.item() == pytest.approx(OPENAI_STORED_LOGIT_SCALE)

    loss = sum(model(_batch(model)).values())
    loss.backward()
    assert scale.grad is not None and scale.grad.abs().item() > 0  # a clamp would give 0

    optimizer = build_optimizer(model, TrainConfig(lr=1e-2, lr_new_mult=1.0))
    optimizer.step()
    model.after_optimizer_step()
    assert scale.item() != pytest.approx(OPENAI_STORED_LOGIT_SCALE, abs=1e-7)
    assert scale.item() <= math.log(100.0) + 1e-7  # stored value clamped as open_clip does


def test_similarity_reductions_run_in_float32_under_autocast() -> None:
    """The same features give the same MGCC similarities with and without bf16 autocast."""
    model = build_model("mgcc", backbone="tiny").eval()
    batch = _batch(model)
    with torch.no_grad():
        text = model.encode_texts(batch["tokens"])
        image = model.encode_images(batch["images"])
        full = component_similarities(text, image, ("sit", "spw", "spt", "siw"))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = component_similarities(text, image, ("sit", "spw", "spt", "siw"))
    for name in full:
        assert mixed[name].dtype == torch.float32
        torch.testing.assert_close(mixed[name], full[name], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["mgcc", "irra", "clip"])
def test_amp_and_fp32_losses_agree(name) -> None:
    """bf16 autocast (CPU) vs fp32 on a tiny model: the encoders run in bf16 (about 3 digits),
    the reductions in fp32; the losses agree within 1% (measured: at most 0.14%)."""
    torch.manual_seed(0)
    model = build_model(name, backbone="tiny", num_classes=3).eval()
    batch = _batch(model)
    with torch.no_grad():
        torch.manual_seed(5)
        full = model(batch)
        torch.manual_seed(5)  # IRRA's masking draws the same words
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(batch)
    for key in full:
        assert mixed[key].dtype == torch.float32
        assert mixed[key].item() == pytest.approx(full[key].item(), rel=0.01)


def test_irra_position_embedding_resize_is_bilinear_from_the_stored_grid(tmp_path) -> None:
    import open_clip

    square = {**TINY_MODEL_CFG, "vision_cfg": {**TINY_MODEL_CFG["vision_cfg"],
                                              "image_size": [32, 32]}}
    stored = open_clip.CLIP(**square).state_dict()  # a 4x4 grid, as 14x14 is square
    weights = tmp_path / "square.pt"
    torch.save(stored, weights)
    irra = Backbone("tiny", pretrained=str(weights), pos_embed_resize="bilinear")
    default = Backbone("tiny", pretrained=str(weights))
    old = stored["visual.positional_embedding"]
    grid = old[1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(8, 4), mode="bilinear", align_corners=False)
    expected = torch.cat([old[:1], expected.permute(0, 2, 3, 1).reshape(32, -1)])
    torch.testing.assert_close(irra.clip.visual.positional_embedding.data, expected)
    assert not torch.allclose(default.clip.visual.positional_embedding.data, expected)
    with pytest.raises(Exception, match="pos_embed_resize"):
        Backbone("tiny", pos_embed_resize="nearest")


def test_irr_masks_at_least_one_word_per_caption() -> None:
    tokens = build_model("irra", backbone="tiny").tokenize(["a man", "red", "a b c d", ""])
    corrupted, labels = mask_tokens(tokens, prob=1e-9, generator=torch.Generator().manual_seed(0))
    # nothing was drawn: every caption with a word has its first word masked, as IRRA does
    assert labels[:3, 1].tolist() == tokens[:3, 1].tolist()
    assert (corrupted[:3, 1] == MASK_TOKEN_ID).all()
    assert ((labels != IGNORE_INDEX).sum(dim=1)).tolist() == [1, 1, 1, 0]
    # with IRRA's 15%, two-word captions always give IRR a target (not ~28% of the time)
    pairs = build_model("irra", backbone="tiny").tokenize(["a man"] * 200)
    _, labels = mask_tokens(pairs, generator=torch.Generator().manual_seed(1))
    assert ((labels != IGNORE_INDEX).sum(dim=1) >= 1).all()


def test_mgcc_paper_space_is_the_vision_width_with_a_new_text_projection() -> None:
    model = build_model("mgcc", backbone="tiny")
    assert model.config.max_words == 25 and model.config.feature_space == "vision"
    assert model.embed_dim == model.backbone.vision_width
    new = {id(p) for p in model.parameter_groups()["new"]}
    assert {id(p) for p in model.text_projection.parameters()} == new
    text = model.encode_texts(model.tokenize(CAPTIONS))
    assert text.tokens.shape[-1] == model.backbone.vision_width
    assert text.num_tokens <= 25


def test_word_cap_first_or_by_attention() -> None:
    model = build_model("mgcc-b16-384", backbone="tiny", max_words=None)
    features = model.backbone.encode_texts(model.tokenize(CAPTIONS))
    first = cap_words(features, 3, "first")
    by_attention = cap_words(features, 3, "attention")
    assert torch.equal(first.tokens, features.tokens[:, :3])
    top = features.attention.masked_fill(~features.mask, -1).topk(3, dim=1).indices
    for b in range(len(CAPTIONS)):
        kept = int(by_attention.mask[b].sum())
        assert kept == min(3, int(features.mask[b].sum()))
        expected = features.tokens[b, top[b, :kept]]
        torch.testing.assert_close(by_attention.tokens[b, :kept], expected)


def test_release_counts_round_half_to_even() -> None:
    assert [release_count(r, 49) for r in (0.3, 0.4, 0.5, 1.0)] == [15, 20, 24, 49]
    assert [release_count(r, 25) for r in (0.4, 0.5)] == [10, 12]


def test_mgcc_release_text_slots_and_identity_initialised_matrices() -> None:
    torch.manual_seed(0)
    model = build_model("mgcc-release", backbone="tiny", rho_image=0.5, rho_text=0.4).eval()
    assert (model.num_patches, model.num_words) == (16, 10)
    assert torch.equal(model.word_weight, torch.eye(10))
    assert model.image_mean == (0.5, 0.5, 0.5)
    tokens = model.tokenize(CAPTIONS)
    with torch.no_grad():
        text = model.encode_texts(tokens)
        image = model.encode_images(torch.randn(4, 3, *model.image_size))
        states, eot, attention, _ = model.backbone.text_tokens(tokens, project=False)
    assert text.tokens.shape[:2] == (4, 10) and text.mask.all()
    real = (text.tokens.abs().sum(-1) > 0).sum(dim=1).tolist()
    assert real == [10, 5, 2, 10]  # "a woman with long hair": 5 words, then zero slots
    # the release's shift: the most attended word k keeps the feature of token k + 1
    b = 1
    words = attention[b, 1:int(eot[b])]
    k = int(words.argmax()) + 1
    projected = model.text_projection(states[b, k + 1])
    torch.testing.assert_close(text.tokens[b, 0], projected)
    # identity matrices: the release's fusion equals the paper's AF on the same features
    with torch.no_grad():
        release = model.component_similarities(text, image)
        paper = component_similarities(text, image, model.config.components)
    for name in release:
        torch.testing.assert_close(release[name], paper[name], rtol=1e-5, atol=1e-6)


def test_an_mgcc_config_recorded_before_feature_space_rebuilds_in_the_joint_space() -> None:
    from models import build_model_from_config

    old = {"family": "mgcc", "name": "mgcc", "backbone": "tiny", "max_words": None}
    model = build_model_from_config(old)
    assert model.config.feature_space == "joint" and model.text_projection is None


def test_mgcc_release_cleans_captions_as_its_test_script_and_keeps_entities() -> None:
    """``pre_caption``: lowercase, punctuation and '-' '/' to spaces; '&amp;' stays text (the
    release's CLIPTokenizer gives '&' and 'amp'); the paper model keeps CLIP's own cleaning,
    which unescapes it."""
    from open_clip.tokenizer import SimpleTokenizer

    from models.methods.mgcc_release import release_caption

    caption = "A man's RED-shirt, &amp; blue/black jeans. <person> walks;  fast!"
    assert release_caption(caption) == \
        "a man s red shirt & amp blue black jeans person walks fast"
    amp = SimpleTokenizer().encoder["amp</w>"]
    release = build_model("mgcc-release", backbone="tiny")
    paper = build_model("mgcc", backbone="tiny")
    tokens = release.tokenize([caption])
    assert amp in tokens[0].tolist() and amp not in paper.tokenize([caption])[0].tolist()
    assert torch.equal(tokens, paper.tokenize(["a man s red shirt & amp blue black jeans "
                                               "person walks fast"]))
