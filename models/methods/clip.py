"""The CLIP fine-tuning baseline: cosine of global features, InfoNCE in both directions.

It is the same model as MGCC restricted to ``S_I-T`` (``build_model("mgcc-sit")``); a separate
family keeps the baseline's configuration minimal and its features small (no token features are
kept for evaluation). The equality of the two is tested.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from models.base import ModelConfig
from models.errors import ModelError
from models.losses import info_nce
from models.methods.clip_model import GlobalRetrievalModel


@dataclass
class CLIPConfig(ModelConfig):
    """CLIP baseline.

    Attributes:
        loss_reduction: "sum" of the two InfoNCE directions (as MGCC's paper) or "mean".
    """

    family: str = "clip"
    loss_reduction: str = "sum"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss_reduction not in ("sum", "mean"):
            raise ModelError(f"unknown loss_reduction '{self.loss_reduction}'; valid: sum, mean")


class CLIPBaseline(GlobalRetrievalModel):
    """Global features only; similarity is their cosine."""

    config: CLIPConfig

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        image = self.encode_images(batch["images"])
        text = self.encode_texts(batch["tokens"])
        logits = self.pair_similarity(text, image) * self.logit_scale()
        return {"infonce": info_nce(logits, self.config.loss_reduction)}
