"""SAF: semantic-aligned feature representation (Li, Cao & Zhang, "Learning Semantic-Aligned
Feature Representation for Text-based Person Search", ICASSP 2022, arXiv 2112.06714; official
code ``reallsp/SAF``), the MGCC paper's "SAF (M) ViT-BERT" row of Table 2.

Built from the paper and its release (``models/model.py``, ``utils/metric.py``, ``train.py``,
``test.py``, ``scripts/train.sh``), read to learn; where they differ the choice is written in
``docs/fidelity.md``.

Model: a ViT-B/16 for images and BERT-base for captions, both 768-d, with *no* projection: the
whole sequence of each backbone's last layer (image: [CLS] + patches after the final norm; text:
every word piece, [CLS] and [SEP] included) goes into the *semantic-aligned feature aggregation*
(the code's ``Block``), one module shared by both modalities:

* one LayerNorm, then a bias-free ``qkv`` linear giving ``num_parts`` *full-width* heads (head
  dimension = 768, scale ``768 ** -0.5``); only the [CLS] row of the attention is read, so the
  query of every part is the sample's own [CLS] and the keys/values are all of its tokens
  ([CLS] included, text padding masked);
* no output projection, no residual, no MLP: the heads' outputs are the part features. The
  release lays them out with ``reshape(B, N, C, H)`` over a ``[B, N, H, C]`` tensor, which
  interleaves channels: part ``j``'s channel ``c`` is entry ``c * H + j`` of the heads'
  concatenated outputs. We keep that layout (:func:`release_part_layout`), because the published
  numbers come from it.

Every feature (global [CLS] and each part, both modalities) goes through one shared BatchNorm1d
(the code's ``bottleneck_image``; its bias frozen at 0), called separately per feature in the
code's order (image global, text global, then image / text part ``j`` for each ``j``), so that its
batch statistics and running averages are the code's.

Losses (``utils/metric.py`` ``Loss``), over the global feature and the ``num_parts`` parts:
``cmpm``: the sum of the 11 CMPM losses; ``cmpc``: the sum of the 11 CMPC losses through one
shared classifier (with ``num_classes``); ``diversity``: ``diversity_weight`` x (image + text)
of :func:`part_diversity` (the Frobenius norm of the off-diagonal cosine Gram of a sample's
parts, over ``K ** 2``, averaged over the batch). Retrieval (``compute_topk``): the sum of the 11
cosines, global and parts. CMPM and CMPC are the loss library's; one difference remains: the
library's CMPM divides the label mask by its row sum (the CMPM paper), the release by its L2 norm
(equal unless a batch holds several pairs of one person; ``docs/fidelity.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.distributed import gather
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses import cmpc_loss, cmpm_loss
from models.methods.two_tower import TwoTowerConfig, TwoTowerModel


@dataclass
class SAFConfig(TwoTowerConfig):
    """SAF; see :class:`TwoTowerConfig` for the encoders.

    ``embed_dim`` must equal both backbones' width: SAF has no projection (code: 768).

    Attributes:
        num_parts: full-width heads of the aggregation = part features per sample (code:
            ``--num_heads 10``).
        cmpm_weight, cmpc_weight, diversity_weight: the losses' weights (code: 1, 1,
            ``lambda_diversity`` 0.2).
    """

    family: str = "saf"
    image_encoder: str = "vit"
    backbone: str = "vit_base_patch16_384.orig_in21k_ft_in1k"
    image_size: tuple[int, int] | None = (224, 224)
    text_encoder: str = "bert"
    bert_max_length: int = 100
    embed_dim: int = 768
    num_parts: int = 10
    cmpm_weight: float = 1.0
    cmpc_weight: float = 1.0
    diversity_weight: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if int(self.num_parts) < 1:
            raise ModelError(f"num_parts must be positive, got {self.num_parts}")
        for name in ("cmpm_weight", "cmpc_weight", "diversity_weight"):
            if float(getattr(self, name)) < 0:
                raise ModelError(f"{name} must be >= 0, got {getattr(self, name)}")


def release_part_layout(heads: Tensor) -> Tensor:
    """Part features ``[B, H, C]`` from the heads' outputs ``[B, H, C]`` as the release lays them
    out: the concatenated heads ``[B, H * C]`` read as ``[B, C, H]``, part ``j`` = column ``j``."""
    batch, num_heads, dim = heads.shape
    return heads.reshape(batch, dim, num_heads).transpose(1, 2)


class SemanticAlignedAggregation(nn.Module):
    """The code's ``Block``: LayerNorm + ``num_parts`` full-width heads queried by [CLS]."""

    def __init__(self, dim: int, num_parts: int) -> None:
        super().__init__()
        self.num_parts = num_parts
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * num_parts * dim, bias=False)
        self.scale = dim ** -0.5

    def forward(self, sequence: Tensor, valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Parts ``[B, K, D]`` (release layout) and the [CLS] attention ``[B, K, N]``.

        Args:
            sequence: ``[B, N, D]`` all tokens, [CLS] first.
            valid: ``[B, N]`` True on real tokens (None: all real); padding gets no attention.
        """
        batch, length, dim = sequence.shape
        heads = self.num_parts
        qkv = self.qkv(self.norm(sequence)).view(batch, length, 3, heads, dim)
        query = qkv[:, 0, 0]                      # [B, H, D]: the [CLS] row only
        keys = qkv[:, :, 1].transpose(1, 2)       # [B, H, N, D]
        values = qkv[:, :, 2].transpose(1, 2)
        scores = torch.einsum("bhd,bhnd->bhn", query, keys) * self.scale
        if valid is not None:  # the code's additive mask: (1 - mask) * -10000
            scores = scores + (~valid).to(scores.dtype).unsqueeze(1) * -10000.0
        attention = scores.softmax(dim=-1)
        heads_out = torch.einsum("bhn,bhnd->bhd", attention, values)
        return release_part_layout(heads_out), attention


class SAF(TwoTowerModel):
    """SAF; ``forward`` returns {"cmpm", "diversity"} (+ "cmpc" with ``num_classes``).

    Features: ``pooled`` the normalised [CLS]; ``tokens`` the ``num_parts`` normalised part
    features (all valid); ``attention`` uniform over the parts (they are not ranked)."""

    batch_gathers = ("image global + parts", "text global + parts", "person ids")

    config: SAFConfig

    def __init__(self, config: SAFConfig) -> None:
        super().__init__(config)
        dim = int(config.embed_dim)
        widths = (self.image_encoder.feature_dim, self.text_encoder.feature_dim)
        if widths != (dim, dim):
            raise ModelError(f"SAF has no projection: embed_dim ({dim}) must equal the image "
                             f"and text encoder widths, got {widths[0]} and {widths[1]}")
        # the code feeds the backbones' features straight to the aggregation
        self.image_projection = nn.Identity()
        self.text_projection = nn.Identity()
        self.aggregation = SemanticAlignedAggregation(dim, int(config.num_parts))
        self.bottleneck = nn.BatchNorm1d(dim)  # the code's bottleneck_image, both modalities
        self.bottleneck.bias.requires_grad_(False)
        self.cmpc_weight: nn.Parameter | None = None
        if config.num_classes is not None and config.cmpc_weight > 0:
            self.cmpc_weight = nn.Parameter(torch.empty(dim, config.num_classes))
            nn.init.xavier_uniform_(self.cmpc_weight)

    def image_sequence(self, pixels: Tensor) -> tuple[Tensor, None]:
        """[CLS] + patch tokens of the ViT's last layer ``[B, 1 + P, D]``; all valid."""
        raw = self.image_encoder(pixels)
        return torch.cat([raw.pooled.unsqueeze(1), raw.tokens], dim=1), None

    def text_sequence(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Every word-piece state of BERT's last layer ``[B, L, D]`` ([CLS], [SEP] included)
        and the non-padding mask (the code's ``input_masks``)."""
        raw = self.text_encoder(tokens)
        pad_id = self.text_encoder.special_ids[0]
        return torch.cat([raw.pooled.unsqueeze(1), raw.tokens], dim=1), tokens != pad_id

    def _raw(self, sequence: Tensor, valid: Tensor | None) -> tuple[Tensor, Tensor]:
        """The [CLS] and the parts before the BatchNorm."""
        parts, _ = self.aggregation(sequence, valid)
        return sequence[:, 0], parts

    def _features(self, cls: type, sequence: Tensor,
                  valid: Tensor | None) -> ImageFeatures | TextFeatures:
        """Global and part features after the shared BatchNorm (uniform part attention)."""
        global_raw, parts_raw = self._raw(sequence, valid)
        pooled = self.bottleneck(global_raw)
        parts = torch.stack([self.bottleneck(parts_raw[:, k])
                             for k in range(parts_raw.shape[1])], dim=1)
        batch, num_parts = parts.shape[:2]
        mask = torch.ones(batch, num_parts, dtype=torch.bool, device=parts.device)
        uniform = torch.full((batch, num_parts), 1.0 / num_parts, device=parts.device)
        return cls(pooled, parts, mask, uniform.to(parts.dtype))

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        return self._features(ImageFeatures, *self.image_sequence(pixels))  # type: ignore

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        return self._features(TextFeatures, *self.text_sequence(tokens))  # type: ignore

    def _entries_per_pair(self, text: TextFeatures, image: ImageFeatures) -> int:
        return 1 + text.tokens.shape[1]

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        """The sum of the cosines of the global features and of each part (the code's
        ``compute_topk``)."""
        text_all = F.normalize(all_features(text).float(), dim=-1)
        image_all = F.normalize(all_features(image).float(), dim=-1)
        return torch.einsum("qkd,gkd->qg", text_all, image_all)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        image_global, image_parts = self._raw(*self.image_sequence(batch["images"]))
        text_global, text_parts = self._raw(*self.text_sequence(batch["tokens"]))
        pids = batch["pids"]
        # the shared BatchNorm, called per feature in the code's order
        image = [self.bottleneck(image_global)]
        text = [self.bottleneck(text_global)]
        for k in range(image_parts.shape[1]):
            image.append(self.bottleneck(image_parts[:, k]))
            text.append(self.bottleneck(text_parts[:, k]))
        return saf_losses(torch.stack(image, 1), torch.stack(text, 1), pids, self.config,
                          self.cmpc_weight)


def all_features(features: ImageFeatures | TextFeatures) -> Tensor:
    """``[B, 1 + K, D]``: the global feature, then the parts."""
    return torch.cat([features.pooled.unsqueeze(1), features.tokens], dim=1)


def saf_losses(image: Tensor, text: Tensor, pids: Tensor, config: SAFConfig,
               classifier: Tensor | None = None) -> dict[str, Tensor]:
    """SAF's loss terms (the code's ``Loss.forward``) from the normalised features.

    Args:
        image, text: ``[B, 1 + K, D]`` the global feature then the ``K`` parts, after the
            shared BatchNorm.
        pids: ``[B]`` person ids.
        config: the loss weights.
        classifier: ``[D, C]`` the CMPC classifier shared by the 1 + K features (None: no CMPC).
    """
    count = image.shape[1]
    # CMPM compares all pairs of the (global) batch; diversity and CMPC are per sample
    every_image, every_text, every_pid = gather(image), gather(text), gather(pids)
    losses = {
        "cmpm": config.cmpm_weight * sum(cmpm_loss(every_image[:, k], every_text[:, k], every_pid)
                                         for k in range(count)),
        "diversity": config.diversity_weight * (part_diversity(image[:, 1:])
                                                + part_diversity(text[:, 1:])),
    }
    if classifier is not None:
        losses["cmpc"] = config.cmpc_weight * sum(
            cmpc_loss(image[:, k], text[:, k], pids, classifier) for k in range(count))
    return losses


def part_diversity(parts: Tensor) -> Tensor:
    """SAF's diversity term for ``[B, K, D]`` parts: per sample, the Frobenius norm of the cosine
    Gram matrix with its diagonal zeroed, over ``K ** 2``; averaged over the batch (0 when the
    parts are orthogonal, ``sqrt(K (K - 1)) / K ** 2`` when they are identical)."""
    num_parts = parts.shape[1]
    unit = F.normalize(parts.float(), dim=-1)
    gram = unit @ unit.transpose(1, 2)
    off_diagonal = gram * (1 - torch.eye(num_parts, device=parts.device, dtype=gram.dtype))
    return (off_diagonal.flatten(1).norm(dim=1) / num_parts ** 2).mean()
