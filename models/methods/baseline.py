"""MGCC's multi-granularity model on encoders other than CLIP: the paper's Baseline1 / Baseline2.

Table 2 of the MGCC paper compares backbones with "Baseline1 (M)" (RN50-LSTM) and "Baseline2
(M)" (CLIP-BERT): the same multi-granularity model as MGCC (token selection, the four
similarities S_I-T, S_P-W, S_P-T, S_I-W with AF fusion, their mean, InfoNCE in both directions)
on other encoders. :class:`MultiGranularity` is that model over any pair of encoders of
:mod:`models.methods.two_tower` (``image_encoder`` / ``text_encoder`` config fields); the
similarities are :func:`models.methods.mgcc.component_similarities`, shared with MGCC.

Token selection needs a score per token; CNN and LSTM encoders have no attention row, so they
supply the nearest equivalent (each token's share of the global feature: see
:mod:`models.encoders.resnet` and :mod:`models.encoders.lstm`). The logit scale is a learnable
temperature starting at CLIP's 1 / 0.07 (clamped at 100), since a ResNet/LSTM has none of its own.

Every MGCC option applies (``rho_image``, ``rho_text``, ``components``, ``fusion``, ``tau``,
``loss_reduction``, ``word_cap``). ``max_words`` is the Bi-LSTM's caption cut (what the encoder
reads); ``fine_words`` is MGCC's m = 25: at most that many word tokens (the first ones, or the
most attended with ``word_cap="attention"``) enter the fine-grained similarities, as in
``mgcc``, while the global text feature reads the whole caption.

Where the paper is silent, Baseline2 (CLIP image + BERT) follows the MGCC release's BERT model
(``src/model/bert_text.py``, ``image_clip.py``): BERT reads up to 100 word pieces; its global
feature is the mean of the last hidden states -> ``LayerNorm`` -> bias-free ``Linear`` (the
release's ``fc``); the word tokens are BERT's own states and the image side keeps CLIP's vision
width (768 for ViT-B, ``feature_space="vision"``), so neither gets a projection when the widths
already equal ``embed_dim`` (a linear layer maps them where they differ, as in the tiny demo).
The release's mean runs over all 101 padded positions; ours over the caption's own pieces
(``[CLS]`` to ``[SEP]``), since our batches pad to their longest caption and a feature must not
depend on its batch.

Baseline1 (ResNet-50 + Bi-LSTM) has no release: the release's ResNet-50 path has a global
feature only (max-pool + bias-free 1x1 conv) and no patch tokens, so it cannot compute S_P-W or
S_P-T. Our Baseline1's image tokens are the ResNet's last-stage locations (12x4 = 48 at 384x128,
close to CLIP's 49 patches), projected like the global feature and scored by their share of it
(:mod:`models.encoders.resnet`): the paper calls Baseline1 MGCC's model, all four similarities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from models.base import drop_tokens
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses import info_nce
from models.methods.mgcc import MGCCConfig, cap_words, component_similarities
from models.methods.two_tower import LearnableTemperature, TwoTowerConfig, TwoTowerModel
from models.token_selection import select_tokens


@dataclass
class MultiGranularityConfig(TwoTowerConfig, MGCCConfig):
    """MGCC's options (:class:`MGCCConfig`) + the encoders' (:class:`TwoTowerConfig`).

    Attributes:
        fine_words: MGCC's m, the most word tokens entering the fine-grained similarities
            (paper: 25); None keeps every word. (``max_words`` is the Bi-LSTM's caption cut.)
    """

    family: str = "baseline"
    fine_words: int | None = 25

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fine_words is not None and int(self.fine_words) < 1:
            raise ModelError(f"fine_words must be positive, got {self.fine_words}")


class MultiGranularity(TwoTowerModel):
    """Multi-granularity contrastive model on any two encoders; ``forward`` -> {"infonce"}."""

    batch_gathers = ("image global + patch tokens", "text global + word tokens")

    config: MultiGranularityConfig

    def has_second_stage(self, image: ImageFeatures) -> bool:
        """Any component but the global one (``sit``) compares token features."""
        return self._needs_patches or self._needs_words

    def __init__(self, config: MultiGranularityConfig) -> None:
        super().__init__(config)
        comps = set(config.components)
        self._needs_patches = bool(comps & {"spw", "spt"})
        self._needs_words = bool(comps & {"spw", "siw"})
        self.temperature = LearnableTemperature()
        dim = int(config.embed_dim)
        self._bert = config.text_encoder == "bert"
        if self._bert:  # the release's BERT head (module docstring)
            width = int(self.text_encoder.feature_dim)
            self.text_projection = nn.Sequential(nn.LayerNorm(width),  # type: ignore[assignment]
                                                 nn.Linear(width, dim, bias=False))
            self.word_projection: nn.Module = (nn.Identity() if width == dim
                                               else nn.Linear(width, dim))
            if int(self.image_encoder.feature_dim) == dim:
                self.image_projection = nn.Identity()  # type: ignore[assignment]

    def logit_scale(self) -> Tensor:
        return self.temperature()

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        """Global + the top ``ceil(rho_image * n)`` locations by their token score."""
        features = self.project_images(pixels)
        if not self._needs_patches:
            return drop_tokens(features)  # type: ignore[return-value]
        return select_tokens(features, self.config.rho_image)  # type: ignore[return-value]

    def project_texts(self, tokens: Tensor) -> TextFeatures:
        """Global and word tokens in the joint space; with BERT the release's head: the mean of
        the caption's last hidden states through ``LayerNorm`` + bias-free ``Linear``."""
        if not self._bert:
            return super().project_texts(tokens)
        raw = self.text_encoder(tokens)
        present = (tokens != self.text_encoder.special_ids[0]).unsqueeze(-1)
        states = torch.cat([raw.pooled.unsqueeze(1), raw.tokens], dim=1)  # [CLS], pieces, pads
        mean = (states * present).sum(dim=1) / present.sum(dim=1).clamp_min(1)
        return TextFeatures(self.text_projection(mean), self.word_projection(raw.tokens),
                            raw.mask, raw.attention)

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        """Global (the whole caption) + the top ``ceil(rho_text * m_b)`` of the
        ``m_b = min(words, fine_words)`` capped words by their token score."""
        features = self.project_texts(tokens)
        if not self._needs_words:
            return drop_tokens(features)  # type: ignore[return-value]
        if self.config.fine_words is not None:
            features = cap_words(features, int(self.config.fine_words), self.config.word_cap)
        return select_tokens(features, self.config.rho_text)  # type: ignore[return-value]

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        """Eq. 12: the mean of the enabled components, ``[Q, G]``."""
        config = self.config
        components = component_similarities(text, image, config.components, config.fusion,
                                            config.tau)
        return torch.stack(list(components.values())).mean(dim=0)

    def _entries_per_pair(self, text: TextFeatures, image: ImageFeatures) -> int:
        return max(1, image.num_tokens) * max(1, text.num_tokens)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        # the whole global batch under DDP (models.distributed): every negative of one process
        image = self.encode_images(batch["images"]).gathered()
        text = self.encode_texts(batch["tokens"]).gathered()
        logits = self.pair_similarity(text, image) * self.logit_scale()
        return {"infonce": info_nce(logits, self.config.loss_reduction)}
