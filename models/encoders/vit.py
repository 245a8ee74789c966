"""ViT and DeiT image encoders through ``timm``: CLS global feature + patch tokens + CLS attention.

The 2021-2023 T-ReID papers that use a plain ImageNet ViT (SAF, CFine's and LGUR's ViT variants)
take a timm ``VisionTransformer`` (ViT-B/16 or DeiT), resize its position embeddings to the
person image size (384x128 -> a 24x8 patch grid with 16x16 patches) and read every token of the
last block. Features (unprojected, in the ViT's width, e.g. 768-d for ViT-B):

* ``pooled``: the final-norm CLS token (what timm's ``token`` pooling gives the classifier).
* ``tokens``: the final-norm patch tokens, row-major (top-left first); prefix tokens other than
  CLS (DeiT's distillation token, register tokens) are neither global nor patches and are left out.
* ``mask``: all True (every patch is real).
* ``attention``: the last block's attention row of CLS over the patches, averaged over heads and
  renormalised over the patches (it has a share on the prefix tokens too). It is recomputed from
  the last block's own ``qkv`` on its input, without gradients: it only ranks tokens.

Architectures (``arch``): any timm ``vit_*`` / ``deit_*`` name that builds a
``VisionTransformer`` (``vit_base_patch16_224``, ``deit_base_patch16_224``,
``deit_small_patch16_224``, ``deit_base_distilled_patch16_224``...; a ``.tag`` suffix picks the
pretrained tag), and ``tiny`` (2 blocks, width 64, 2 heads, patch 16: 4x2 = 8 tokens at 64x32,
for tests and the CPU demo).

Weights (``pretrained``):

* ``None``: timm's random initialisation.
* ``"imagenet"``: timm's ImageNet weights for ``arch`` (its default tag unless ``arch`` names one),
  fetched through timm / the Hugging Face hub (whose cache makes it work offline once fetched);
  offline without them, a one-line :class:`ModelError` names the hub repository and file to fetch.
* a path to a local file: the timm model's state dict (``torch.save(vit.state_dict(), path)``,
  read with ``weights_only=True``) or the hub's ``model.safetensors``. Position embeddings of
  a square grid (what published weights have: 14x14 at 224) are resized bicubically to this
  encoder's grid, CLS position kept; the classifier
  (``head.*``) is ignored; every other key must match, so a file of another architecture is
  refused with one line naming the file and the first mismatching key.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn
from torch import Tensor, nn

from models.encoders.resnet import load_matching, read_state_dict
from models.errors import ModelError
from models.features import ImageFeatures

TINY_IMAGE_SIZE = (64, 32)
PERSON_IMAGE_SIZE = (384, 128)
TINY_OPTIONS = {"embed_dim": 64, "depth": 2, "num_heads": 2, "patch_size": 16, "mlp_ratio": 2.0}
_FAMILIES = ("vit_", "deit_", "deit3_")


def list_vits() -> list[str]:
    """Examples of ``arch`` (any timm ViT/DeiT name is accepted)."""
    return ["vit_base_patch16_224", "vit_small_patch16_224", "deit_base_patch16_224",
            "deit_small_patch16_224", "deit_base_distilled_patch16_224", "tiny"]


def _check_arch(arch: str) -> None:
    base = arch.split(".", 1)[0]
    if arch == "tiny":
        return
    if not base.startswith(_FAMILIES) or not timm.is_model(base):
        raise ModelError(f"unknown ViT '{arch}': a timm vit_*/deit_* name (e.g. "
                         f"{', '.join(list_vits())})")


def _build(arch: str, image_size: tuple[int, int], pretrained: bool) -> VisionTransformer:
    if arch == "tiny":
        net = VisionTransformer(img_size=image_size, num_classes=0, **TINY_OPTIONS)
    else:
        net = timm.create_model(arch, pretrained=pretrained, img_size=image_size, num_classes=0)
    if not isinstance(net, VisionTransformer) or not net.has_class_token:
        raise ModelError(f"timm model '{arch}' is not a ViT with a CLS token")
    return net


def _hub_hint(arch: str) -> str:
    """Where timm fetches ``arch``'s weights from, for the offline error."""
    try:
        cfg = timm.models.get_pretrained_cfg(arch)
    except Exception:  # unknown tag: the caller's message still names the model
        cfg = None
    hub = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if hub:
        return f"https://huggingface.co/{hub} (model.safetensors)"
    url = getattr(cfg, "url", None) if cfg is not None else None
    return url or f"timm's '{arch}' weights"


def read_weights(path: Path) -> dict[str, Tensor]:
    """A state dict from a ``.safetensors`` file or a torch file (``weights_only``)."""
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise ModelError(f"weights file not found: {path}")
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return dict(load_file(str(path)))
        except (SafetensorError, OSError, ValueError) as error:
            raise ModelError(f"{path}: not a readable safetensors file ({error})") from None
    return read_state_dict(path)


