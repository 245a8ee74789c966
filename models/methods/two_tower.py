"""Models with one image encoder and one text encoder of any family, projected to a joint space.

:class:`TwoTowerModel` is what the classic baselines share (``cmpm``, ``baseline1``, and the
models of other encoder pairs): it builds an image encoder and a text encoder by name, adds one
linear projection per modality to ``embed_dim`` (applied alike to the global feature and to every
token, so that all granularities of a modality live in one space, as CLIP's projection does), and
takes the image size, normalisation and tokenizer from its encoders.

Encoder choices are config fields, resolved through two small tables a new encoder family adds
itself to:

* :data:`IMAGE_ENCODERS`: ``image_encoder`` -> builder; the builder reads ``backbone`` (the
  architecture within that family: ``resnet50``, ``tiny``...), ``pretrained`` and
  ``image_size``. Today: ``"resnet"`` (:class:`models.encoders.resnet.ResNetEncoder`) and
  ``"clip"`` (CLIP's image tower, :class:`models.encoders.clip_image.CLIPImageEncoder`; backbone
  "ViT-B-16", "tiny", ...) and ``"vit"`` (a timm ViT/DeiT,
  :class:`models.encoders.vit.ViTEncoder`; backbone "vit_base_patch16_224",
  "deit_base_patch16_224", "tiny", ...; pretrained "imagenet" or a file).
* :data:`TEXT_ENCODERS`: ``text_encoder`` -> builder. Today: ``"bilstm"``
  (:class:`models.encoders.lstm.BiLSTMEncoder`, over the config's word ``vocabulary``) and
  ``"bert"`` (:class:`models.encoders.bert.BertTextEncoder`, WordPiece over its own vocabulary,
  from the ``bert`` field).
  :data:`WORD_TEXT_ENCODERS` lists those that embed words from a vocabulary fitted to the
  training captions (``bench run`` fills ``vocabulary`` for them, see
  :func:`models.registry.with_vocabulary`).

An image encoder is a module with ``image_size``, ``image_mean``, ``image_std``, ``feature_dim``
and ``forward(pixels) -> ImageFeatures``; a text encoder has ``feature_dim``,
``tokenize(texts) -> LongTensor`` and ``forward(tokens) -> TextFeatures``. An encoder whose
``pretrained_encoder`` attribute is False (the Bi-LSTM, trained from scratch) puts its parameters
in the "new" group; the others get the encoder learning rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from models.base import ModelConfig, RetrievalModel, drop_tokens
from models.encoders.bert import BertTextEncoder
from models.encoders.clip_image import CLIPImageEncoder
from models.encoders.lstm import POOLINGS, BiLSTMEncoder
from models.encoders.resnet import ResNetEncoder
from models.encoders.vit import ViTEncoder
from models.encoders.vocabulary import Vocabulary
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures

MAX_LOGIT_SCALE = 100.0


@dataclass
class TwoTowerConfig(ModelConfig):
    """An image encoder + a text encoder + a linear projection each.

    Attributes:
        backbone: the image encoder's architecture ("resnet50", "tiny", ...).
        pretrained: the image encoder's weights: None, a torchvision weights name such as
            "IMAGENET1K_V1", or a local file.
        image_encoder: the image encoder family (a key of :data:`IMAGE_ENCODERS`).
        text_encoder: the text encoder family (a key of :data:`TEXT_ENCODERS`).
        embed_dim: width of the joint space (CMPM's code: 512).
        vocabulary: the word list of a word-embedding text encoder (filled by ``bench run``
            from the train captions; saved in ``config.json``).
        min_word_count: words seen fewer times in training are "unknown" when the vocabulary is
            fitted.
        word_dim, hidden_dim, lstm_layers, text_dropout, text_output_dropout, text_pooling:
            the Bi-LSTM (input and output dropout; see
            :class:`models.encoders.lstm.BiLSTMEncoder`).
        max_words: cut captions after this many words.
        word_vectors: optional GloVe/word2vec text file initialising the word embeddings.
        quick_gelu: the CLIP image encoder's activation (``None``: decided by its weights and
            recorded once built, see :class:`models.encoders.clip.Backbone`).
        bert: where the BERT text encoder comes from: a Hugging Face name
            ("bert-base-uncased"), a local folder, or "tiny" (random, built-in vocabulary); see
            :mod:`models.encoders.bert`.
        bert_architecture: the BERT's ``BertConfig`` architecture fields, recorded once built so
            that a rebuild without the source (``load_pretrained=False``) has the same shapes.
        bert_lowercase: the tokenizer's ``do_lower_case``, recorded the same way.
        bert_max_length: the most word pieces per caption, ``[CLS]`` and ``[SEP]`` included.
    """

    # fields naming weight files: build_model_from_config(load_pretrained=False) blanks them
    # (a blank ``bert`` rebuilds from ``bert_architecture``; the checkpoint brings the vocabulary)
    pretrained_fields: ClassVar[tuple[str, ...]] = ("pretrained", "word_vectors", "bert")

    backbone: str = "resnet50"
    image_encoder: str = "resnet"
    text_encoder: str = "bilstm"
    embed_dim: int = 512
    vocabulary: tuple[str, ...] | None = None
    min_word_count: int = 1
    word_dim: int = 512
    hidden_dim: int = 512
    lstm_layers: int = 1
    text_dropout: float = 0.0
    text_output_dropout: float = 0.0
    text_pooling: str = "max"
    max_words: int | None = 100
    word_vectors: str | None = None
    bert: str | None = "bert-base-uncased"
    bert_architecture: dict[str, Any] | None = None
    bert_lowercase: bool | None = None
    bert_max_length: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_encoder not in IMAGE_ENCODERS:
            raise ModelError(f"unknown image_encoder '{self.image_encoder}'; valid: "
                             f"{', '.join(IMAGE_ENCODERS)}")
        if self.text_encoder not in TEXT_ENCODERS:
            raise ModelError(f"unknown text_encoder '{self.text_encoder}'; valid: "
                             f"{', '.join(TEXT_ENCODERS)}")
        if self.vocabulary is not None:
            self.vocabulary = tuple(str(w) for w in self.vocabulary)
        if int(self.embed_dim) < 1:
            raise ModelError(f"embed_dim must be positive, got {self.embed_dim}")
        if int(self.min_word_count) < 1:
            raise ModelError(f"min_word_count must be at least 1, got {self.min_word_count}")
        if self.text_pooling not in POOLINGS:
            raise ModelError(f"unknown text_pooling '{self.text_pooling}'; valid: "
                             f"{', '.join(POOLINGS)}")
        if self.max_words is not None and int(self.max_words) < 1:
            raise ModelError(f"max_words must be positive, got {self.max_words}")


def _resnet(config: TwoTowerConfig) -> nn.Module:
    return ResNetEncoder(config.backbone, pretrained=config.pretrained,
                         image_size=config.image_size)


def _vit(config: TwoTowerConfig) -> nn.Module:
    return ViTEncoder(config.backbone, pretrained=config.pretrained, image_size=config.image_size)


def _bilstm(config: TwoTowerConfig) -> nn.Module:
    if config.vocabulary is None:
        raise ModelError(
            f"model '{config.name or config.family}' embeds words and needs a vocabulary: "
            "bench run fits it from the train captions; in code pass vocabulary=[words] "
            "(e.g. Vocabulary.from_captions(captions).to_json())")
    return BiLSTMEncoder(
        Vocabulary(config.vocabulary), word_dim=config.word_dim, hidden_dim=config.hidden_dim,
        num_layers=config.lstm_layers, dropout=config.text_dropout, pooling=config.text_pooling,
        max_words=config.max_words, word_vectors=config.word_vectors,
        output_dropout=config.text_output_dropout)


def _clip_image(config: TwoTowerConfig) -> nn.Module:
    # a config with MGCC's feature_space (Baseline2) may keep the vision width, as MGCC does
    project = getattr(config, "feature_space", "joint") == "joint"
    return CLIPImageEncoder(config.backbone, pretrained=config.pretrained,
                            image_size=config.image_size, quick_gelu=config.quick_gelu,
                            project=project)


def _bert(config: TwoTowerConfig) -> nn.Module:
    if config.bert is None and config.bert_architecture is None:
        raise ModelError("a BERT text encoder needs bert= (a Hugging Face name, a local folder "
                         "or 'tiny')")
    lowercase = True if config.bert_lowercase is None else bool(config.bert_lowercase)
    return BertTextEncoder(config.bert, architecture=config.bert_architecture,
                           lowercase=lowercase, max_length=config.bert_max_length)


IMAGE_ENCODERS: dict[str, Callable[[Any], nn.Module]] = {"resnet": _resnet, "clip": _clip_image,
                                                        "vit": _vit}
TEXT_ENCODERS: dict[str, Callable[[Any], nn.Module]] = {"bilstm": _bilstm, "bert": _bert}
WORD_TEXT_ENCODERS: set[str] = {"bilstm"}


class TwoTowerModel(RetrievalModel):
    """Image encoder + text encoder + one linear projection each (see the module docstring)."""

    config: TwoTowerConfig

    @staticmethod
    def requires_vocabulary(options: Mapping[str, Any]) -> bool:
        """Whether a model built with these options embeds words from a fitted vocabulary."""
        return options.get("text_encoder", "bilstm") in WORD_TEXT_ENCODERS

    def __init__(self, config: TwoTowerConfig) -> None:
        super().__init__(config)
        self.image_encoder = IMAGE_ENCODERS[config.image_encoder](config)
        self.text_encoder = TEXT_ENCODERS[config.text_encoder](config)
        self.image_size = self.image_encoder.image_size
        self.image_mean = self.image_encoder.image_mean
        self.image_std = self.image_encoder.image_std
        dim = int(config.embed_dim)
        self.image_projection = nn.Linear(self.image_encoder.feature_dim, dim)
        self.text_projection = nn.Linear(self.text_encoder.feature_dim, dim)

    def tokenize(self, texts: list[str]) -> Tensor:
        return self.text_encoder.tokenize(list(texts))

    def finalize_config(self, config: ModelConfig) -> None:
        """Record what the encoders' sources decided (CLIP's quick-GELU, BERT's architecture
        and casing), so that a rebuild without those sources builds the same model."""
        if isinstance(self.image_encoder, CLIPImageEncoder):
            config.quick_gelu = self.image_encoder.quick_gelu
        if isinstance(self.text_encoder, BertTextEncoder):
            config.bert_architecture = dict(self.text_encoder.architecture)
            config.bert_lowercase = self.text_encoder.lowercase

    def encoder_modules(self) -> Iterable[nn.Module]:
        """The encoders that start from pretrained weights (a Bi-LSTM is trained from scratch)."""
        return tuple(m for m in (self.image_encoder, self.text_encoder)
                     if getattr(m, "pretrained_encoder", True))

    def project_images(self, pixels: Tensor) -> ImageFeatures:
        """Encoder features with global and tokens projected to the joint space."""
        raw = self.image_encoder(pixels)
        return ImageFeatures(self.image_projection(raw.pooled), self.image_projection(raw.tokens),
                             raw.mask, raw.attention)

    def project_texts(self, tokens: Tensor) -> TextFeatures:
        raw = self.text_encoder(tokens)
        return TextFeatures(self.text_projection(raw.pooled), self.text_projection(raw.tokens),
                            raw.mask, raw.attention)


class GlobalTwoTowerModel(TwoTowerModel):
    """A two-tower model that retrieves by the cosine of the projected global features alone
    (CMPM, TBPS): its features carry no tokens, so evaluation holds one vector per sample."""

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        return drop_tokens(self.project_images(pixels))  # type: ignore[return-value]

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        return drop_tokens(self.project_texts(tokens))  # type: ignore[return-value]

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        return torch.nn.functional.normalize(text.pooled.float(), dim=-1) @ \
            torch.nn.functional.normalize(image.pooled.float(), dim=-1).t()


class LearnableTemperature(nn.Module):
    """CLIP's learnable logit scale ``exp(s)``, starting at 1 / 0.07 and clamped at 100."""

    def __init__(self, initial: float = 1 / 0.07) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(initial)))

    def forward(self) -> Tensor:
        return self.log_scale.exp().clamp(max=MAX_LOGIT_SCALE)
