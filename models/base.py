"""What every retrieval model shares: its config fields, the backbone, InfoNCE, chunking.

The trainer and evaluator see only the small interface of contract C4 (``encode_images``,
``encode_texts``, ``similarity``, ``forward``, ``parameter_groups`` and a few attributes); the
families (:mod:`models.mgcc`, :mod:`models.irra`, :mod:`models.clip`) differ in what they encode,
how they compare and which losses they return.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.backbone import Backbone
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures

# The logit scale is CLIP's learnable temperature, clamped at 100 as CLIP and open_clip do.
MAX_LOGIT_SCALE = 100.0
# Default chunk budget: at most this many (text, image, patch, word) similarity entries per block.
DEFAULT_CHUNK_ENTRIES = 1 << 24


@dataclass
class ModelConfig:
    """Fields every model family has. ``dataclasses.asdict`` of a config is JSON-able and
    ``build_model_from_config`` of that dict rebuilds the same architecture.

    Attributes:
        family: which model class ("mgcc", "irra", "clip"); fixed per subclass.
        name: the registry name it was built from (informational).
        backbone: a backbone preset: "ViT-B-16" (384x128), "ViT-B-32-224", "tiny".
        pretrained: None (random), an open_clip pretrained tag, or a weights file path.
        image_size: (H, W) override of the preset's image size.
        quick_gelu: None decides from the weights; True/False forces it.
        num_classes: number of training identities (used by IRRA's ID loss, ignored elsewhere).
    """

    family: str = ""
    name: str = ""
    backbone: str = "ViT-B-16"
    pretrained: str | None = None
    image_size: tuple[int, int] | None = None
    quick_gelu: bool | None = None
    num_classes: int | None = None

    def __post_init__(self) -> None:
        if self.image_size is not None:
            self.image_size = tuple(int(v) for v in self.image_size)  # type: ignore[assignment]
        if self.num_classes is not None:
            self.num_classes = int(self.num_classes)
            if self.num_classes < 1:
                raise ModelError(f"num_classes must be positive, got {self.num_classes}")
        if self.pretrained is not None:
            self.pretrained = str(self.pretrained)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def info_nce(logits: Tensor, reduction: str = "sum") -> Tensor:
    """InfoNCE in both directions (paper Eq. 13-15) for a square batch of matched pairs.

    Args:
        logits: ``[B, B]`` scaled similarities, rows texts, columns images; pair ``i`` is the
            positive of row and column ``i``.
        reduction: "sum" adds the two directions as the paper's Eq. 15 does; "mean" averages
            them as MGCC's released code does.
    """
    target = torch.arange(logits.shape[0], device=logits.device)
    text_to_image = F.cross_entropy(logits.float(), target)
    image_to_text = F.cross_entropy(logits.float().t(), target)
    total = text_to_image + image_to_text
    return total if reduction == "sum" else total / 2


def resolve_chunk(chunk: int | tuple[int, int] | None, entries_per_pair: int) -> tuple[int, int]:
    """Block sizes (texts, images) for chunked similarity.

    An int means the same size for both; ``None`` picks a square block whose
    ``texts x images x entries_per_pair`` stays within :data:`DEFAULT_CHUNK_ENTRIES`.
    """
    if chunk is None:
        side = max(1, math.isqrt(DEFAULT_CHUNK_ENTRIES // max(1, entries_per_pair)))
        return side, side
    if isinstance(chunk, int):
        chunk = (chunk, chunk)
    chunk_q, chunk_g = (int(v) for v in chunk)
    if chunk_q < 1 or chunk_g < 1:
        raise ModelError(f"similarity chunk sizes must be positive, got {chunk}")
    return chunk_q, chunk_g


class RetrievalModel(nn.Module, metaclass=abc.ABCMeta):
    """Base class: holds the backbone and implements the parts of C4 that do not vary."""

    config: ModelConfig

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = Backbone(
            config.backbone, pretrained=config.pretrained, image_size=config.image_size,
            quick_gelu=config.quick_gelu)

    # -- attributes of contract C4
    @property
    def image_size(self) -> tuple[int, int]:
        return self.backbone.image_size

    @property
    def image_mean(self) -> tuple[float, float, float]:
        return self.backbone.image_mean  # type: ignore[return-value]

    @property
    def image_std(self) -> tuple[float, float, float]:
        return self.backbone.image_std  # type: ignore[return-value]

    @property
    def context_length(self) -> int:
        return self.backbone.context_length

    @property
    def embed_dim(self) -> int:
        return self.backbone.embed_dim

    def tokenize(self, texts: list[str]) -> Tensor:
        return self.backbone.tokenize(texts)

    def logit_scale(self) -> Tensor:
        """CLIP's learnable temperature ``exp(logit_scale)``, clamped at 100."""
        return self.backbone.clip.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """"encoder": every parameter of the open_clip model (logit_scale included, since it is
        CLIP's own); "new": everything added on top (empty for MGCC and CLIP)."""
        encoder_ids = {id(p) for p in self.backbone.parameters()}
        encoder = [p for p in self.backbone.parameters() if p.requires_grad]
        new = [p for p in self.parameters() if p.requires_grad and id(p) not in encoder_ids]
        return {"encoder": encoder, "new": new}

    # -- to be provided by each family
    @abc.abstractmethod
    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        """Features of a batch of normalised images."""

    @abc.abstractmethod
    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        """Features of a batch of tokenised captions."""

    @abc.abstractmethod
    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        """Unscaled similarity ``[Q, G]`` of every text with every image, in one block."""

    def _entries_per_pair(self, text: TextFeatures, image: ImageFeatures) -> int:
        return 1

    def similarity(
        self, text_feats: TextFeatures, image_feats: ImageFeatures,
        chunk: int | tuple[int, int] | None = None,
    ) -> Tensor:
        """Similarity ``[Q, G]`` computed block by block; exact for any chunk size.

        Each block holds at most ``chunk_q x chunk_g`` pairs (and for MGCC their
        ``n x m`` token-token matrices), so memory is bounded by the chunk, not by Q x G.
        """
        chunk_q, chunk_g = resolve_chunk(chunk, self._entries_per_pair(text_feats, image_feats))
        num_q, num_g = len(text_feats), len(image_feats)
        out = text_feats.pooled.new_empty(num_q, num_g, dtype=torch.float32)
        for q0 in range(0, num_q, chunk_q):
            text_block = text_feats[q0:q0 + chunk_q]
            for g0 in range(0, num_g, chunk_g):
                block = self.pair_similarity(text_block, image_feats[g0:g0 + chunk_g])
                out[q0:q0 + chunk_q, g0:g0 + chunk_g] = block.float()
        return out


def drop_tokens(features: ImageFeatures | TextFeatures) -> ImageFeatures | TextFeatures:
    """The same features with an empty token dimension, for models that compare globals only
    (saves the evaluator from holding token features it will never use)."""
    batch, _, dim = features.tokens.shape
    return type(features)(
        pooled=features.pooled,
        tokens=features.tokens.new_zeros(batch, 0, dim),
        mask=features.mask.new_zeros(batch, 0),
        attention=features.attention.new_zeros(batch, 0),
    )


class GlobalRetrievalModel(RetrievalModel):
    """A model that retrieves by the cosine of global features alone (CLIP baseline, IRRA).

    Its features carry no tokens (see :func:`drop_tokens`), so evaluation holds one vector per
    image and caption.
    """

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        return drop_tokens(self.backbone.encode_images(pixels))  # type: ignore[return-value]

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        return drop_tokens(self.backbone.encode_texts(tokens))  # type: ignore[return-value]

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        return F.normalize(text.pooled.float(), dim=-1) @ F.normalize(
            image.pooled.float(), dim=-1).t()
