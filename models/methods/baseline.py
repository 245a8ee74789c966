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
``loss_reduction``); ``max_words`` is the text encoder's caption cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from models.base import drop_tokens
from models.features import ImageFeatures, TextFeatures
from models.losses import info_nce
from models.methods.mgcc import MGCCConfig, component_similarities
from models.methods.two_tower import LearnableTemperature, TwoTowerConfig, TwoTowerModel
from models.token_selection import select_tokens


@dataclass
class MultiGranularityConfig(TwoTowerConfig, MGCCConfig):
    """MGCC's options (:class:`MGCCConfig`) + the encoders' (:class:`TwoTowerConfig`)."""

    family: str = "baseline"


class MultiGranularity(TwoTowerModel):
    """Multi-granularity contrastive model on any two encoders; ``forward`` -> {"infonce"}."""

    config: MultiGranularityConfig

    def __init__(self, config: MultiGranularityConfig) -> None:
        super().__init__(config)
        comps = set(config.components)
        self._needs_patches = bool(comps & {"spw", "spt"})
        self._needs_words = bool(comps & {"spw", "siw"})
        self.temperature = LearnableTemperature()

    def logit_scale(self) -> Tensor:
        return self.temperature()

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        """Global + the top ``ceil(rho_image * n)`` locations by their token score."""
        features = self.project_images(pixels)
        if not self._needs_patches:
            return drop_tokens(features)  # type: ignore[return-value]
        return select_tokens(features, self.config.rho_image)  # type: ignore[return-value]

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        """Global + the top ``ceil(rho_text * m)`` words by their token score."""
        features = self.project_texts(tokens)
        if not self._needs_words:
            return drop_tokens(features)  # type: ignore[return-value]
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
        image = self.encode_images(batch["images"])
        text = self.encode_texts(batch["tokens"])
        logits = self.pair_similarity(text, image) * self.logit_scale()
        return {"infonce": info_nce(logits, self.config.loss_reduction)}
