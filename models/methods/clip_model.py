"""The open_clip backbone as a retrieval model's encoders: what MGCC, IRRA and CLIP share.

:class:`CLIPRetrievalModel` holds one :class:`models.encoders.clip.Backbone` (image and text
towers of one CLIP) and takes the image size, normalisation, tokenizer and learnable temperature
from it; :class:`GlobalRetrievalModel` adds retrieval by the cosine of the global features alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import ModelConfig, RetrievalModel, drop_tokens
from models.encoders.clip import BACKBONE_PRESETS, TINY_MODEL_CFG, Backbone
from models.features import ImageFeatures, TextFeatures

# The logit scale is CLIP's learnable temperature, at most 100 as CLIP and open_clip keep it.
# As open_clip's training does, the *stored* value ``log(scale)`` is clamped in place after each
# optimiser step (:meth:`CLIPRetrievalModel.after_optimizer_step`); the forward pass uses
# ``exp`` of it unclamped. Clamping in the forward pass instead would cut the gradient whenever
# the value sits above the bound, and OpenAI's stored 4.6052 (exp = 100.03) does: the scale
# would then never move.
MAX_LOGIT_SCALE = 100.0


def clip_architecture(backbone: str, image_size: tuple[int, int] | None = None) -> dict:
    """Image size, patch grid and widths of a CLIP backbone preset, from open_clip's config
    (nothing is built); empty for a name that is not a CLIP preset."""
    import open_clip

    preset = BACKBONE_PRESETS.get(backbone)
    if preset is None:
        return {}
    cfg = TINY_MODEL_CFG if preset.open_clip_name == "tiny" else open_clip.get_model_config(
        preset.open_clip_name)
    size = tuple(int(v) for v in (image_size or preset.image_size))
    patch = int(cfg["vision_cfg"]["patch_size"])
    grid = (size[0] // patch, size[1] // patch)
    return {"backbone": backbone, "open_clip": preset.open_clip_name, "image_size": list(size),
            "patch_size": patch, "grid": list(grid), "num_patches": grid[0] * grid[1],
            "vision_width": int(cfg["vision_cfg"]["width"]),
            "text_width": int(cfg["text_cfg"]["width"]), "embed_dim": int(cfg["embed_dim"])}


class CLIPRetrievalModel(RetrievalModel):
    """A retrieval model whose two encoders are one open_clip CLIP (``self.backbone``)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.backbone = Backbone(
            config.backbone, pretrained=config.pretrained, image_size=config.image_size,
            quick_gelu=config.quick_gelu, pos_embed_resize=config.pos_embed_resize)
        self.image_size = self.backbone.image_size
        self.image_mean = self.backbone.image_mean  # type: ignore[assignment]
        self.image_std = self.backbone.image_std  # type: ignore[assignment]

    @property
    def context_length(self) -> int:
        return self.backbone.context_length

    @property
    def embed_dim(self) -> int:
        return self.backbone.embed_dim

    def tokenize(self, texts: list[str]) -> Tensor:
        return self.backbone.tokenize(texts)

    def logit_scale(self) -> Tensor:
        """CLIP's learnable temperature ``exp(logit_scale)`` (its stored value is kept at most
        ``log(100)`` by :meth:`after_optimizer_step`, so the gradient always flows)."""
        return self.backbone.clip.logit_scale.exp()

    def after_optimizer_step(self) -> None:
        """Clamp the stored logit scale to ``[0, log(100)]`` in place, as open_clip does."""
        with torch.no_grad():
            self.backbone.clip.logit_scale.clamp_(0, math.log(MAX_LOGIT_SCALE))

    def encoder_modules(self) -> Iterable[nn.Module]:
        """Every parameter of the open_clip model (logit_scale included, since it is CLIP's
        own) is "encoder"; everything added on top is "new" (empty for MGCC and CLIP)."""
        return (self.backbone,)

    def finalize_config(self, config: ModelConfig) -> None:
        config.quick_gelu = self.backbone.quick_gelu

    def reference_parameter_names(self) -> dict[str, str]:
        """``backbone.clip.X`` is ``base_model.X`` in IRRA's code (the same OpenAI CLIP keys)."""
        return {name: "base_model." + name.removeprefix("backbone.clip.")
                if name.startswith("backbone.clip.") else name
                for name, _ in self.named_parameters()}


class GlobalRetrievalModel(CLIPRetrievalModel):
    """A model that retrieves by the cosine of global features alone (CLIP baseline, IRRA).

    Its features carry no tokens (see :func:`models.base.drop_tokens`), so evaluation holds one
    vector per image and caption.
    """

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        return drop_tokens(self.backbone.encode_images(pixels))  # type: ignore[return-value]

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        return drop_tokens(self.backbone.encode_texts(tokens))  # type: ignore[return-value]

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        """Cosine of the global features, in float32 even under autocast."""
        with torch.autocast(text.pooled.device.type, enabled=False):
            return F.normalize(text.pooled.float(), dim=-1) @ F.normalize(
                image.pooled.float(), dim=-1).t()
