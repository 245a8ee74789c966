"""CMPM: cross-modal projection matching + classification (Zhang & Lu, ECCV 2018), the MGCC
paper's "CMPM (S) RN50-LSTM" row of Table 2.

Model: ResNet-50 image encoder (ImageNet weights) and a Bi-LSTM over word embeddings, each
projected to a 512-d joint space by one linear layer (CMPM's code: a 1x1 convolution, i.e. the
same thing); the image feature is the average-pooled last feature map and the text feature the
max over words of the Bi-LSTM states (CMPM's public code). Retrieval ranks by the cosine of the
two global features. Training loss: CMPM + CMPC (:mod:`models.losses.cmpm`); CMPC's classifier
``W`` (``[embed_dim, num_classes]``, no bias) is this model's own parameter and exists only when
``num_classes`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from models.errors import ModelError
from models.losses import cmpc_loss, cmpm_loss
from models.methods.two_tower import GlobalTwoTowerModel, TwoTowerConfig


@dataclass
class CMPMConfig(TwoTowerConfig):
    """CMPM; see :class:`TwoTowerConfig` for the encoders.

    Attributes:
        cmpm_weight, cmpc_weight: weights of the two losses (the paper adds them, 1 and 1;
            ``cmpc_weight=0`` trains with CMPM alone).
        epsilon: CMPM's epsilon in ``log(q + eps)``.
    """

    family: str = "cmpm"
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

    config: CMPMConfig

    def __init__(self, config: CMPMConfig) -> None:
        super().__init__(config)
        self.cmpc_weight: nn.Parameter | None = None
        if config.num_classes is not None and config.cmpc_weight > 0:
            self.cmpc_weight = nn.Parameter(torch.empty(config.embed_dim, config.num_classes))
            nn.init.xavier_uniform_(self.cmpc_weight)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        image = self.encode_images(batch["images"]).pooled
        text = self.encode_texts(batch["tokens"]).pooled
        pids = batch["pids"]
        config = self.config
        losses = {"cmpm": config.cmpm_weight * cmpm_loss(image, text, pids, config.epsilon)}
        if self.cmpc_weight is not None:
            losses["cmpc"] = config.cmpc_weight * cmpc_loss(image, text, pids, self.cmpc_weight)
        return losses
