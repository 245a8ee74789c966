"""CFine: CLIP-driven fine-grained text-image person re-id (Yan et al., arXiv 2210.10276 /
IEEE TIP 2023), the MGCC paper's "CFine (M) CLIP-BERT" row of Table 2.

The paper has no public code; this follows its description of the two modules, in our words:

Model: CLIP's image tower (:class:`models.encoders.clip_image.CLIPImageEncoder`) and BERT, each
projected to one ``embed_dim`` space (global feature and every token alike, as in
:class:`models.methods.two_tower.TwoTowerModel`).

* Cross-grained feature refinement (CFR): not every patch or word is shared by the two
  modalities (background, occluders, filler words). Each sample keeps only its ``image_keep`` /
  ``text_keep`` most informative tokens, ranked by the encoder's last-layer attention of the
  global token ([CLS] / the image class token) over them (:func:`select_informative`). The
  cross-grained similarity then matches one modality's *global* feature with the *local* tokens
  of the other (:func:`cross_grained_similarity`): the text's global feature aggregates the
  image's kept patches by softmax attention over their cosines, and vice versa, and the two
  cosines are averaged.
* Fine-grained correspondence discovery (FCD): token-level matching between kept patches and
  kept words (:func:`fine_grained_similarity`): every word finds its most similar patch and every
  patch its most similar word; the mean of those best matches in both directions is the score.

Retrieval ranks by the sum of the global cosine, the cross-grained and the fine-grained
similarity. Training adds InfoNCE (:func:`models.losses.info_nce`, learnable temperature) on
each of the three similarity matrices and, with ``num_classes``, an identity loss on the global
features through a shared classifier.

Choices (see ``docs/fidelity.md``): without code, the ranking of tokens uses the encoders' own
CLS attention (the paper ranks by self-attention with the global token as well); the
cross-grained aggregation has no learned parameters beyond the projections, with a fixed
softmax temperature ``aggregation_temperature``; the keep ratios (0.5) and the loss (InfoNCE per
level) are our choices, as the paper text was not available to us here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses import identity_loss, info_nce
from models.methods.two_tower import LearnableTemperature, TwoTowerConfig, TwoTowerModel


@dataclass
class CFineConfig(TwoTowerConfig):
    """CFine; see :class:`TwoTowerConfig` for the encoders.

    Attributes:
        image_keep, text_keep: the fraction of valid patches / word pieces CFR keeps.
        aggregation_temperature: softmax temperature of the cross-grained aggregation.
        global_weight, cross_weight, fine_weight, id_weight: the losses' weights.
    """

    family: str = "cfine"
    image_encoder: str = "clip"
    text_encoder: str = "bert"
    backbone: str = "ViT-B-16"
    embed_dim: int = 512
    image_keep: float = 0.5
    text_keep: float = 0.5
    aggregation_temperature: float = 0.1
    global_weight: float = 1.0
    cross_weight: float = 1.0
    fine_weight: float = 1.0
    id_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("image_keep", "text_keep"):
            if not 0 < float(getattr(self, name)) <= 1:
                raise ModelError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if not float(self.aggregation_temperature) > 0:
            raise ModelError("aggregation_temperature must be positive, got "
                             f"{self.aggregation_temperature}")


def select_informative(features: ImageFeatures | TextFeatures, keep: float
                       ) -> ImageFeatures | TextFeatures:
    """CFR's token filter: each sample's ``ceil(keep * valid)`` tokens of highest attention.

    The result has ``max_b ceil(keep * valid_b)`` token slots; slots beyond a sample's own
    count are masked out.
    """
    valid = features.mask.sum(dim=1)
    kept = torch.ceil(valid.float() * keep).long().clamp(min=1)
    slots = max(1, int(kept.max())) if features.num_tokens else 0
    score = features.attention.float().masked_fill(~features.mask, -math.inf)
    order = score.argsort(dim=1, descending=True)[:, :slots]
    gather = order.unsqueeze(-1).expand(-1, -1, features.tokens.shape[-1])
    tokens = features.tokens.gather(1, gather)
    rank = torch.arange(slots, device=tokens.device).unsqueeze(0)
    mask = (rank < kept.unsqueeze(1)) & features.mask.gather(1, order)
    attention = features.attention.gather(1, order) * mask
    return type(features)(features.pooled, tokens, mask, attention)


def cross_grained_similarity(text: TextFeatures, image: ImageFeatures,
                             temperature: float) -> Tensor:
    """``[Q, G]``: each global feature against the other modality's kept tokens, aggregated
    by softmax over their cosines (text global -> patches, image global -> words), averaged."""

    def global_to_local(glob: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
        g = F.normalize(glob.float(), dim=-1)
        t = F.normalize(tokens.float(), dim=-1)
        cos = torch.einsum("qd,gnd->qgn", g, t).masked_fill(~mask.unsqueeze(0), -math.inf)
        weights = (cos / temperature).softmax(dim=-1).nan_to_num(0.0)
        aggregated = torch.einsum("qgn,gnd->qgd", weights, tokens.float())
        return (g.unsqueeze(1) * F.normalize(aggregated, dim=-1)).sum(-1)

    text_to_patches = global_to_local(text.pooled, image.tokens, image.mask)
    image_to_words = global_to_local(image.pooled, text.tokens, text.mask).t()
    return (text_to_patches + image_to_words) / 2


def fine_grained_similarity(text: TextFeatures, image: ImageFeatures) -> Tensor:
    """``[Q, G]``: FCD's word-patch correspondence, the mean best-match cosine of every kept word
    over kept patches and of every kept patch over kept words, averaged."""
    words = F.normalize(text.tokens.float(), dim=-1)
    patches = F.normalize(image.tokens.float(), dim=-1)
    cos = torch.einsum("qwd,gpd->qgwp", words, patches)
    pair_mask = text.mask[:, None, :, None] & image.mask[None, :, None, :]
    cos = cos.masked_fill(~pair_mask, -math.inf)
    word_best = cos.max(dim=3).values.masked_fill(~text.mask[:, None, :], 0.0)
    patch_best = cos.max(dim=2).values.masked_fill(~image.mask[None, :, :], 0.0)
    word_mean = word_best.sum(-1) / text.mask.sum(-1).clamp(min=1)[:, None]
    patch_mean = patch_best.sum(-1) / image.mask.sum(-1).clamp(min=1)[None, :]
    return (word_mean + patch_mean) / 2


def global_similarity(text: TextFeatures, image: ImageFeatures) -> Tensor:
    return F.normalize(text.pooled.float(), dim=-1) @ F.normalize(
        image.pooled.float(), dim=-1).t()


class CFine(TwoTowerModel):
    """CFine; ``forward`` returns {"global", "cross", "fine"} and, with ``num_classes``,
    {"id"}."""

    config: CFineConfig

    def __init__(self, config: CFineConfig) -> None:
        super().__init__(config)
        self.logit_scale = LearnableTemperature()
        self.classifier: nn.Linear | None = None
        if config.num_classes is not None and config.id_weight > 0:
            self.classifier = nn.Linear(int(config.embed_dim), config.num_classes, bias=False)

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        return select_informative(self.project_images(pixels),  # type: ignore[return-value]
                                  float(self.config.image_keep))

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        return select_informative(self.project_texts(tokens),  # type: ignore[return-value]
                                  float(self.config.text_keep))

    def _entries_per_pair(self, text: TextFeatures, image: ImageFeatures) -> int:
        return max(1, text.num_tokens * image.num_tokens)

    def level_similarities(self, text: TextFeatures, image: ImageFeatures) -> dict[str, Tensor]:
        """The three ``[Q, G]`` similarity matrices: global, cross-grained, fine-grained."""
        return {"global": global_similarity(text, image),
                "cross": cross_grained_similarity(
                    text, image, float(self.config.aggregation_temperature)),
                "fine": fine_grained_similarity(text, image)}

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        return sum(self.level_similarities(text, image).values())  # type: ignore[return-value]

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        image = self.encode_images(batch["images"])
        text = self.encode_texts(batch["tokens"])
        scale = self.logit_scale()
        config = self.config
        weights = {"global": config.global_weight, "cross": config.cross_weight,
                   "fine": config.fine_weight}
        losses = {level: weights[level] * info_nce(scale * sim, reduction="mean")
                  for level, sim in self.level_similarities(text, image).items()}
        if self.classifier is not None:
            losses["id"] = config.id_weight * identity_loss(
                self.classifier(image.pooled), self.classifier(text.pooled),
                labels=batch["pids"])
        return losses
