"""TIPCB: text-image part-based convolutional baseline (Chen et al., Neurocomputing 2022), Table
2's "TIPCB (S) RN50-BERT" row. Written from the paper's description and its public code
(OrangeYHChen/TIPCB), read to learn, not copied.

Three levels on both sides, each aligned by CMPM (the "multi-stage cross-modal matching"):

* image (ResNet-50 with the last stride set to 1, so a 384x128 image gives a 24x8 map):
  low-level = the max-pooled stage-3 map (1024-d); local = the max-pooled 6 horizontal stripes
  of the stage-4 map (:func:`models.encoders.parts.stripe_pool`, 2048-d each); global = the max
  over the local features (= the max-pooled stage-4 map).
* text (a frozen BERT's word states, then a trained text CNN, :class:`PartBranchTextCNN`):
  low-level = a 1x1 convolution + BN + ReLU of the states (1024-d per word), max over words;
  local = 6 branches of 3 residual bottleneck blocks (1x3 convolutions along the caption) on the
  low-level map, each max-pooled over words (2048-d); global = the max over the 6 branches.
  Each branch learns to pick out one region's words; nothing ties branch ``k`` to stripe ``k``
  except the CMPM loss between them.

Loss: the sum of 8 CMPM losses (low-level, the 6 local pairs, global; TIPCB's code), with no
classifier (CMPC is not used). Retrieval: the cosine of the two global features (TIPCB's
evaluation uses the global level only).

Widths follow the image encoder: the text CNN's low-level width is the image's stage-3 width and
its branch width the stage-4 width (1024 / 2048 for ResNet-50, 64 / 128 for the tiny ResNet), so
the CMPM pairs match.

Where we differ from the code (see docs/fidelity.md): padding positions are zeroed before every
1x3 convolution and excluded from the max (TIPCB pads every caption to 64 word pieces and pools
over the padding too, which makes a caption's feature depend on its padding length); the text
CNN sees ``[CLS]`` and the words but not ``[SEP]``; each branch has its own shortcut projection
(TIPCB's code passes one downsample module to all six branches, so they share it); CMPM's match
distribution is normalised by its sum (the CMPM paper) instead of its L2 norm.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.distributed import gather
from models.encoders.parts import stripe_pool
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses import cmpm_loss
from models.methods.two_tower import TwoTowerConfig, TwoTowerModel


@dataclass
class TIPCBConfig(TwoTowerConfig):
    """TIPCB; see :class:`TwoTowerConfig` for the encoders (here ResNet + BERT).

    Attributes:
        num_parts: image stripes / text branches (6).
        branch_blocks: bottleneck blocks per text branch (3).
        last_stride_one: set the image ResNet's last stride to 1 (TIPCB: yes).
        freeze_bert: keep BERT's weights fixed (TIPCB's code: ``requires_grad False``).
        bert_dropout: the frozen BERT's dropout is active in training. The code builds BERT
            in eval mode, but its loop calls ``network.train()`` at every epoch, which puts
            BERT back in train mode: its features are noised by dropout while it stays frozen
            (True, the code's behaviour); False keeps it in eval mode.
        epsilon: CMPM's epsilon.
    """

    family: str = "tipcb"
    text_encoder: str = "bert"
    bert_max_length: int = 64
    num_parts: int = 6
    branch_blocks: int = 3
    last_stride_one: bool = True
    freeze_bert: bool = True
    bert_dropout: bool = True
    epsilon: float = 1e-8

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("num_parts", "branch_blocks"):
            if int(getattr(self, name)) < 1:
                raise ModelError(f"{name} must be positive, got {getattr(self, name)}")
        if self.image_encoder != "resnet":
            raise ModelError("tipcb takes stage-3 and stage-4 maps of a ResNet: image_encoder "
                             f"must be 'resnet', got '{self.image_encoder}'")


class MaskedBottleneck(nn.Module):
    """A ResNet bottleneck along the caption (1x1, 1x3, 1x1 convolutions with BN) whose padded
    positions are zeroed before the 1x3 convolution and at the output, so that a caption's
    features are those of zero padding at its end, whatever the batch's longest caption."""

    def __init__(self, in_dim: int, out_dim: int, width: int) -> None:
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv1d(in_dim, width, 1, bias=False),
                                    nn.BatchNorm1d(width), nn.ReLU())
        self.mix = nn.Sequential(nn.Conv1d(width, width, 3, padding=1, bias=False),
                                 nn.BatchNorm1d(width), nn.ReLU())
        self.expand = nn.Sequential(nn.Conv1d(width, out_dim, 1, bias=False),
                                    nn.BatchNorm1d(out_dim))
        self.shortcut = nn.Identity() if in_dim == out_dim else nn.Sequential(
            nn.Conv1d(in_dim, out_dim, 1, bias=False), nn.BatchNorm1d(out_dim))

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        out = self.expand(self.mix(self.reduce(x) * keep))
        return F.relu(out + self.shortcut(x)) * keep


