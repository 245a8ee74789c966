"""Dual-Path (Zheng et al., "Dual-Path Convolutional Image-Text Embeddings with Instance Loss",
TOMM 2020): a ResNet-50 image branch and a deep residual text CNN, trained in two stages.

Architecture (the released CUHK-PEDES code, ``cuhk_word2_pool.m``):

* image: ResNet-50 pooled feature -> two ``fc -> BN -> ReLU`` layers (2048-d);
* text: :class:`models.encoders.textcnn.TextCNN` (word2vec-initialised word embedding, residual
  1x2 blocks, max-pool) -> one ``fc -> BN -> ReLU`` layer (2048-d);
* one linear classifier shared by both branches (``W_share``), after dropout.

Losses (:mod:`models.losses`): the instance loss (:func:`instance_loss`, classes = person ids,
as Dual-Path does for CUHK-PEDES) and the bidirectional ranking loss on the cosine of the two
features (:func:`ranking_loss`, hardest in-batch negatives, margin 1).

The two training stages are one schedule: the trainer calls :meth:`DPath.set_epoch` before each
epoch (``benchmark.training.loop`` does it for any model with that method).

* Stage I, epochs ``1 .. stage1_epochs``: the ImageNet ResNet-50 is frozen (no gradients and its
  batch-norm statistics fixed, as the released code sets its learning rates to 0); the text CNN,
  both heads and the shared classifier learn from the instance loss alone (weights
  ``stage1_image_weight``, ``stage1_text_weight``). The paper's point: the instance loss, which
  sees each modality's own distribution, gives the ranking loss a good starting point.
* Stage II, later epochs: everything is fine-tuned with the ranking loss plus the instance loss
  (``rank_weight``, ``image_weight``, ``text_weight``; the CUHK-PEDES code uses 2, 1, 0.5).

A model that was never given an epoch (a custom loop, a profiling step) trains as in stage II.
Retrieval is the cosine of the two global features (before dropout); the methods' features
therefore carry no tokens, though :class:`TextCNN` has them for token-level methods.

Where the released code and this module differ: the released CUHK-PEDES stage II pairs each
image with one random negative caption; the journal version and VSE++ take the hardest negative
of the mini-batch, which this module does (same-person pairs excluded). Words not in the word2vec
file keep their random initialisation instead of being dropped from the captions. The image
augmentation is the trainer's (flip, pad + crop), not MatConvNet's random-resized crop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import ModelConfig, RetrievalModel
from models.distributed import gather
from models.encoders.resnet import ResNetEncoder
from models.encoders.textcnn import (
    PAPER_BLOCKS,
    PAPER_EMBED_DIM,
    PAPER_MAX_WORDS,
    TINY_BLOCKS,
    TextCNN,
    read_word_vectors,
    shift_positions,
)
from models.encoders.vocabulary import NUM_SPECIAL, PAD_ID, Vocabulary
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses import instance_loss, ranking_loss


@dataclass
class DPathConfig(ModelConfig):
    """Dual-Path.

    Attributes:
        backbone: the image ResNet (``resnet50``; ``tiny`` for tests and the CPU demo).
        pretrained: the ResNet's weights: ``None``, a torchvision name (``IMAGENET1K_V1``) or a
            local file (see :mod:`models.encoders.resnet`).
        image_size: (H, W); ``None``: 224x224 (Dual-Path's size) or 64x32 for ``tiny``.
        vocabulary: the word list (fitted to the training captions by ``bench run``).
        min_word_count: words seen fewer times in training are unknown.
        word_vectors: a word2vec file (text or ``.bin``) to initialise the word embedding.
        word_dim: the word embedding size (300 for word2vec).
        text_blocks: (bottleneck, output, stride) per residual block; ``None``: Dual-Path's
            blocks, or three small ones for ``tiny``.
        max_words: caption length in words (56 for CUHK-PEDES); longer captions are cut.
        position_shift: Dual-Path's random position of a caption in its window (training).
        feature_dim: the joint feature size (2048; 64 for ``tiny`` when ``None``).
        dropout: dropout before the shared classifier (the released code: 0.8).
        stage1_epochs: epochs of stage I (image CNN frozen, instance loss only).
        stage1_image_weight, stage1_text_weight: instance loss weights in stage I.
        rank_weight, image_weight, text_weight: loss weights in stage II.
        margin: the ranking loss margin on cosine similarities.
        hardest_negative: hardest in-batch negative (VSE++) or the mean over negatives.
    """

    pretrained_fields: ClassVar[tuple[str, ...]] = ("pretrained", "word_vectors")

    family: str = "dpath"
    backbone: str = "resnet50"
    vocabulary: list[str] | None = None
    min_word_count: int = 1
    word_vectors: str | None = None
    word_dim: int = PAPER_EMBED_DIM
    text_blocks: list[list[int]] | None = None
    max_words: int = PAPER_MAX_WORDS
    position_shift: bool = True
    feature_dim: int | None = None
    dropout: float = 0.8
    stage1_epochs: int = 0
    stage1_image_weight: float = 1.0
    stage1_text_weight: float = 1.0
    rank_weight: float = 2.0
    image_weight: float = 1.0
    text_weight: float = 0.5
    margin: float = 1.0
    hardest_negative: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.vocabulary is not None:
            self.vocabulary = [str(w) for w in self.vocabulary]
        if self.text_blocks is not None:
            blocks = [[int(v) for v in block] for block in self.text_blocks]
            if not blocks or any(len(b) != 3 or min(b) < 1 for b in blocks):
                raise ModelError("text_blocks must be a non-empty list of [bottleneck, output, "
                                 f"stride] with positive values, got {self.text_blocks}")
            self.text_blocks = blocks
        checks = [
            (int(self.max_words) >= 1, "max_words", "must be >= 1"),
            (int(self.word_dim) >= 1, "word_dim", "must be >= 1"),
            (self.feature_dim is None or int(self.feature_dim) >= 1, "feature_dim",
             "must be >= 1"),
            (0.0 <= float(self.dropout) < 1.0, "dropout", "must be in [0, 1)"),
            (int(self.stage1_epochs) >= 0, "stage1_epochs", "must be >= 0"),
            (float(self.margin) >= 0.0, "margin", "must be >= 0"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ModelError(f"dpath option '{name}' {message}, got {getattr(self, name)!r}")


class DPath(RetrievalModel):
    """Dual-Path; ``forward`` returns {"instance_image", "instance_text"} in stage I and adds
    "ranking" in stage II (no instance terms without ``num_classes``)."""

    batch_gathers = ("image features", "text features", "person ids")
    config: DPathConfig
    requires_vocabulary = True

    def __init__(self, config: DPathConfig) -> None:
        super().__init__(config)
        tiny = config.backbone == "tiny"
        if config.vocabulary is None:
            raise ModelError("dpath needs a vocabulary (bench run fits one to the training "
                             "captions; or pass vocabulary=[words])")
        self.vocabulary = Vocabulary(config.vocabulary)
        self.image_encoder = ResNetEncoder(config.backbone, config.pretrained,
                                           config.image_size or (None if tiny else (224, 224)))
        self.image_size = self.image_encoder.image_size
        self.image_mean = self.image_encoder.image_mean
        self.image_std = self.image_encoder.image_std
        blocks = config.text_blocks or (TINY_BLOCKS if tiny else PAPER_BLOCKS)
        self.text_encoder = TextCNN(len(self.vocabulary), int(config.word_dim), blocks)
        if config.word_vectors is not None:
            words = ["<pad>", "<unk>", *self.vocabulary.words]
            vectors, found = read_word_vectors(config.word_vectors, words, int(config.word_dim))
            found[:NUM_SPECIAL] = False
            self.text_encoder.set_word_vectors(vectors, found)
        dim = int(config.feature_dim or (64 if tiny else 2048))
        self.image_head = nn.Sequential(_fc_bn_relu(self.image_encoder.feature_dim, dim),
                                        _fc_bn_relu(dim, dim))
        self.text_head = _fc_bn_relu(self.text_encoder.out_dim, dim)
        self.dropout = nn.Dropout(float(config.dropout))
        self.classifier: nn.Linear | None = None
        if config.num_classes is not None:
            self.classifier = nn.Linear(dim, config.num_classes)  # W_share
        self.epoch: int | None = None

    # -- the schedule
    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer before each epoch (1-based): picks the stage."""
        self.epoch = int(epoch)
        self.train(self.training)  # re-apply the image CNN's mode for the new stage

    @property
    def stage(self) -> int:
        """1 (instance loss, image CNN frozen) or 2 (ranking + instance, all trained)."""
        in_stage1 = self.epoch is not None and self.epoch <= int(self.config.stage1_epochs)
        return 1 if in_stage1 and self.classifier is not None else 2

    def train(self, mode: bool = True) -> DPath:
        super().train(mode)
        if mode and self.stage == 1:
            self.image_encoder.eval()  # frozen: its batch-norm statistics stay ImageNet's
        return self

    def finalize_config(self, config: ModelConfig) -> None:
        tiny = config.backbone == "tiny"
        assert isinstance(config, DPathConfig)
        if config.text_blocks is None:
            config.text_blocks = [list(b) for b in (TINY_BLOCKS if tiny else PAPER_BLOCKS)]
        if config.feature_dim is None:
            config.feature_dim = 64 if tiny else 2048
        if config.image_size is None:
            config.image_size = tuple(self.image_size)  # type: ignore[assignment]

    # -- the C4 interface
    def tokenize(self, texts: list[str]) -> Tensor:
        """Word ids ``[B, max_words]`` (fixed length: room for the position shift)."""
        ids = self.vocabulary.encode(texts, max_length=int(self.config.max_words))
        return F.pad(ids, (0, int(self.config.max_words) - ids.shape[1]), value=PAD_ID)

    def encoder_modules(self) -> Iterable[nn.Module]:
        """The pretrained parts: the ResNet and the word embedding (the released code gives
        both a learning rate 1000x below the layers it trains from scratch)."""
        return (self.image_encoder, self.text_encoder.embedding)

    def _image_features(self, pixels: Tensor) -> Tensor:
        if self.training and self.stage == 1:
            with torch.no_grad():
                pooled = self.image_encoder(pixels).pooled
        else:
            pooled = self.image_encoder(pixels).pooled
        return self.image_head(pooled)

    def _text_features(self, tokens: Tensor) -> Tensor:
        pooled, _, _, _ = self.text_encoder(tokens)
        return self.text_head(pooled)

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        return _global_only(ImageFeatures, self._image_features(pixels))

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        return _global_only(TextFeatures, self._text_features(tokens))

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        """Cosine of the global features."""
        return F.normalize(text.pooled.float(), dim=-1) @ F.normalize(image.pooled.float(),
                                                                      dim=-1).t()

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        config, pids = self.config, batch["pids"]
        tokens = batch["tokens"]
        if self.training and config.position_shift:
            tokens = shift_positions(tokens)
        image = self._image_features(batch["images"])
        text = self._text_features(tokens)
        stage = self.stage
        losses: dict[str, Tensor] = {}
        if self.classifier is not None:
            image_loss, text_loss = instance_loss(self.dropout(image), self.dropout(text), pids,
                                                  self.classifier.weight, self.classifier.bias)
            image_w, text_w = ((config.stage1_image_weight, config.stage1_text_weight)
                               if stage == 1 else (config.image_weight, config.text_weight))
            losses["instance_image"] = image_w * image_loss
            losses["instance_text"] = text_w * text_loss
        if stage == 2:
            # the ranking compares all pairs of the (global) batch; the instance loss is
            # per sample
            losses["ranking"] = config.rank_weight * ranking_loss(
                gather(image), gather(text), gather(pids), margin=config.margin,
                hardest=config.hardest_negative)
        return losses


def _fc_bn_relu(in_dim: int, out_dim: int) -> nn.Sequential:
    """Dual-Path's ``fc -> BN -> ReLU`` (a 1x1 convolution without bias in MatConvNet)."""
    return nn.Sequential(nn.Linear(in_dim, out_dim, bias=False), nn.BatchNorm1d(out_dim),
                         nn.ReLU(inplace=True))


def _global_only(cls: type, pooled: Tensor) -> Any:
    """Features with an empty token dimension: Dual-Path compares global features only."""
    batch = pooled.shape[0]
    return cls(pooled=pooled, tokens=pooled.new_zeros(batch, 0, pooled.shape[1]),
               mask=torch.zeros(batch, 0, dtype=torch.bool, device=pooled.device),
               attention=pooled.new_zeros(batch, 0))
