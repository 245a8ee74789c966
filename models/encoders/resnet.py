"""A torchvision ResNet as an image encoder: pooled global feature + the last feature map as tokens.

Features (unprojected, in the ResNet's own channel space, e.g. 2048-d for ResNet-50):

* ``pooled``: global average pooling of the last stage's feature map (what torchvision's
  ``avgpool`` gives the classifier).
* ``tokens``: every location of that map, row-major (top-left first): 12x4 = 48 tokens at
  384x128, 7x7 = 49 at 224x224 (stride 32).
* ``mask``: all True (every location is real).
* ``attention``: a CNN has no attention map, so the token score is each location's share of the
  global feature: ``s_i = max(0, x_i . g)`` renormalised over locations, where ``g`` is the
  pooled feature. Since ``g = mean_i x_i``, ``|g|^2 = mean_i (x_i . g)``: ``s_i`` is exactly the
  fraction of the global vector that location ``i`` contributes along its own direction, which is
  what the CLS attention row measures in a ViT (how much each patch feeds the global token).
  After the final ReLU every ``x_i`` is non-negative, so ``s_i >= 0`` without clamping in
  practice. The score is computed without gradients: it only ranks tokens for selection.

Architectures (``arch``): ``resnet18/34/50/101/152`` (torchvision) and ``tiny`` (a 4-stage
BasicBlock ResNet with one block per stage, widths 16-128 and no stem max-pool, stride 16:
4x2 = 8 tokens of 128-d at 64x32, for tests and the CPU demo).

Weights (``pretrained``):

* ``None``: torchvision's random initialisation.
* a torchvision weights name, ``"IMAGENET1K_V1"`` (the ImageNet weights the 2018-2021 T-ReID
  papers used), ``"IMAGENET1K_V2"`` or ``"DEFAULT"``: fetched through torchvision, which first
  looks in ``$TORCH_HOME/hub/checkpoints/`` (so a file put there works offline); offline without
  it, a one-line :class:`ModelError` names the URL and the folder to put it in.
* a path to a local file: a torchvision ResNet state dict (the file that URL serves, or
  ``torch.save(resnet.state_dict(), path)``), optionally under a ``"state_dict"`` key, read with
  ``torch.load(weights_only=True)``. The classifier (``fc.*``) is not part of the encoder and is
  ignored; every other key must match: a file of another architecture is refused with a one-line
  error naming the file and the first mismatching key.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
import torchvision.models as tvm
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from models.errors import ModelError
from models.features import ImageFeatures

# ImageNet statistics (torchvision's weights were trained with these).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# arch -> (torchvision builder, weights enum, default image size (H, W))
_ARCHS: dict[str, tuple[Any, Any, tuple[int, int]]] = {
    "resnet18": (tvm.resnet18, tvm.ResNet18_Weights, (384, 128)),
    "resnet34": (tvm.resnet34, tvm.ResNet34_Weights, (384, 128)),
    "resnet50": (tvm.resnet50, tvm.ResNet50_Weights, (384, 128)),
    "resnet101": (tvm.resnet101, tvm.ResNet101_Weights, (384, 128)),
    "resnet152": (tvm.resnet152, tvm.ResNet152_Weights, (384, 128)),
}
TINY_IMAGE_SIZE = (64, 32)
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def list_resnets() -> list[str]:
    """Names accepted as ``arch``."""
    return [*_ARCHS, "tiny"]


TINY_WIDTHS = (16, 32, 64, 128)


def _tiny_resnet() -> tvm.ResNet:
    """torchvision's ResNet layout (same module names, so the same loading path) with one
    BasicBlock per stage, widths 16-128 and no stem max-pool (stride 16: a 64x32 image keeps a
    4x2 map of tokens): about 60x cheaper than ResNet-18 at this size."""
    model = tvm.ResNet(BasicBlock, [1, 1, 1, 1])
    model.inplanes = TINY_WIDTHS[0]
    model.conv1 = nn.Conv2d(3, TINY_WIDTHS[0], kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = nn.BatchNorm2d(TINY_WIDTHS[0])
    model.maxpool = nn.Identity()  # type: ignore[assignment]
    for index, width in enumerate(TINY_WIDTHS, start=1):
        layer = model._make_layer(BasicBlock, width, 1, stride=1 if index == 1 else 2)
        setattr(model, f"layer{index}", layer)
    model.fc = nn.Linear(TINY_WIDTHS[-1], 1000)
    for module in model.modules():  # torchvision's own initialisation, for the new layers
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def _looks_like_path(pretrained: str) -> bool:
    return (Path(pretrained).exists() or pretrained.lower().endswith(_WEIGHT_SUFFIXES)
            or "/" in pretrained or "\\" in pretrained)


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """A state dict from a local weights file (``weights_only``), unwrapping ``"state_dict"``
    / ``"model"`` and a ``module.`` prefix; one-line :class:`ModelError` if unreadable."""
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        first = (str(error).strip().splitlines() or [""])[0]
        raise ModelError(f"{path}: not a readable weights file ({type(error).__name__}: "
                         f"{first[:160]})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state or not all(
            torch.is_tensor(v) for v in state.values()):
        raise ModelError(f"{path}: not a state dict of tensors")
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def load_matching(module: nn.Module, state: dict[str, Tensor], source: str,
                  ignore_prefixes: tuple[str, ...] = ()) -> None:
    """Load ``state`` into ``module`` strictly, or raise one line naming ``source`` and the first
    mismatching key (missing, unexpected, or of another shape)."""
    state = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    expected = module.state_dict()
    for key, value in expected.items():
        if key not in state:
            raise ModelError(f"{source}: weights do not fit this encoder: missing key '{key}'")
        if state[key].shape != value.shape:
            raise ModelError(f"{source}: weights do not fit this encoder: key '{key}' has shape "
                             f"{tuple(state[key].shape)}, expected {tuple(value.shape)}")
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise ModelError(f"{source}: weights do not fit this encoder: unexpected key "
                         f"'{unexpected[0]}' ({len(unexpected)} unexpected)")
    module.load_state_dict({k: v.float() if v.is_floating_point() else v
                            for k, v in state.items()}, strict=True)


class ResNetEncoder(nn.Module):
    """A torchvision ResNet without its classifier, returning :class:`ImageFeatures`.

    Args:
        arch: one of :func:`list_resnets`.
        pretrained: ``None``, a torchvision weights name, or a local file (module docstring).
        image_size: (H, W); defaults to 384x128 (IRRA's person size) or 64x32 for ``tiny``.
    """

    def __init__(self, arch: str = "resnet50", pretrained: str | None = None,
                 image_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        if arch not in list_resnets():
            raise ModelError(f"unknown ResNet '{arch}'; valid: {', '.join(list_resnets())}")
        self.arch = arch
        default_size = TINY_IMAGE_SIZE if arch == "tiny" else _ARCHS[arch][2]
        size = tuple(int(v) for v in (image_size or default_size))
        if len(size) != 2 or min(size) <= 0:
            raise ModelError(f"image_size must be (height, width), got {image_size}")
        self.image_size: tuple[int, int] = size  # type: ignore[assignment]
        self.image_mean = IMAGENET_MEAN
        self.image_std = IMAGENET_STD
        net = _tiny_resnet() if arch == "tiny" else _ARCHS[arch][0](weights=None)
        self.feature_dim = int(net.fc.in_features)
        net.fc = nn.Identity()  # type: ignore[assignment]  # the classifier is not ours
        self.net = net
        self._last_stride = 2
        if pretrained is not None:
            self._load(pretrained)

    @property
    def stride(self) -> int:
        return (8 if self.arch == "tiny" else 16) * self._last_stride

    def set_last_stride_one(self) -> None:
        """Stage 4 at stride 1 (its first block's conv and shortcut): a map twice as high and
        wide, as the re-id codes of TIPCB and NAFS do (24x8 instead of 12x4 at 384x128).
        Modules copied from stage 4 afterwards keep the stride 1."""
        for module in self.net.layer4[0].modules():
            if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
                module.stride = (1, 1)
        self._last_stride = 1

    def _load(self, pretrained: str) -> None:
        if _looks_like_path(pretrained):
            path = Path(pretrained)
            load_matching(self.net, read_state_dict(path), str(path), ignore_prefixes=("fc.",))
            return
        if self.arch == "tiny":
            raise ModelError("the tiny ResNet has no published weights; pass a weights file")
        enum = _ARCHS[self.arch][1]
        valid = [w.name for w in enum] + ["DEFAULT"]
        if pretrained not in valid:
            raise ModelError(f"unknown weights '{pretrained}' for {self.arch}; valid: "
                             f"{', '.join(valid)}, or the path of a weights file")
        weights = enum.DEFAULT if pretrained == "DEFAULT" else enum[pretrained]
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        cached = cache / Path(weights.url).name
        name = f"{enum.__name__}.{weights.name}"
        if cached.is_file():  # what torchvision would read: named in any error about it
            load_matching(self.net, read_state_dict(cached), f"{cached} ({name})",
                          ignore_prefixes=("fc.",))
            return
        try:
            state = weights.get_state_dict(progress=False, weights_only=True,
                                           map_location="cpu")
        except Exception as error:  # no network, proxy, refused...
            raise ModelError(
                f"cannot fetch {name} ({type(error).__name__}; offline?): download "
                f"{weights.url} into {cache}/ or pass the file as pretrained=/path/to/file"
            ) from None
        load_matching(self.net, dict(state), name, ignore_prefixes=("fc.",))

    def feature_map(self, pixels: Tensor) -> Tensor:
        """The last stage's feature map ``[B, C, H/stride, W/stride]``."""
        net = self.net
        x = net.maxpool(net.relu(net.bn1(net.conv1(pixels))))
        return net.layer4(net.layer3(net.layer2(net.layer1(x))))

    def forward(self, pixels: Tensor) -> ImageFeatures:
        """Global (average-pooled) feature, every location as a token, each location's share."""
        fmap = self.feature_map(pixels)
        tokens = fmap.flatten(2).transpose(1, 2)  # [B, h*w, C], row-major
        pooled = tokens.mean(dim=1)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        with torch.no_grad():
            share = torch.einsum("bnc,bc->bn", tokens.float(), pooled.float()).clamp_min(0)
            total = share.sum(dim=1, keepdim=True)
            # a degenerate all-zero map gets uniform scores instead of 0/0
            share = torch.where(total > 0, share / total.clamp_min(1e-12),
                                torch.full_like(share, 1.0 / share.shape[1]))
        return ImageFeatures(pooled=pooled, tokens=tokens, mask=mask, attention=share)
