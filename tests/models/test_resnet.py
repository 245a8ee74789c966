"""The ResNet image encoder: features, the token score, and every way of loading weights."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision.models as tvm

from models.encoders.resnet import IMAGENET_MEAN, ResNetEncoder
from models.errors import ModelError


@pytest.fixture(scope="module")
def tiny() -> ResNetEncoder:
    torch.manual_seed(0)
    return ResNetEncoder("tiny").eval()


def test_tiny_features_and_token_share(tiny: ResNetEncoder) -> None:
    pixels = torch.randn(3, 3, *tiny.image_size)
    with torch.no_grad():
        feats = tiny(pixels)
    assert tiny.image_size == (64, 32) and tiny.image_mean == IMAGENET_MEAN
    assert feats.tokens.shape == (3, 8, 128)  # 4x2 map at stride 16
    assert feats.mask.all()
    # the global feature is the mean of the tokens (average pooling)
    torch.testing.assert_close(feats.pooled, feats.tokens.mean(dim=1))
    # the score is each location's share of |g|^2: x_i . g / sum_j x_j . g
    dots = torch.einsum("bnc,bc->bn", feats.tokens, feats.pooled)
    torch.testing.assert_close(feats.attention, dots / dots.sum(dim=1, keepdim=True))
    torch.testing.assert_close(feats.attention.sum(dim=1), torch.ones(3))
    # tokens are row-major locations of the last feature map
    fmap = tiny.feature_map(pixels)
    torch.testing.assert_close(feats.tokens[:, 1], fmap[:, :, 0, 1])
    torch.testing.assert_close(feats.tokens[:, 2], fmap[:, :, 1, 0])


def test_resnet50_gives_12x4_tokens_at_384x128() -> None:
    encoder = ResNetEncoder("resnet50").eval()
    assert encoder.image_size == (384, 128) and encoder.feature_dim == 2048
    with torch.no_grad():
        feats = encoder(torch.randn(1, 3, 384, 128))
    assert feats.tokens.shape == (1, 48, 2048) and feats.pooled.shape == (1, 2048)


def test_loads_a_local_torchvision_file_classifier_ignored(tmp_path: Path,
                                                           tiny: ResNetEncoder) -> None:
    source = ResNetEncoder("tiny").net
    source.fc = torch.nn.Linear(128, 7)  # a file with its own classifier
    path = tmp_path / "tiny-resnet.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    loaded = ResNetEncoder("tiny", pretrained=str(path)).eval()
    for key, value in loaded.net.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key
    # and differs from another random init
    assert not torch.equal(loaded.net.conv1.weight, tiny.net.conv1.weight)


def test_refuses_another_architecture_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(tvm.resnet18().state_dict(), path)
    with pytest.raises(ModelError) as error:  # ResNet-18 widths into the tiny ResNet
        ResNetEncoder("tiny", pretrained=str(path))
    message = str(error.value)
    assert str(path) in message and "'conv1.weight' has shape (64, 3, 7, 7)" in message
    assert "\n" not in message
    # same key names, other shapes: the first differing block of ResNet-50
    with pytest.raises(ModelError, match=r"resnet18\.pth.*'layer1\.0\.conv1\.weight'"):
        ResNetEncoder("resnet50", pretrained=str(path))
    # a deeper network of the same widths: extra blocks are refused too
    deeper = ResNetEncoder("tiny").net.state_dict()
    deeper["layer1.1.conv1.weight"] = torch.zeros(16, 16, 3, 3)
    torch.save(deeper, tmp_path / "deeper.pth")
    with pytest.raises(ModelError, match="deeper.pth.*unexpected key 'layer1.1.conv1.weight'"):
        ResNetEncoder("tiny", pretrained=str(tmp_path / "deeper.pth"))
    # a file without a key the encoder needs
    del deeper["layer1.1.conv1.weight"], deeper["layer4.0.bn2.weight"]
    torch.save(deeper, tmp_path / "partial.pth")
    with pytest.raises(ModelError, match="partial.pth.*missing key 'layer4.0.bn2.weight'"):
        ResNetEncoder("tiny", pretrained=str(tmp_path / "partial.pth"))


def test_refuses_unreadable_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="bad.pt: not a readable weights file"):
        ResNetEncoder("tiny", pretrained=str(bad))
    with pytest.raises(ModelError, match="weights file not found"):
        ResNetEncoder("tiny", pretrained=str(tmp_path / "absent.pth"))


def test_torchvision_name_uses_the_hub_cache(tmp_path: Path, monkeypatch) -> None:
    """The online name reads $TORCH_HOME/hub/checkpoints/<file of the URL> when it is there."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = tvm.ResNet18_Weights.IMAGENET1K_V1
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    source = tvm.resnet18()
    torch.save(source.state_dict(), cache / Path(weights.url).name)
    encoder = ResNetEncoder("resnet18", pretrained="IMAGENET1K_V1")
    assert torch.equal(encoder.net.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    # a wrong file in the cache is named in the refusal
    torch.save(tvm.resnet34().state_dict(), cache / Path(weights.url).name)
    with pytest.raises(ModelError, match=r"resnet18-f37072fd\.pth \(ResNet18_Weights"):
        ResNetEncoder("resnet18", pretrained="IMAGENET1K_V1")


def test_offline_name_says_what_to_fetch(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*args, **kwargs):  # what urllib raises without a network
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(ModelError) as error:
        ResNetEncoder("resnet50", pretrained="IMAGENET1K_V1")
    message = str(error.value)
    assert "ResNet50_Weights.IMAGENET1K_V1" in message
    assert tvm.ResNet50_Weights.IMAGENET1K_V1.url in message
    assert str(tmp_path / "hub" / "checkpoints") in message and "\n" not in message


def test_unknown_names() -> None:
    with pytest.raises(ModelError, match="valid: IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT"):
        ResNetEncoder("resnet50", pretrained="openai")
    with pytest.raises(ModelError, match="unknown ResNet 'resnet9'"):
        ResNetEncoder("resnet9")
