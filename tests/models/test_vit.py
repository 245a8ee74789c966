"""The timm ViT/DeiT image encoder: features, the CLS attention score, and loading weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from timm.models.vision_transformer import VisionTransformer

from models.encoders.resnet import ResNetEncoder
from models.encoders.vit import TINY_OPTIONS, ViTEncoder
from models.errors import ModelError


@pytest.fixture(scope="module")
def tiny() -> ViTEncoder:
    torch.manual_seed(0)
    return ViTEncoder("tiny").eval()


def test_features_are_cls_patches_and_the_last_cls_attention_row(tiny: ViTEncoder) -> None:
    pixels = torch.randn(2, 3, *tiny.image_size)
    captured: list[torch.Tensor] = []
    last = tiny.net.blocks[-1].attn
    last.fused_attn = False  # timm's explicit path, whose attention matrix goes through attn_drop
    handle = last.attn_drop.register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    try:
        with torch.no_grad():
            feats = tiny(pixels)
            reference = tiny.net.forward_features(pixels)
    finally:
        handle.remove()
        last.fused_attn = True
    assert feats.pooled.shape == (2, 64) and feats.tokens.shape == (2, 8, 64)  # 4x2 patches
    assert feats.mask.all()
    torch.testing.assert_close(feats.pooled, reference[:, 0])
    torch.testing.assert_close(feats.tokens, reference[:, 1:])
    cls_row = captured[0].mean(dim=1)[:, 0, 1:]  # heads averaged, CLS over patches
    torch.testing.assert_close(feats.attention, cls_row / cls_row.sum(dim=1, keepdim=True))


def test_deit_distillation_token_is_neither_global_nor_patch() -> None:
    torch.manual_seed(0)
    encoder = ViTEncoder("deit_tiny_distilled_patch16_224", image_size=(64, 32)).eval()
    pixels = torch.randn(1, 3, 64, 32)
    with torch.no_grad():
        feats = encoder(pixels)
        full = encoder.net.forward_features(pixels)  # CLS, distillation token, 8 patches
    assert encoder.net.num_prefix_tokens == 2 and full.shape[1] == 10
    torch.testing.assert_close(feats.pooled, full[:, 0])
    torch.testing.assert_close(feats.tokens, full[:, 2:])


def test_person_size_grid_is_24x8() -> None:
    assert ViTEncoder("deit_tiny_patch16_224").grid == (24, 8)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_saved_weights_load_back_through_the_file_path(tiny: ViTEncoder, tmp_path: Path,
                                                        suffix: str) -> None:
    path = tmp_path / f"vit{suffix}"
    state = tiny.net.state_dict()
    if suffix == ".pt":
        torch.save({"state_dict": state}, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    torch.manual_seed(1)
    loaded = ViTEncoder("tiny", pretrained=str(path)).eval()
    pixels = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixels).tokens, tiny(pixels).tokens)


def test_position_embeddings_are_resized_to_the_person_grid(tmp_path: Path) -> None:
    """A square-grid file (as ImageNet's 224x224) loads at a tall person size."""
    torch.manual_seed(0)
    square = VisionTransformer(img_size=(64, 64), num_classes=0, **TINY_OPTIONS)  # 4x4 grid
    path = tmp_path / "square.pth"
    torch.save(square.state_dict(), path)
    tall = ViTEncoder("tiny", pretrained=str(path), image_size=(128, 32))  # 8x2 grid
    pos = tall.net.pos_embed
    assert pos.shape == (1, 1 + 16, 64)
    torch.testing.assert_close(pos[:, 0], square.pos_embed[:, 0])  # CLS position untouched
    assert not torch.allclose(pos[:, 1:], square.pos_embed[:, 1:])  # patches interpolated
    torch.testing.assert_close(tall.net.blocks[0].attn.qkv.weight,
                               square.blocks[0].attn.qkv.weight)


def test_a_file_of_another_architecture_is_refused_in_one_line(tmp_path: Path) -> None:
    deeper = VisionTransformer(img_size=(64, 32), num_classes=0,
                               **{**TINY_OPTIONS, "depth": 3})
    path = tmp_path / "deeper.pt"
    torch.save(deeper.state_dict(), path)
    with pytest.raises(ModelError, match=r"deeper\.pt.*unexpected key 'blocks\.2") as info:
        ViTEncoder("tiny", pretrained=str(path))
    assert "\n" not in str(info.value)
    resnet = tmp_path / "resnet.pt"
    torch.save(ResNetEncoder("tiny").net.state_dict(), resnet)
    with pytest.raises(ModelError, match=r"resnet\.pt: weights do not fit"):
        ViTEncoder("tiny", pretrained=str(resnet))


def test_offline_imagenet_names_the_file_to_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError, match=r"huggingface\.co/timm/deit_tiny_patch16_224\.fb_in1k"
                       r".*model\.safetensors.*pretrained=") as info:
        ViTEncoder("deit_tiny_patch16_224", pretrained="imagenet", image_size=(64, 32))
    assert "\n" not in str(info.value)


def test_unknown_architecture_is_one_line() -> None:
    with pytest.raises(ModelError, match="unknown ViT 'resnet50'"):
        ViTEncoder("resnet50")
