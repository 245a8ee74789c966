"""An open_clip CLIP model that returns token features and the last block's attention.

open_clip's ``encode_image`` / ``encode_text`` give only the global features, and its attention
blocks are called with ``need_weights=False``. The retrieval models need three more things:

* the patch tokens and word tokens, passed through the same final LayerNorm and projection as the
  global feature, so that every granularity lives in one joint space;
* the last block's attention row of the global token (image: CLS; text: end-of-text) over those
  tokens, averaged over heads, to rank tokens for MGCC's token selection;
* a mask of which token positions are real words.

So :class:`Backbone` runs the open_clip blocks itself (the library's own modules, in the library's
order) and recomputes the last block's attention from that block's input
(``ln_1 -> in_proj -> softmax(QK^T / sqrt(d_head) + mask)``), without gradients: the attention is
only ever used to pick tokens. The global features equal ``open_clip``'s ``encode_image`` /
``encode_text`` exactly (tested).

Weights (``pretrained``):

* ``None``: random initialisation (open_clip's own).
* an open_clip pretrained tag such as ``"openai"`` or ``"laion2b_s34b_b88k"``: downloaded by
  open_clip where a network exists; offline this raises a one-line :class:`ModelError` that says
  what to download and how to pass the file instead.
* a path to a local file: an open_clip state dict (``.pt``/``.pth``/``.bin``/``.safetensors``,
  optionally under a ``"state_dict"`` key) or an OpenAI CLIP checkpoint (the TorchScript archive
  OpenAI distributes, or its state dict). Both share one key layout in open_clip's ``CLIP`` class;
  the file is read as data only (``torch.load(weights_only=True)``; a TorchScript archive's
  tensors through the same weights-only unpickler, never ``torch.jit.load``: see
  :mod:`models.encoders.weights_file`), the position embeddings are resized to the target grid
  (e.g. 14x14 -> 24x8 for ViT-B/16 at 384x128), and loading is strict.

Position-embedding resize (``pos_embed_resize``): ``"bicubic-antialias"`` is open_clip's own
``resize_pos_embed`` (bicubic, antialiased); ``"bilinear"`` is what IRRA's code does
(``F.interpolate(..., mode="bilinear")``: no antialias, ``align_corners=False``, from the stored
values). With identical weights the two give image features that differ by ~1e-2; the IRRA
recipe uses IRRA's.

Quick-GELU: OpenAI's weights were trained with QuickGELU. ``quick_gelu=None`` (auto) follows
open_clip's pretrained config for a tag (on for ``"openai"``), and turns it on for files that
look like OpenAI's (a TorchScript archive, the ``input_resolution``/``context_length``/
``vocab_size`` entries, or float16 tensors, which is how OpenAI stores its weights); pass
``quick_gelu=True/False`` to override. Offline, a tag fails only after open_clip's download
retries (about a minute); ``HF_HUB_OFFLINE=1`` makes it fail at once.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.model import resize_pos_embed, resize_text_pos_embed
from open_clip.transformer import ResidualAttentionBlock
from torch import Tensor, nn

from models.encoders.weights_file import read_weights
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures

# OpenAI's BPE vocabulary as open_clip ships it: 49,408 ids, the last two are SOT and EOT.
VOCAB_SIZE = 49408
SOT_TOKEN_ID = 49406
EOT_TOKEN_ID = 49407

# A few-layer, narrow CLIP for tests and the CPU demo: 64x32 images in 8x8 patches (8x4 = 32
# patches), the real tokenizer and context length, 64-d joint space.
TINY_MODEL_CFG: dict = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": [64, 32], "layers": 2, "width": 64, "head_width": 32,
                   "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": VOCAB_SIZE, "width": 64, "heads": 2,
                 "layers": 2},
}


@dataclass(frozen=True)
class BackbonePreset:
    """A named backbone: which open_clip architecture, at which image size (H, W)."""

    open_clip_name: str
    image_size: tuple[int, int]
    description: str


BACKBONE_PRESETS: dict[str, BackbonePreset] = {
    "ViT-B-16": BackbonePreset("ViT-B-16", (384, 128),
                               "CLIP ViT-B/16 at 384x128 (24x8 patches), as IRRA"),
    "ViT-B-32-224": BackbonePreset("ViT-B-32", (224, 224),
                                   "CLIP ViT-B/32 at 224x224 (7x7 patches), as MGCC's code"),
    "tiny": BackbonePreset("tiny", (64, 32), "2-layer 64-wide ViT/8 at 64x32, for tests"),
}

_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
POS_EMBED_RESIZES = ("bicubic-antialias", "bilinear")
_OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")


def list_backbones() -> list[str]:
    """Names accepted as ``backbone=``."""
    return list(BACKBONE_PRESETS)


def _looks_like_path(pretrained: str) -> bool:
    return (
        Path(pretrained).exists()
        or pretrained.lower().endswith(_WEIGHT_SUFFIXES)
        or "/" in pretrained
        or "\\" in pretrained
    )


def _read_weights_file(path: Path) -> tuple[dict[str, Tensor], bool]:
    """Read a checkpoint file as data; return (state dict, whether it looks like OpenAI's release).

    Weights-only in every format, OpenAI's TorchScript archives included
    (:mod:`models.encoders.weights_file`): a file that would need unpickling is refused.
    """
    state_dict, is_torchscript = read_weights(path)
    if not isinstance(state_dict, dict) or not state_dict:
        raise ModelError(f"{path}: not a state dict")
    state_dict = dict(state_dict)
    openai_like = (
        is_torchscript
        or any(key in state_dict for key in _OPENAI_EXTRA_KEYS)
        or any(torch.is_tensor(v) and v.dtype == torch.float16 for v in state_dict.values())
    )
    return state_dict, openai_like


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def resize_pos_embed_bilinear(state_dict: dict[str, Tensor], grid: tuple[int, int]) -> None:
    """Resize ``visual.positional_embedding`` in place to ``grid`` (rows, cols) as IRRA does:
    the class token is kept, the square grid of the stored values is interpolated bilinearly
    without antialias (``align_corners=False``)."""
    old = state_dict.get("visual.positional_embedding")
    if old is None:
        return
    class_pos, grid_pos = old[:1], old[1:]
    side = math.isqrt(grid_pos.shape[0])
    if side * side != grid_pos.shape[0]:
        raise ValueError(f"stored position grid of {grid_pos.shape[0]} entries is not square")
    if (side, side) == tuple(grid):
        return
    image = grid_pos.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    image = F.interpolate(image, size=tuple(grid), mode="bilinear", align_corners=False,
                          antialias=False)
    resized = image.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1)
    state_dict["visual.positional_embedding"] = torch.cat([class_pos, resized], dim=0)


def _model_cfg(preset: BackbonePreset, image_size: tuple[int, int]) -> dict:
    if preset.open_clip_name == "tiny":
        cfg = copy.deepcopy(TINY_MODEL_CFG)
    else:
        cfg = open_clip.get_model_config(preset.open_clip_name)
        if cfg is None:  # pragma: no cover - open_clip always ships these configs
            raise ModelError(f"open_clip has no config for {preset.open_clip_name}")
    cfg["vision_cfg"]["image_size"] = list(image_size)
    cfg.pop("custom_text", None)
    cfg.pop("quick_gelu", None)
    return cfg


class Backbone(nn.Module):
    """An open_clip ``CLIP`` plus token features and last-block attention.

    Args:
        name: a preset from :data:`BACKBONE_PRESETS`.
        pretrained: ``None``, an open_clip pretrained tag, or a path to a weights file.
        image_size: (H, W) override of the preset's size; position embeddings are resized.
        quick_gelu: ``None`` decides from the weights (see the module docstring).
        pos_embed_resize: ``"bicubic-antialias"`` (open_clip) or ``"bilinear"`` (IRRA).
    """

    def __init__(
        self,
        name: str = "ViT-B-16",
        pretrained: str | None = None,
        image_size: tuple[int, int] | None = None,
        quick_gelu: bool | None = None,
        pos_embed_resize: str = "bicubic-antialias",
    ) -> None:
        super().__init__()
        if pos_embed_resize not in POS_EMBED_RESIZES:
            raise ModelError(f"unknown pos_embed_resize '{pos_embed_resize}'; valid: "
                             f"{', '.join(POS_EMBED_RESIZES)}")
        self.pos_embed_resize = pos_embed_resize
        if name not in BACKBONE_PRESETS:
            raise ModelError(
                f"unknown backbone '{name}'; valid backbones: {', '.join(list_backbones())}")
        preset = BACKBONE_PRESETS[name]
        size = tuple(int(v) for v in (image_size or preset.image_size))
        if len(size) != 2 or min(size) <= 0:
            raise ModelError(f"image_size must be (height, width), got {image_size}")
        self.name = name
        self.image_size: tuple[int, int] = size  # type: ignore[assignment]
        self.image_mean = tuple(OPENAI_DATASET_MEAN)
        self.image_std = tuple(OPENAI_DATASET_STD)

        state_dict: dict[str, Tensor] | None = None
        if pretrained is None:
            use_quick_gelu = bool(quick_gelu)
        elif _looks_like_path(pretrained):
            state_dict, openai_like = _read_weights_file(Path(pretrained))
            use_quick_gelu = openai_like if quick_gelu is None else quick_gelu
        else:
            tag_cfg = open_clip.get_pretrained_cfg(preset.open_clip_name, pretrained) or {}
            tag_quick_gelu = bool(tag_cfg.get("quick_gelu", pretrained == "openai"))
            use_quick_gelu = tag_quick_gelu if quick_gelu is None else quick_gelu
            self.image_mean = tuple(tag_cfg.get("mean", self.image_mean))
            self.image_std = tuple(tag_cfg.get("std", self.image_std))
        self.quick_gelu = use_quick_gelu

        cfg = _model_cfg(preset, size)
        if pretrained is not None and state_dict is None:
            if pos_embed_resize == "bilinear":
                # download at the native size, then resize the stored grid ourselves
                native = self._download(preset, pretrained, None, use_quick_gelu)
                state_dict = native.state_dict()
            else:
                self.clip = self._download(preset, pretrained, size, use_quick_gelu)
        if state_dict is not None or pretrained is None:
            self.clip = open_clip.CLIP(**cfg, quick_gelu=use_quick_gelu)
            if state_dict is not None:
                self._load_state_dict(state_dict, pretrained)
        self._check_structure()
        self.context_length = int(self.clip.context_length)
        self.embed_dim = int(self.clip.visual.output_dim)
        self.vocab_size = int(self.clip.vocab_size)
        self._tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=self.context_length)

    # ----------------------------------------------------------------------------- weights
    @staticmethod
    def _download(preset: BackbonePreset, tag: str, size: tuple[int, int] | None,
                  quick_gelu: bool) -> open_clip.CLIP:
        name = preset.open_clip_name
        tags = open_clip.list_pretrained_tags_by_model(name) if name != "tiny" else []
        if tag not in tags:
            raise ModelError(
                f"unknown pretrained tag '{tag}' for backbone {name}; valid tags: "
                f"{', '.join(tags) or 'none (tiny has no published weights)'}; "
                "or pass the path of a weights file")
        try:
            model = open_clip.create_model(
                name, pretrained=tag, force_image_size=size, force_quick_gelu=quick_gelu)
        except Exception as error:
            source_cfg = open_clip.get_pretrained_cfg(name, tag)
            where = source_cfg.get("url") or f"hf-hub:{source_cfg.get('hf_hub', '?')}"
            raise ModelError(
                f"cannot fetch open_clip weights {name}/{tag} ({type(error).__name__}; offline?): "
                f"where a network exists download {where} and pass the file as "
                "pretrained='/path/to/file'") from None
        if not isinstance(model, open_clip.CLIP):  # pragma: no cover - ViT presets only
            raise ModelError(f"{name}/{tag} is not a plain CLIP model")
        return model

    def _load_state_dict(self, state_dict: dict[str, Tensor], source: str) -> None:
        for key in _OPENAI_EXTRA_KEYS:
            state_dict.pop(key, None)
        state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
        state_dict = {k: v.float() if v.is_floating_point() else v
                      for k, v in state_dict.items()}
        if self.clip.logit_bias is None:
            state_dict.pop("logit_bias", None)
        if "text.positional_embedding" in state_dict and "positional_embedding" not in state_dict:
            raise ModelError(f"{source}: a custom-text open_clip checkpoint is not supported")
        try:
            if self.pos_embed_resize == "bilinear":
                resize_pos_embed_bilinear(state_dict, tuple(self.clip.visual.grid_size))
            else:
                resize_pos_embed(state_dict, self.clip)
            resize_text_pos_embed(state_dict, self.clip)
        except Exception as error:
            raise ModelError(f"{source}: cannot resize position embeddings "
                             f"({_first_line(error)})") from None
        expected = self.clip.state_dict()
        # a traced (TorchScript) model also stores non-persistent buffers such as attn_mask
        for name, _ in self.clip.named_buffers():
            if name not in expected:
                state_dict.pop(name, None)
        missing = [k for k in expected if k not in state_dict]
        unexpected = [k for k in state_dict if k not in expected]
        wrong_shapes = [k for k, v in state_dict.items()
                        if k in expected and expected[k].shape != v.shape]
        if missing or unexpected or wrong_shapes:
            examples = missing[:2] + unexpected[:2] + wrong_shapes[:2]
            raise ModelError(
                f"{source}: weights do not fit backbone '{self.name}' ({len(missing)} missing, "
                f"{len(unexpected)} unexpected, {len(wrong_shapes)} wrongly shaped entries, "
                f"e.g. {', '.join(examples)})")
        self.clip.load_state_dict(state_dict, strict=True)

    def _check_structure(self) -> None:
        visual = self.clip.visual
        blocks = list(visual.transformer.resblocks) + list(self.clip.transformer.resblocks)
        if not all(isinstance(b, ResidualAttentionBlock) for b in blocks):  # pragma: no cover
            raise ModelError("only open_clip's standard attention blocks are supported")
        if getattr(visual, "attn_pool", None) is not None or visual.pool_type != "tok":
            raise ModelError("only CLS-token ViT image towers are supported")  # pragma: no cover

    # ----------------------------------------------------------------------------- encoders
    def tokenize(self, texts: list[str]) -> Tensor:
        """CLIP BPE tokens ``[B, context_length]``: SOT, words, EOT, zero padding (truncated)."""
        return self._tokenizer(list(texts), context_length=self.context_length)

    @staticmethod
    def _last_block_attention(
        block: ResidualAttentionBlock, x: Tensor, query_index: Tensor,
        attn_mask: Tensor | None,
    ) -> Tensor:
        """Attention row of token ``query_index[b]`` in ``block``, averaged over heads: [B, L]."""
        attn = block.attn
        h = block.ln_1(x)
        batch, length, width = h.shape
        heads = attn.num_heads
        head_dim = width // heads
        qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias)
        q, k, _ = qkv.split(width, dim=-1)
        rows = torch.arange(batch, device=x.device)
        q = q[rows, query_index].view(batch, heads, head_dim)
        k = k.view(batch, length, heads, head_dim)
        scores = torch.einsum("bhd,blhd->bhl", q.float(), k.float()) / math.sqrt(head_dim)
        if attn_mask is not None:
            scores = scores + attn_mask[query_index].float().unsqueeze(1)
        return scores.softmax(dim=-1).mean(dim=1)

    def image_tokens(self, pixels: Tensor, project: bool = True,
                     patch_norm: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        """CLS ``[B, D]``, patches ``[B, n, D]``, CLS attention ``[B, n]``.

        ``project=True`` maps both through CLIP's visual projection (the joint space, ``D`` =
        ``embed_dim``); ``False`` keeps them in the vision width (after ``ln_post``), the space
        MGCC's paper and release use. ``patch_norm=False`` returns the patches before
        ``ln_post``, as Hugging Face's ``last_hidden_state`` (the MGCC release) gives them.
        The attention is the raw softmax row over patches (CLS column dropped, not
        renormalised).
        """
        visual = self.clip.visual
        x = visual._embeds(pixels)
        blocks = visual.transformer.resblocks
        for block in blocks[:-1]:
            x = block(x)
        with torch.no_grad():
            cls_index = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            attention = self._last_block_attention(blocks[-1], x.detach(), cls_index, None)
        x = blocks[-1](x)
        pooled, tokens = visual._pool(x)
        if not patch_norm:
            tokens = x[:, 1:]
        if project and visual.proj is not None:
            pooled = pooled @ visual.proj
            tokens = tokens @ visual.proj
        return pooled, tokens, attention[:, 1:]

    def text_tokens(self, tokens: Tensor,
                    project: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Tokens at every position ``[B, L, D]``, the EOT index ``[B]``, the EOT attention row
        ``[B, L]`` (causal, raw softmax), and the EOT feature ``[B, D]``.

        ``project=True`` maps them through CLIP's text projection (the joint space); ``False``
        keeps the text width after ``ln_final`` (for a model's own projection, e.g. MGCC's).
        """
        clip = self.clip
        length = tokens.shape[1]
        if length > self.context_length:
            raise ModelError(f"token sequences of length {length} exceed the context length "
                             f"{self.context_length}")
        cast_dtype = clip.transformer.get_cast_dtype()
        x = clip.token_embedding(tokens).to(cast_dtype)
        x = x + clip.positional_embedding[:length].to(cast_dtype)
        attn_mask = clip.attn_mask[:length, :length] if clip.attn_mask is not None else None
        eot_index = tokens.argmax(dim=-1)  # EOT has the largest id, as in open_clip's pooling
        blocks = clip.transformer.resblocks
        for block in blocks[:-1]:
            x = block(x, attn_mask=attn_mask)
        with torch.no_grad():
            attention = self._last_block_attention(blocks[-1], x.detach(), eot_index, attn_mask)
        x = blocks[-1](x, attn_mask=attn_mask)
        x = clip.ln_final(x)
        if project and isinstance(clip.text_projection, nn.Linear):
            x = clip.text_projection(x)
        elif project and clip.text_projection is not None:
            x = x @ clip.text_projection
        pooled = x[torch.arange(x.shape[0], device=x.device), eot_index]
        return x, eot_index, attention, pooled

    @property
    def vision_width(self) -> int:
        """Width of the image tower's tokens before CLIP's projection (768 for ViT-B)."""
        return int(self.clip.visual.transformer.width)

    @property
    def text_width(self) -> int:
        """Width of the text tower's tokens before CLIP's projection (512 for ViT-B)."""
        return int(self.clip.transformer.width)

    def encode_images(self, pixels: Tensor, project: bool = True,
                      patch_norm: bool = True) -> ImageFeatures:
        """Global, patch tokens (all valid) and the CLS attention renormalised over patches."""
        pooled, tokens, attention = self.image_tokens(pixels, project, patch_norm)
        mask = torch.ones(attention.shape, dtype=torch.bool, device=attention.device)
        return ImageFeatures(pooled, tokens, mask, _renormalise(attention, mask))

    def encode_texts(self, tokens: Tensor, project: bool = True) -> TextFeatures:
        """Global (EOT), word tokens and the EOT attention renormalised over words.

        The token dimension covers positions ``1 .. max_eot - 1`` of the batch (SOT dropped,
        trimmed after the longest caption); ``mask`` is True exactly on words, i.e. positions
        strictly between SOT and that caption's EOT.
        """
        all_tokens, eot_index, attention, pooled = self.text_tokens(tokens, project)
        width = max(int(eot_index.max().item()) - 1, 1)
        positions = torch.arange(1, width + 1, device=tokens.device)
        mask = positions.unsqueeze(0) < eot_index.unsqueeze(1)
        words = all_tokens[:, 1:width + 1]
        word_attention = attention[:, 1:width + 1]
        return TextFeatures(pooled, words, mask, _renormalise(word_attention, mask))


def _renormalise(attention: Tensor, mask: Tensor) -> Tensor:
    """Zero the invalid positions and rescale each row to sum to 1 (all-zero rows stay zero)."""
    attention = attention.float() * mask
    total = attention.sum(dim=-1, keepdim=True)
    return attention / total.clamp_min(torch.finfo(attention.dtype).tiny)
