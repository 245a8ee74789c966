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
        loss_reduction: "sum" of the two InfoNCE directions (as MGCC's paper) or "mean" (as
            IRRA's ``compute_itc``, its CLIP fine-tuning baseline).
        temperature: ``None`` learns CLIP's logit scale; a number fixes the logits at
            ``cos / temperature`` and freezes the scale (IRRA's baseline: 0.02).
    """

    family: str = "clip"
    loss_reduction: str = "sum"
    temperature: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.temperature is not None and not float(self.temperature) > 0:
            raise ModelError(f"temperature must be positive, got {self.temperature}")
        if self.loss_reduction not in ("sum", "mean"):
            raise ModelError(f"unknown loss_reduction '{self.loss_reduction}'; valid: sum, mean")


class CLIPBaseline(GlobalRetrievalModel):
    """Global features only; similarity is their cosine."""

    batch_gathers = ("image features", "text features")
    ddp_find_unused_parameters = False  # every parameter trains each step (torchrun test)

    config: CLIPConfig

    def __init__(self, config: CLIPConfig) -> None:
        super().__init__(config)
        if config.temperature is not None:  # a fixed scale: CLIP's learnable one is unused
            self.backbone.clip.logit_scale.requires_grad_(False)

    def logit_scale(self) -> Tensor:
        if self.config.temperature is None:
            return super().logit_scale()
        return self.backbone.clip.logit_scale.new_tensor(1.0 / float(self.config.temperature))

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        # the whole global batch under DDP (models.distributed): every negative of one process
        image = self.encode_images(batch["images"]).gathered()
        text = self.encode_texts(batch["tokens"]).gathered()
        logits = self.pair_similarity(text, image) * self.logit_scale()
        return {"infonce": info_nce(logits, self.config.loss_reduction)}