class ViTEncoder(nn.Module):
    """A timm ViT/DeiT without its classifier, returning :class:`ImageFeatures`.

    Args:
        arch: a timm ViT/DeiT name or ``tiny`` (module docstring).
        pretrained: ``None``, ``"imagenet"`` or a local weights file.
        image_size: (H, W); defaults to 384x128 (the person size) or 64x32 for ``tiny``.
    """

    def __init__(self, arch: str = "vit_base_patch16_224", pretrained: str | None = None,
                 image_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        _check_arch(arch)
        self.arch = arch
        size = tuple(int(v) for v in (image_size or (
            TINY_IMAGE_SIZE if arch == "tiny" else PERSON_IMAGE_SIZE)))
        if len(size) != 2 or min(size) <= 0:
            raise ModelError(f"image_size must be (height, width), got {image_size}")
        self.image_size: tuple[int, int] = size  # type: ignore[assignment]
        online = pretrained == "imagenet"
        if online and arch == "tiny":
            raise ModelError("the tiny ViT has no published weights; pass a weights file")
        try:
            self.net = _build(arch, size, pretrained=online)
        except ModelError:
            raise
        except Exception as error:  # no network, proxy, missing cache...
            if not online:
                raise ModelError(f"cannot build timm '{arch}' at {size}: {error}") from None
            raise ModelError(
                f"cannot fetch timm '{arch}' ImageNet weights ({type(error).__name__}; "
                f"offline?): download {_hub_hint(arch)} and pass it as pretrained=/path/to/file"
            ) from None
        cfg = getattr(self.net, "pretrained_cfg", None) or {}
        self.image_mean = tuple(cfg.get("mean", (0.485, 0.456, 0.406)))
        self.image_std = tuple(cfg.get("std", (0.229, 0.224, 0.225)))
        self.feature_dim = int(self.net.embed_dim)
        self.grid: tuple[int, int] = tuple(self.net.patch_embed.grid_size)  # type: ignore[assignment]
        if pretrained is not None and not online:
            self._load_file(Path(pretrained))

    def _load_file(self, path: Path) -> None:
        state = {k: v for k, v in read_weights(path).items() if not k.startswith("head")}
        state = self._resize_square_grid(state)
        try:  # timm's filter: resizes pos_embed to our grid, converts old layouts
            state = checkpoint_filter_fn(state, self.net)
        except Exception as error:  # a file of another architecture can trip it
            raise ModelError(f"{path}: weights do not fit this encoder "
                             f"({type(error).__name__}: {str(error)[:160]})") from None
        load_matching(self.net, state, str(path), ignore_prefixes=("head",))

    def _resize_square_grid(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """Resize a file's position embeddings from its square grid to ours.

        A file does not record its grid; published ViT weights are square (14x14 at 224), so a
        square number of patch positions is read as a square grid. timm's own filter only
        resizes when the counts differ, which would leave a 4x4 file unresized on an 8x2 grid.
        """
        pos = state.get("pos_embed")
        prefix = 0 if self.net.no_embed_class else int(self.net.num_prefix_tokens)
        if pos is None or pos.dim() != 3 or pos.shape[-1] != self.net.embed_dim:
            return state
        side = round((pos.shape[1] - prefix) ** 0.5)
        if side * side != pos.shape[1] - prefix or (side, side) == self.grid:
            return state
        resized = resample_abs_pos_embed(pos.float(), new_size=list(self.grid),
                                         old_size=[side, side], num_prefix_tokens=prefix)
        return {**state, "pos_embed": resized}

    def _cls_attention(self, block: nn.Module, x: Tensor) -> Tensor:
        """The block's attention row of CLS over every token ``[B, N]``, mean over heads."""
        attn = block.attn
        h = block.norm1(x)
        b, n, _ = h.shape
        qkv = attn.qkv(h).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
        q, k, _ = qkv.unbind(0)
        q, k = attn.q_norm(q), attn.k_norm(k)
        scores = (q[:, :, :1] * attn.scale) @ k.transpose(-2, -1)  # [B, heads, 1, N]
        return scores.float().softmax(dim=-1).mean(dim=1)[:, 0]

    def forward(self, pixels: Tensor) -> ImageFeatures:
        """CLS, patch tokens (prefix tokens left out), CLS attention over the patches."""
        net = self.net
        x = net.norm_pre(net.patch_drop(net._pos_embed(net.patch_embed(pixels))))
        for block in net.blocks[:-1]:
            x = block(x)
        last = net.blocks[-1]
        with torch.no_grad():
            row = self._cls_attention(last, x.detach())
        x = net.norm(last(x))
        prefix = int(net.num_prefix_tokens)
        tokens = x[:, prefix:]
        share = row[:, prefix:]
        share = share / share.sum(dim=1, keepdim=True).clamp_min(1e-12)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return ImageFeatures(pooled=x[:, 0], tokens=tokens, mask=mask,
                             attention=share.to(tokens.dtype))
