"""The open_clip backbone: shapes, masks, attention against torch's own, weight loading."""

from __future__ import annotations

import pytest
import torch
from open_clip.model import resize_pos_embed

from models.encoders.clip import EOT_TOKEN_ID, SOT_TOKEN_ID, Backbone
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures


@pytest.fixture(scope="module")
def tiny() -> Backbone:
    torch.manual_seed(0)
    return Backbone("tiny").eval()


def _last_block_input(blocks, run) -> torch.Tensor:
    captured = {}
    def keep_input(_module, args):
        captured.setdefault("x", args[0])

    handle = blocks[-1].register_forward_pre_hook(keep_input)
    try:
        run()
    finally:
        handle.remove()
    return captured["x"]


def _torch_attention(block, x: torch.Tensor, attn_mask=None) -> torch.Tensor:
    h = block.ln_1(x)
    _, weights = block.attn(h, h, h, need_weights=True, average_attn_weights=True,
                            attn_mask=attn_mask)
    return weights  # [B, L, L], averaged over heads


def test_image_features_shapes_and_attention_match_torch(tiny: Backbone) -> None:
    pixels = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        feats = tiny.encode_images(pixels)
        x = _last_block_input(tiny.clip.visual.transformer.resblocks,
                              lambda: tiny.clip.encode_image(pixels))
        reference = _torch_attention(tiny.clip.visual.transformer.resblocks[-1], x)[:, 0, 1:]
        reference = reference / reference.sum(dim=1, keepdim=True)
        library_global = tiny.clip.encode_image(pixels)
    assert isinstance(feats, ImageFeatures)
    assert feats.pooled.shape == (3, 64)
    assert feats.tokens.shape == (3, 32, 64)  # 64x32 image in 8x8 patches: 8 x 4
    assert feats.mask.all()
    torch.testing.assert_close(feats.attention.sum(dim=1), torch.ones(3))
    assert (feats.attention >= 0).all()
    torch.testing.assert_close(feats.attention, reference, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(feats.pooled, library_global, atol=1e-6, rtol=1e-5)


def test_patch_tokens_live_in_the_joint_space(tiny: Backbone) -> None:
    pixels = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        x = _last_block_input(tiny.clip.visual.transformer.resblocks,
                              lambda: tiny.clip.encode_image(pixels))
        out = tiny.clip.visual.transformer.resblocks[-1](x)
        expected = tiny.clip.visual.ln_post(out[:, 1:]) @ tiny.clip.visual.proj
        feats = tiny.encode_images(pixels)
    torch.testing.assert_close(feats.tokens, expected, atol=1e-6, rtol=1e-5)


def test_text_features_masks_and_attention_match_torch(tiny: Backbone, captions) -> None:
    tokens = tiny.tokenize(captions)
    with torch.no_grad():
        feats = tiny.encode_texts(tokens)
        blocks = tiny.clip.transformer.resblocks
        x = _last_block_input(blocks, lambda: tiny.clip.encode_text(tokens))
        weights = _torch_attention(blocks[-1], x, attn_mask=tiny.clip.attn_mask)
        library_global = tiny.clip.encode_text(tokens)
    assert isinstance(feats, TextFeatures)
    eot = tokens.argmax(dim=1)
    assert (tokens[torch.arange(4), eot] == EOT_TOKEN_ID).all()
    assert (tokens[:, 0] == SOT_TOKEN_ID).all()
    word_counts = eot - 1
    assert feats.tokens.shape == (4, int(word_counts.max()), 64)  # trimmed to longest caption
    assert feats.mask.sum(dim=1).tolist() == word_counts.tolist()
    for b in range(4):
        m = int(word_counts[b])
        assert feats.mask[b, :m].all() and not feats.mask[b, m:].any()
        row = weights[b, eot[b], 1:1 + m]
        torch.testing.assert_close(feats.attention[b, :m], row / row.sum(), atol=1e-6, rtol=1e-5)
        assert (feats.attention[b, m:] == 0).all()
    torch.testing.assert_close(feats.attention.sum(dim=1), torch.ones(4))
    torch.testing.assert_close(feats.pooled, library_global, atol=1e-6, rtol=1e-5)


def test_features_slice_concatenate_and_move(tiny: Backbone, captions) -> None:
    with torch.no_grad():
        whole = tiny.encode_texts(tiny.tokenize(captions))
        parts = [tiny.encode_texts(tiny.tokenize(captions[:2])),
                 tiny.encode_texts(tiny.tokenize(captions[2:]))]
    joined = TextFeatures.cat(parts)  # different token widths: padded
    assert len(joined) == 4 and joined.num_tokens == whole.num_tokens
    torch.testing.assert_close(joined.tokens[joined.mask], whole.tokens[whole.mask],
                               atol=1e-5, rtol=1e-5)
    assert torch.equal(joined.mask, whole.mask)
    assert len(whole[1:3]) == 2 and torch.equal(whole[1:3].pooled, whole.pooled[1:3])
    moved = whole.to("cpu", dtype=torch.float64)
    assert moved.tokens.dtype == torch.float64 and moved.mask.dtype == torch.bool


def test_openai_format_checkpoint_loads_at_a_non_square_size(tmp_path) -> None:
    """A state dict laid out and typed as OpenAI's .pt (fp16, its extra entries, a square 14x14
    grid as ViT-B/16 at 224) loads at the IRRA geometry 24x8 (ViT-B/16 at 384x128; here patch 8
    at 192x64): position embeddings resized, quick-GELU on, every other weight unchanged."""
    torch.manual_seed(1)
    square = Backbone("tiny", image_size=(112, 112))
    state = {k: v.half() if v.is_floating_point() else v
             for k, v in square.clip.state_dict().items()}
    state.update(input_resolution=torch.tensor(112), context_length=torch.tensor(77),
                 vocab_size=torch.tensor(49408))
    assert state["visual.positional_embedding"].shape == (1 + 14 * 14, 64)
    path = tmp_path / "tiny-openai.pt"
    torch.save(state, path)

    loaded = Backbone("tiny", pretrained=str(path), image_size=(192, 64))
    assert loaded.image_size == (192, 64)
    assert loaded.clip.visual.grid_size == (24, 8)
    assert loaded.quick_gelu is True
    pos = loaded.clip.visual.positional_embedding
    assert pos.shape == (1 + 24 * 8, 64)
    expected = {"visual.positional_embedding": state["visual.positional_embedding"].float()}
    resize_pos_embed(expected, loaded.clip)
    torch.testing.assert_close(pos.detach(), expected["visual.positional_embedding"])
    torch.testing.assert_close(pos.detach()[0], state["visual.positional_embedding"][0].float())
    torch.testing.assert_close(loaded.clip.token_embedding.weight.detach(),
                               state["token_embedding.weight"].float())
    with torch.no_grad():
        feats = loaded.encode_images(torch.randn(2, 3, 192, 64))
    assert feats.tokens.shape == (2, 24 * 8, 64) and torch.isfinite(feats.tokens).all()


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::FutureWarning")
def test_openai_torchscript_archive_loads(tmp_path, captions) -> None:
    """OpenAI ships TorchScript archives: a traced tiny CLIP at 64x64 loads at 64x32."""
    torch.manual_seed(4)
    square = Backbone("tiny", image_size=(64, 64)).eval()
    traced = torch.jit.trace_module(
        square.clip,
        {"encode_image": (torch.ones(1, 3, 64, 64),),
         "encode_text": (torch.zeros(1, 77, dtype=torch.long),)},
        check_trace=False)
    path = tmp_path / "tiny-openai-jit.pt"
    traced.save(str(path))
    assert Backbone("tiny", pretrained=str(path)).quick_gelu is True  # OpenAI-like: auto on
    loaded = Backbone("tiny", pretrained=str(path), quick_gelu=False).eval()
    assert loaded.clip.visual.positional_embedding.shape == (1 + 32, 64)
    tokens = square.tokenize(captions)
    with torch.no_grad():  # the text tower is untouched by the image resize
        torch.testing.assert_close(loaded.encode_texts(tokens).pooled,
                                   square.encode_texts(tokens).pooled)


def test_open_clip_state_dict_file_loads_exactly(tmp_path, captions) -> None:
    torch.manual_seed(2)
    source = Backbone("tiny").eval()
    path = tmp_path / "tiny-open-clip.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in source.clip.state_dict().items()}},
               path)
    loaded = Backbone("tiny", pretrained=str(path)).eval()
    assert loaded.quick_gelu is False  # float32 open_clip weights: standard GELU
    tokens = source.tokenize(captions)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_texts(tokens).pooled,
                                   source.encode_texts(tokens).pooled)


