"""SAF: semantic-aligned feature aggregation (Li, Cao & Zhang, "Learning Semantic-Aligned Feature
Representation for Text-based Person Search", ICASSP 2022), the MGCC paper's "SAF (M) ViT-BERT"
row of Table 2. No public code exists; this follows the paper's abstract and method outline,
and every detail it does not fix is our choice, written down here and in ``docs/fidelity.md``.

Model: an ImageNet ViT (timm, :mod:`models.encoders.vit`) for images and BERT for captions,
each projected to the joint space by one linear layer (global feature and every token alike).
The *semantic-aligned feature aggregation* (SAFA) turns each modality's tokens into ``num_parts``
part-aware features: ``num_parts`` learnable part queries attend, through one multi-head
attention shared by both modalities, over the patch tokens of an image or the word tokens of a
caption (padding masked out). Because the queries and the attention are shared, part ``k`` of
an image and part ``k`` of a caption are aggregated by the same learnt "semantic" (the paper's
alignment by construction), which the losses then enforce:

* ``global``: CMPM (:func:`models.losses.cmpm_loss`) on the two global features (CLS tokens);
* ``part``: the cross-modality part alignment loss, CMPM between image part ``k`` and text part
  ``k``, averaged over the parts;
* ``diversity``: each part should gather different tokens: the mean squared cosine between a
  sample's different part features (``||P P^T - I||^2`` over the off-diagonal), both modalities;
* ``id`` (with ``num_classes``): CMPC on the global features (identity supervision, as the
  2018-2022 CMPM-based systems do).

Retrieval: ``(cos(global) + mean_k cos(part_k)) / 2``.

Choices (no code to follow): 6 parts; 8 attention heads; CMPM as the matching loss of both the
global and the part level (the paper's abstract names the part alignment and diversity losses but
not the matching loss); diversity on the part features rather than on the attention maps;
diversity weight 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses import cmpc_loss, cmpm_loss
from models.methods.two_tower import TwoTowerConfig, TwoTowerModel


@dataclass
class SAFConfig(TwoTowerConfig):
    """SAF; see :class:`TwoTowerConfig` for the encoders.

    Attributes:
        num_parts: learnable part queries (part-aware features per sample).
        num_heads: heads of the aggregation's multi-head attention (must divide ``embed_dim``).
        global_weight, part_weight, diversity_weight, id_weight: the losses' weights.
    """

    family: str = "saf"
    image_encoder: str = "vit"
    backbone: str = "vit_base_patch16_224"
    text_encoder: str = "bert"
    embed_dim: int = 768
    num_parts: int = 6
    num_heads: int = 8
    global_weight: float = 1.0
    part_weight: float = 1.0
    diversity_weight: float = 0.1
    id_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if int(self.num_parts) < 1:
            raise ModelError(f"num_parts must be positive, got {self.num_parts}")
        if int(self.num_heads) < 1 or int(self.embed_dim) % int(self.num_heads):
            raise ModelError(f"num_heads ({self.num_heads}) must divide embed_dim "
                             f"({self.embed_dim})")
        for name in ("global_weight", "part_weight", "diversity_weight", "id_weight"):
            if float(getattr(self, name)) < 0:
                raise ModelError(f"{name} must be >= 0, got {getattr(self, name)}")


class PartAggregation(nn.Module):
    """Learnable part queries + one multi-head attention over a modality's tokens."""

    def __init__(self, dim: int, num_parts: int, num_heads: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_parts, dim) * dim ** -0.5)
        self.attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Part features ``[B, K, D]`` and each part's attention over the tokens ``[B, K, N]``
        (heads averaged; zero on padding)."""
        queries = self.queries.unsqueeze(0).expand(tokens.shape[0], -1, -1).to(tokens.dtype)
        parts, weights = self.attention(queries, tokens, tokens, key_padding_mask=~mask,
                                        need_weights=True, average_attn_weights=True)
        return self.norm(parts + queries), weights


class SAF(TwoTowerModel):
    """SAF; ``forward`` returns {"global", "part", "diversity"} (+ "id" with ``num_classes``).

    Features: ``pooled`` the projected CLS, ``tokens`` the ``num_parts`` part features (all
    valid), ``attention`` uniform over the parts (they are not ranked)."""

    config: SAFConfig

    def __init__(self, config: SAFConfig) -> None:
        super().__init__(config)
        self.aggregation = PartAggregation(int(config.embed_dim), int(config.num_parts),
                                           int(config.num_heads))
        self.cmpc_weight: nn.Parameter | None = None
        if config.num_classes is not None and config.id_weight > 0:
            self.cmpc_weight = nn.Parameter(torch.empty(config.embed_dim, config.num_classes))
            nn.init.xavier_uniform_(self.cmpc_weight)

    def _parts(self, features: ImageFeatures | TextFeatures) -> ImageFeatures | TextFeatures:
        parts, _ = self.aggregation(features.tokens, features.mask)
        batch, num_parts = parts.shape[:2]
        mask = torch.ones(batch, num_parts, dtype=torch.bool, device=parts.device)
        uniform = torch.full((batch, num_parts), 1.0 / num_parts, device=parts.device)
        return type(features)(features.pooled, parts, mask, uniform.to(parts.dtype))

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        return self._parts(self.project_images(pixels))  # type: ignore[return-value]

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        return self._parts(self.project_texts(tokens))  # type: ignore[return-value]

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        global_cos = F.normalize(text.pooled.float(), dim=-1) @ F.normalize(
            image.pooled.float(), dim=-1).t()
        text_parts = F.normalize(text.tokens.float(), dim=-1)   # [Q, K, D]
        image_parts = F.normalize(image.tokens.float(), dim=-1)  # [G, K, D]
        part_cos = torch.einsum("qkd,gkd->qg", text_parts, image_parts) / text_parts.shape[1]
        return (global_cos + part_cos) / 2

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        image, text, pids = (self.encode_images(batch["images"]),
                             self.encode_texts(batch["tokens"]), batch["pids"])
        config = self.config
        num_parts = image.tokens.shape[1]
        part = sum(cmpm_loss(image.tokens[:, k], text.tokens[:, k], pids)
                   for k in range(num_parts)) / num_parts
        losses = {
            "global": config.global_weight * cmpm_loss(image.pooled, text.pooled, pids),
            "part": config.part_weight * part,
            "diversity": config.diversity_weight * (
                part_diversity(image.tokens) + part_diversity(text.tokens)),
        }
        if self.cmpc_weight is not None:
            losses["id"] = config.id_weight * cmpc_loss(image.pooled, text.pooled, pids,
                                                        self.cmpc_weight)
        return losses


def part_diversity(parts: Tensor) -> Tensor:
    """Mean squared cosine between different parts of a sample (0 when they are orthogonal)."""
    num_parts = parts.shape[1]
    if num_parts < 2:
        return parts.new_zeros(())
    unit = F.normalize(parts.float(), dim=-1)
    gram = unit @ unit.transpose(1, 2)
    off_diagonal = ~torch.eye(num_parts, dtype=torch.bool, device=parts.device)
    return gram[:, off_diagonal].pow(2).mean()