class PartBranchTextCNN(nn.Module):
    """TIPCB's text CNN: a shared low-level layer, then ``num_parts`` residual branches.

    ``forward(states [B, L, in], mask [B, L])`` returns the low-level feature ``[B, low]`` and
    the branch features ``[B, K, out]``, each max-pooled over the caption's positions.
    """

    def __init__(self, in_dim: int, low_dim: int, out_dim: int, num_parts: int,
                 blocks: int = 3) -> None:
        super().__init__()
        self.low = nn.Sequential(nn.Conv1d(in_dim, low_dim, 1, bias=False),
                                 nn.BatchNorm1d(low_dim), nn.ReLU())
        width = max(1, out_dim // 4)
        self.branches = nn.ModuleList(
            nn.ModuleList(MaskedBottleneck(low_dim if b == 0 else out_dim, out_dim, width)
                          for b in range(blocks))
            for _ in range(num_parts))
        for module in self.modules():  # TIPCB's initialisation of its text CNN
            if isinstance(module, nn.Conv1d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        keep = mask.unsqueeze(1).to(states.dtype)  # [B, 1, L]
        low = self.low(states.transpose(1, 2)) * keep  # [B, low, L]
        parts = []
        for branch in self.branches:
            x = low
            for block in branch:
                x = block(x, keep)
            parts.append(_masked_max(x, mask))
        return _masked_max(low, mask), torch.stack(parts, dim=1)


def _masked_max(x: Tensor, mask: Tensor) -> Tensor:
    """Max over positions of ``x [B, C, L]`` where ``mask [B, L]``; zero for an empty caption."""
    out = x.masked_fill(~mask.unsqueeze(1), float("-inf")).amax(dim=2)
    return torch.where(torch.isinf(out), torch.zeros_like(out), out)


def _last_channels(stage: nn.Module) -> int:
    norms = [m for m in stage.modules() if isinstance(m, nn.BatchNorm2d)]
    return int(norms[-1].num_features)


class TIPCB(TwoTowerModel):
    """TIPCB; ``forward`` returns {"cmpm_low", "cmpm_local", "cmpm_global"}."""

    batch_gathers = ("image low/local/global levels", "text low/local/global levels",
                     "person ids")
    config: TIPCBConfig

    def __init__(self, config: TIPCBConfig) -> None:
        super().__init__(config)
        del self.image_projection, self.text_projection  # TIPCB compares the raw levels
        net = self.image_encoder.net
        if config.last_stride_one:
            self.image_encoder.set_last_stride_one()
        if config.freeze_bert:
            self.text_encoder.requires_grad_(False)
        self.text_cnn = PartBranchTextCNN(
            int(self.text_encoder.feature_dim), _last_channels(net.layer3),
            int(self.image_encoder.feature_dim), int(config.num_parts),
            int(config.branch_blocks))

    def train(self, mode: bool = True) -> TIPCB:
        super().train(mode)
        if self.config.freeze_bert and not self.config.bert_dropout:
            self.text_encoder.eval()
        return self

    def encoder_modules(self) -> Iterable[nn.Module]:
        return (self.image_encoder, self.text_encoder)

    # ------------------------------------------------------------------ the three levels
    def image_levels(self, pixels: Tensor) -> dict[str, Tensor]:
        """{"low": [B, C3], "local": [B, K, C4], "global": [B, C4]} of images."""
        net = self.image_encoder.net
        x = net.maxpool(net.relu(net.bn1(net.conv1(pixels))))
        stage3 = net.layer3(net.layer2(net.layer1(x)))
        local = stripe_pool(net.layer4(stage3), self.config.num_parts)
        return {"low": stage3.amax(dim=(2, 3)), "local": local, "global": local.amax(dim=1)}

    def text_levels(self, tokens: Tensor) -> dict[str, Tensor]:
        """The same levels of captions (``[CLS]`` and word-piece states through the text CNN)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_bert):
            raw = self.text_encoder(tokens)
        states = torch.cat([raw.pooled.unsqueeze(1), raw.tokens], dim=1)
        mask = torch.cat([torch.ones_like(raw.mask[:, :1]), raw.mask], dim=1)
        low, local = self.text_cnn(states, mask)
        return {"low": low, "local": local, "global": local.amax(dim=1)}

    @staticmethod
    def _features(levels: dict[str, Tensor], cls: type) -> ImageFeatures | TextFeatures:
        local = levels["local"]
        batch, num = local.shape[:2]
        return cls(pooled=levels["global"], tokens=local,
                   mask=torch.ones(batch, num, dtype=torch.bool, device=local.device),
                   attention=torch.full((batch, num), 1.0 / num, device=local.device))

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        """``pooled``: the global feature; ``tokens``: the ``K`` stripe features, top first."""
        return self._features(self.image_levels(pixels), ImageFeatures)  # type: ignore[return-value]

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        """``pooled``: the global feature; ``tokens``: the ``K`` branch features."""
        return self._features(self.text_levels(tokens), TextFeatures)  # type: ignore[return-value]

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        """Cosine of the global features (TIPCB's evaluation)."""
        return F.normalize(text.pooled.float(), dim=-1) @ F.normalize(
            image.pooled.float(), dim=-1).t()

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        # every term is CMPM, which compares all pairs of the (global) batch
        levels = (self.image_levels(batch["images"]), self.text_levels(batch["tokens"]))
        image, text = ({name: gather(value) for name, value in side.items()} for side in levels)
        pids, eps = gather(batch["pids"]), self.config.epsilon
        local = sum(cmpm_loss(image["local"][:, k], text["local"][:, k], pids, eps)
                    for k in range(self.config.num_parts))
        return {"cmpm_low": cmpm_loss(image["low"], text["low"], pids, eps),
                "cmpm_local": local,  # type: ignore[dict-item]
                "cmpm_global": cmpm_loss(image["global"], text["global"], pids, eps)}