def test_weight_errors_are_one_line_model_errors(tmp_path) -> None:
    with pytest.raises(ModelError, match="not found"):
        Backbone("tiny", pretrained=str(tmp_path / "missing.pt"))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="garbage.pt"):
        Backbone("tiny", pretrained=str(garbage))
    wrong = tmp_path / "wrong.pt"
    torch.save({"visual.proj": torch.zeros(3, 3)}, wrong)
    with pytest.raises(ModelError, match="do not fit") as caught:
        Backbone("tiny", pretrained=str(wrong))
    assert "\n" not in str(caught.value)
    with pytest.raises(ModelError, match="valid tags"):
        Backbone("tiny", pretrained="openai")
    with pytest.raises(ModelError, match="valid backbones: ViT-B-16"):
        Backbone("ViT-H-99")


def test_offline_download_is_a_one_line_error_naming_the_file(monkeypatch) -> None:
    """No network: open_clip's downloader fails; the error says what to fetch and how to pass it.

    The downloader is replaced by one that fails as it does offline, so the test never reaches
    the network even where one exists.
    """
    import open_clip.factory

    def offline(*_args, **_kwargs):
        raise RuntimeError("Failed to download file: no network")

    monkeypatch.setattr(open_clip.factory, "download_pretrained", offline)
    monkeypatch.setattr(open_clip.factory, "download_pretrained_from_hf", offline)
    with pytest.raises(ModelError) as caught:
        Backbone("ViT-B-32-224", pretrained="openai")
    message = str(caught.value)
    assert "\n" not in message
    assert "ViT-B-32/openai" in message and "ViT-B-32.pt" in message and "pretrained=" in message
