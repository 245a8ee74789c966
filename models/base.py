"""What every retrieval model shares, whatever its encoders: config fields and chunking.

The trainer and evaluator see only the small interface of contract C4 (``encode_images``,
``encode_texts``, ``similarity``, ``forward``, ``parameter_groups``, ``tokenize`` and the image
attributes ``image_size`` / ``image_mean`` / ``image_std``). :class:`RetrievalModel` fixes that
interface and implements the parts that do not depend on the encoders (chunked similarity, the
encoder/new parameter split); :mod:`models.methods.clip_model` adds the open_clip backbone that
MGCC, IRRA and the CLIP baseline share, and models on other encoders (ResNet, LSTM, BERT, ...)
subclass :class:`RetrievalModel` directly.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures

# Default chunk budget: at most this many (text, image, patch, word) similarity entries per block.
DEFAULT_CHUNK_ENTRIES = 1 << 24
IMAGE_INTERPOLATIONS = ("bicubic", "bilinear")


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
        image_interpolation: how images are resized to ``image_size`` for this model, in
            training and evaluation alike: "bicubic" (CLIP's preprocessing, MGCC's release) or
            "bilinear" (IRRA's ``T.Resize``).
        pos_embed_resize: CLIP backbones only: how stored position embeddings are resized to
            the image grid, "bicubic-antialias" (open_clip) or "bilinear" (IRRA's code).
    """

    family: str = ""
    name: str = ""
    backbone: str = "ViT-B-16"
    pretrained: str | None = None
    image_size: tuple[int, int] | None = None
    quick_gelu: bool | None = None
    num_classes: int | None = None
    image_interpolation: str = "bicubic"
    pos_embed_resize: str = "bicubic-antialias"

    def __post_init__(self) -> None:
        if self.image_interpolation not in IMAGE_INTERPOLATIONS:
            raise ModelError(f"unknown image_interpolation '{self.image_interpolation}'; "
                             f"valid: {', '.join(IMAGE_INTERPOLATIONS)}")
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
    """Base class of every model: the C4 interface and the parts of it that do not vary.

    A subclass sets ``image_size`` (H, W), ``image_mean`` and ``image_std`` (the normalisation its
    image encoder expects), implements :meth:`tokenize` with its text encoder's tokenizer, and
    names its pretrained encoders in :meth:`encoder_modules` so that :meth:`parameter_groups`
    can give them the encoder learning rate and everything else the new-module one.
    """

    config: ModelConfig
    image_size: tuple[int, int]
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]

    #: What the model's losses gather across processes under DDP (:mod:`models.distributed`),
    #: e.g. ``("image global", "text global", "person ids")``. Empty: the model's losses have
    #: not been made global-batch exact, and the trainer refuses to train it with several
    #: processes rather than silently run a different experiment.
    batch_gathers: tuple[str, ...] = ()

    #: DDP's ``find_unused_parameters`` (an extra graph traversal every step): True unless a
    #: model is known to use every trainable parameter in every step.
    ddp_find_unused_parameters: bool = True

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.image_interpolation = config.image_interpolation

    def after_optimizer_step(self) -> None:
        """Called by the trainer after every optimiser step (e.g. to clamp a stored value)."""

    def reference_parameter_names(self) -> dict[str, str]:
        """Our parameter name -> the name the method's released code gives it, for optimiser
        rules that match on names (IRRA's); identity unless a model maps them."""
        return {name: name for name, _ in self.named_parameters()}

    @abc.abstractmethod
    def tokenize(self, texts: list[str]) -> Tensor:
        """Token ids ``[B, L]`` of captions, with this model's own tokenizer."""

    def encoder_modules(self) -> Iterable[nn.Module]:
        """The (pre-trainable) encoders; their parameters form the "encoder" group."""
        return ()

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """"encoder": the trainable parameters of :meth:`encoder_modules`; "new": the rest."""
        encoder_ids: set[int] = set()
        encoder: list[nn.Parameter] = []
        for module in self.encoder_modules():
            for param in module.parameters():
                if param.requires_grad and id(param) not in encoder_ids:
                    encoder_ids.add(id(param))
                    encoder.append(param)
        new = [p for p in self.parameters() if p.requires_grad and id(p) not in encoder_ids]
        return {"encoder": encoder, "new": new}

    def finalize_config(self, config: ModelConfig) -> None:
        """Record in ``config`` what building decided (e.g. quick-GELU from the weights), so
        that :func:`models.registry.build_model_from_config` rebuilds the same model."""

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

    # -- gallery search (benchmark/search): a global first stage, then the full similarity
    def search_vectors(self, features: ImageFeatures | TextFeatures) -> Tensor:
        """``[B, d]`` float32 vectors whose inner products are the first-stage score of
        gallery search (a faiss inner-product index holds the image side).

        The default is the cosine of the global features, which every model of the registry
        has; a model whose global comparison is another inner product overrides this."""
        return torch.nn.functional.normalize(features.pooled.float(), dim=-1)

    def has_second_stage(self, image: ImageFeatures) -> bool:
        """Whether :meth:`similarity` is more than the inner product of
        :meth:`search_vectors`, so that re-scoring the first stage's candidates with it can
        change their order: a model that compares token features (MGCC's fused four
        similarities, NAFS, SAF, ...) or ranks in two stages itself (RaSa, APTM) has one; a
        model that compares global features only (CLIP, IRRA) does not."""
        return image.num_tokens > 0 or int(getattr(self, "rerank_k", 0) or 0) > 0

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
