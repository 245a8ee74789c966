"""CMPM: cross-modal projection matching + classification (Zhang & Lu, ECCV 2018), the MGCC
paper's "CMPM (S) RN50-LSTM" row of Table 2.

Model: ResNet-50 image encoder (ImageNet weights) and a Bi-LSTM over word embeddings, each
projected to a 512-d joint space by a bias-free linear layer and a BatchNorm (CMPM's code:
``build_joint_embeddings``, a 1x1 ``slim.conv2d`` under the backbone's ``arg_scope``, which
gives it ``normalizer_fn=slim.batch_norm`` and so no bias); the image feature is the
average-pooled last feature map and the text feature the max over words of the Bi-LSTM states.
The LSTM keeps 0.7 of its inputs and of its outputs in training (code: ``DropoutWrapper``,
``lstm_dropout_keep_prob`` 0.7), i.e. dropout 0.3 on both. Retrieval ranks by the cosine of the
two global features. Training loss: CMPM + CMPC (:mod:`models.losses.cmpm`); CMPC's classifier
``W`` (``[embed_dim, num_classes]``, no bias) is this model's own parameter and exists only when
``num_classes`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from models.base import drop_tokens
from models.distributed import gather
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses import cmpc_loss, cmpm_loss
from models.methods.two_tower import GlobalTwoTowerModel, TwoTowerConfig


def _joint_embedding(in_dim: int, dim: int) -> nn.Module:
    """CMPM's joint embedding: a bias-free projection then BatchNorm (learnable scale, shift)."""
    return nn.Sequential(nn.Linear(in_dim, dim, bias=False), nn.BatchNorm1d(dim))


@dataclass
class CMPMConfig(TwoTowerConfig):
    """CMPM; see :class:`TwoTowerConfig` for the encoders.

    Attributes:
        cmpm_weight, cmpc_weight: weights of the two losses (the paper adds them, 1 and 1;
            ``cmpc_weight=0`` trains with CMPM alone).
        epsilon: CMPM's epsilon in ``log(q + eps)``.
        joint_batchnorm: BatchNorm after each bias-free joint projection (CMPM's code: yes).
    """

    family: str = "cmpm"
    text_dropout: float = 0.3
    text_output_dropout: float = 0.3
    joint_batchnorm: bool = True
    cmpm_weight: float = 1.0
    cmpc_weight: float = 1.0
    epsilon: float = 1e-8

    def __post_init__(self) -> None:
        super().__post_init__()
        for field in ("cmpm_weight", "cmpc_weight"):
            if float(getattr(self, field)) < 0:
                raise ModelError(f"{field} must be >= 0, got {getattr(self, field)}")
        if not float(self.epsilon) > 0:
            raise ModelError(f"epsilon must be positive, got {self.epsilon}")


class CMPM(GlobalTwoTowerModel):
    """CMPM; ``forward`` returns {"cmpm", "cmpc"} ("cmpc" only with ``num_classes``)."""

    batch_gathers = ("image global", "text global", "person ids")
    config: CMPMConfig

    def __init__(self, config: CMPMConfig) -> None:
        super().__init__(config)
        if config.joint_batchnorm:
            dim = int(config.embed_dim)
            self.image_projection = _joint_embedding(  # type: ignore[assignment]
                int(self.image_encoder.feature_dim), dim)
            self.text_projection = _joint_embedding(  # type: ignore[assignment]
                int(self.text_encoder.feature_dim), dim)
        self.cmpc_weight: nn.Parameter | None = None
        if config.num_classes is not None and config.cmpc_weight > 0:
            self.cmpc_weight = nn.Parameter(torch.empty(config.embed_dim, config.num_classes))
            nn.init.xavier_uniform_(self.cmpc_weight)

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        raw = self.image_encoder(pixels)  # only the global feature is projected (and normed)
        return drop_tokens(ImageFeatures(  # type: ignore[return-value]
            self.image_projection(raw.pooled), raw.tokens, raw.mask, raw.attention))

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        raw = self.text_encoder(tokens)
        return drop_tokens(TextFeatures(  # type: ignore[return-value]
            self.text_projection(raw.pooled), raw.tokens, raw.mask, raw.attention))

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        image = self.encode_images(batch["images"]).pooled
        text = self.encode_texts(batch["tokens"]).pooled
        pids = batch["pids"]
        config = self.config
        # CMPM compares every pair of the (global) batch; CMPC classifies each sample
        losses = {"cmpm": config.cmpm_weight * cmpm_loss(gather(image), gather(text),
                                                         gather(pids), config.epsilon)}
        if self.cmpc_weight is not None:
            losses["cmpc"] = config.cmpc_weight * cmpc_loss(image, text, pids, self.cmpc_weight)
        return losses
