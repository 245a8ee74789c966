"""APTM: attribute prompts for text-based person search (Yang et al., "Towards Unified
Text-based Person Retrieval: A Large-scale Multi-Attribute and Language Search Benchmark", ACM
MM 2023), built to import and evaluate its released fine-tuned checkpoints. Written from the
paper and its public code (Shuyu-XJTU/APTM, MIT; read to learn).

Architecture (the code's ``models/aptm.py``, ``configs/Retrieval_cuhk.yaml``,
``configs/config_swinB_384.json``): a Swin-B image encoder (patch 4, width 128, depths 2/2/18/2,
heads 4/8/16/32, window 8) at 384x128, whose tokens are its final-norm feature map preceded by
their mean (the "[CLS]" the projection reads); the same ALBEF-split BERT as RaSa
(:mod:`models.encoders.albef`, 6 text + 6 fusion layers) with cross-attention keys from the
1024-wide image tokens; linear projections to 256-d; an MLP ITM head (768 -> 1536, LayerNorm,
GELU -> 2).

The Swin is timm's with Microsoft's window rule: a stage whose feature map is no larger than
the window in its *shorter* side gets a square window of that side and no shift (at 384x128:
stage 3, 24x8, window 8 without shift; stage 4, 12x4, window 4 without shift). timm applies the
rule per side (it would shift stage 3 along the height); :func:`build_aptm_swin` resets those
blocks so that the released weights compute what they were trained to.

Retrieval (the code's ``reTools.evaluation``): cosine of the normalised projections ranks the
gallery; each query's top ``rerank_k`` (128) are re-scored by ``s = n(itm) + 0.002 n(cos)``,
``n`` a min-max normalisation over the score matrix (:mod:`models.two_stage`). The code
normalises over the whole query x gallery matrix; ours over the block of queries the evaluator
passes (512 by default: the same for a test set of up to 512 queries; beyond it the ITM scale
may differ per block, which changes only how much the 0.002 cosine term weighs).

Training APTM (its MALS pre-training: 1.5M synthetic images) is out of scope; ``forward``
gives the fine-tuning objective without MLM and text augmentation: the identity-aware
contrast (same-person targets) and ITM with hard in-batch negatives, so that a checkpoint can
be fine-tuned further and the model goes through the shared training test.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformer
from torch import Tensor, nn

from models.base import ModelConfig
from models.distributed import gather, own_rows
from models.encoders.albef import (
    ALBEF_BERT_ARCHITECTURE,
    AlbefTextEncoder,
    tiny_albef_architecture,
)
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.methods.rasa import AlbefRetrievalBase, RaSa

# The release's normalisations (dataset/__init__.py), chosen by the dataset it was tuned on
APTM_NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cuhk": ((0.38901278, 0.3651612, 0.34836376), (0.24344306, 0.23738699, 0.23368555)),
    "icfg": ((0.30941582, 0.28956893, 0.30347288), (0.25849792, 0.24547698, 0.2366199)),
    "rstp": ((0.27722597, 0.26065794, 0.3036557), (0.2609547, 0.2508087, 0.25293276)),
}

SWIN_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "swin-base": {"embed_dim": 128, "depths": (2, 2, 18, 2), "num_heads": (4, 8, 16, 32),
                  "window_size": 8, "image_size": (384, 128)},
    # two stages: 16x8 (window 4, shifted) then 8x4 (window 4, not shifted: the rule above)
    "tiny": {"embed_dim": 32, "depths": (2, 2), "num_heads": (2, 4), "window_size": 4,
             "image_size": (64, 32)},
}

SIM_WEIGHT = 0.002  # reTools.evaluation: score_matrix + 0.002 * score_sim


def build_aptm_swin(backbone: str, image_size: tuple[int, int],
                    drop_path: float = 0.1) -> SwinTransformer:
    """timm's Swin with Microsoft's window/shift rule (see the module docstring)."""
    if backbone not in SWIN_ARCHITECTURES:
        raise ModelError(f"unknown backbone '{backbone}' for aptm; valid: "
                         f"{', '.join(SWIN_ARCHITECTURES)}")
    arch = SWIN_ARCHITECTURES[backbone]
    net = SwinTransformer(
        img_size=tuple(image_size), patch_size=4, in_chans=3, embed_dim=arch["embed_dim"],
        depths=arch["depths"], num_heads=arch["num_heads"], window_size=arch["window_size"],
        mlp_ratio=4.0, qkv_bias=True, drop_rate=0.0, drop_path_rate=drop_path, num_classes=0,
        global_pool="")
    window = int(arch["window_size"])
    for stage in net.layers:
        for index, block in enumerate(stage.blocks):
            size = tuple(block.input_resolution)
            if min(size) <= window:
                side, shift = min(size), 0
            else:
                side, shift = window, (window // 2 if index % 2 else 0)
            block.target_shift_size = (shift, shift)
            with warnings.catch_warnings():  # timm resamples the (random) bias table
                warnings.simplefilter("ignore", UserWarning)
                block.set_input_size(size, (side, side), always_partition=True)
    return net


@dataclass
class APTMConfig(ModelConfig):
    """APTM (values of configs/Retrieval_cuhk.yaml unless said otherwise).

    Attributes:
        backbone: "swin-base" or "tiny".
        pretrained: an APTM checkpoint file (pre-trained or fine-tuned, the release's layout)
            or None (random).
        bert: the WordPiece vocabulary's source ("tiny", a BERT folder or Hub name, None).
        normalization: the release's image mean/std, per dataset: cuhk, icfg or rstp.
        max_words: 56 (``max_tokens``); embed_dim: 256; temperature: 0.07 (learnable).
        rerank_k: 128 (``k_test``); rerank_batch: pairs per cross-encoder pass.
    """

    family: str = "aptm"
    backbone: str = "swin-base"
    bert: str | None = "bert-base-uncased"
    bert_architecture: dict[str, Any] | None = None
    lowercase: bool = True
    normalization: str = "cuhk"
    max_words: int = 56
    embed_dim: int = 256
    temperature: float = 0.07
    rerank_k: int = 128
    rerank_batch: int = 256
    pretrained_fields: ClassVar[tuple[str, ...]] = ("pretrained", "bert")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.normalization not in APTM_NORMALIZATIONS:
            raise ModelError(f"unknown normalization '{self.normalization}'; valid: "
                             f"{', '.join(APTM_NORMALIZATIONS)}")
        if int(self.rerank_k) < 0:
            raise ModelError(f"rerank_k must be >= 0 (0: no re-ranking), got {self.rerank_k}")
        for name in ("embed_dim", "max_words", "rerank_batch"):
            if int(getattr(self, name)) < 1:
                raise ModelError(f"{name} must be positive, got {getattr(self, name)}")


class APTM(AlbefRetrievalBase):
    """APTM; see the module docstring."""

    batch_gathers = ("image/text CLS features", "person ids")
    config: APTMConfig

    def __init__(self, config: APTMConfig) -> None:
        super().__init__(config)
        if config.pretrained:
            from models.albef_weights import require_release_file

            require_release_file(config.pretrained, "APTM")
        if config.backbone not in SWIN_ARCHITECTURES:
            raise ModelError(f"unknown backbone '{config.backbone}' for aptm; valid: "
                             f"{', '.join(SWIN_ARCHITECTURES)}")
        self.image_size = tuple(config.image_size or
                                SWIN_ARCHITECTURES[config.backbone]["image_size"])
        self.image_mean, self.image_std = APTM_NORMALIZATIONS[config.normalization]
        self.vision_encoder = build_aptm_swin(config.backbone, self.image_size)
        width = int(self.vision_encoder.num_features)
        arch = config.bert_architecture or (
            tiny_albef_architecture(width) if config.backbone == "tiny"
            else {**ALBEF_BERT_ARCHITECTURE, "encoder_width": width})
        self.text_encoder = AlbefTextEncoder(arch, config.bert, config.max_words,
                                             config.lowercase)
        text_width = int(arch["hidden_size"])
        self.vision_proj = nn.Linear(width, config.embed_dim)
        self.text_proj = nn.Linear(text_width, config.embed_dim)
        self.temp = nn.Parameter(torch.tensor(float(config.temperature)))
        self.itm_head = nn.Sequential(nn.Linear(text_width, 2 * text_width),
                                      nn.LayerNorm(2 * text_width), nn.GELU(),
                                      nn.Linear(2 * text_width, 2))
        if config.pretrained:
            from models.albef_weights import load_release_weights

            load_release_weights(self, config.pretrained, "APTM")

    def finalize_config(self, config: ModelConfig) -> None:
        assert isinstance(config, APTMConfig)
        config.bert_architecture = dict(self.text_encoder.architecture)
        config.lowercase = self.text_encoder.lowercase
        config.image_size = tuple(self.image_size)  # type: ignore[assignment]

    def encoder_modules(self) -> Iterable[nn.Module]:
        return (self.vision_encoder, self.text_encoder)

    def image_states(self, pixels: Tensor) -> Tensor:
        grid = self.vision_encoder.forward_features(pixels)  # [B, h, w, C], final norm
        tokens = grid.flatten(1, 2)
        return torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)

    def second_stage_scores(self, text: TextFeatures, image: ImageFeatures, first: Tensor,
                            top: Tensor) -> Tensor:
        """``n(itm) + 0.002 n(cos)``: both min-max normalised over this block."""
        itm = super().second_stage_scores(text, image, first, top)
        itm_n = (itm - itm.min()) / (itm.max() - itm.min()).clamp_min(1e-12)
        cos_n = (first - first.min()) / (first.max() - first.min()).clamp_min(1e-12)
        return itm_n + SIM_WEIGHT * torch.gather(cos_n, 1, top)

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The release's fine-tuning ITC (same-person targets) + ITM with hard negatives."""
        images, tokens, pids = batch["images"], batch["tokens"], batch["pids"].view(-1, 1)
        mask = (tokens != self.text_encoder.special_ids["pad"]).long()
        image_embeds = self.image_states(images)
        text_embeds = self.text_encoder.bert.text(tokens, mask)
        image_feat = F.normalize(self.vision_proj(image_embeds[:, 0]), dim=-1)
        text_feat = F.normalize(self.text_proj(text_embeds[:, 0]), dim=-1)
        # ITC compares all pairs of the (global) batch: gathered. ITM draws its hard negatives
        # from this process's own share, as the release does under DDP (ALBEF's sim[:, :bs])
        every_pid = gather(pids)
        every = gather(image_feat) @ gather(text_feat).t() / self.temp
        every_same = (every_pid == every_pid.t()).float()
        targets = every_same / every_same.sum(dim=1, keepdim=True)
        loss_itc = (-(F.log_softmax(every, dim=1) * targets).sum(1).mean()
                    - (F.log_softmax(every.t(), dim=1) * targets).sum(1).mean()) / 2
        bs = images.shape[0]
        own = own_rows(bs, images.device)
        logits, same = every[own, own], every_same[own, own]
        with torch.no_grad():
            weights_i2t = (F.softmax(logits.float(), dim=1) + 1e-5).masked_fill(same.bool(), 0)
            weights_t2i = (F.softmax(logits.t().float(), dim=1) + 1e-5).masked_fill(
                same.bool(), 0)
            image_neg = RaSa._negatives(weights_t2i)
            text_neg = RaSa._negatives(weights_i2t)
        image_atts = torch.ones(image_embeds.shape[:2], dtype=torch.long, device=images.device)
        fusion = self.text_encoder.bert.fusion
        pos = fusion(text_embeds, mask, image_embeds, image_atts)[:, 0]
        neg = fusion(torch.cat([text_embeds, text_embeds[text_neg]]),
                     torch.cat([mask, mask[text_neg]]),
                     torch.cat([image_embeds[image_neg], image_embeds]),
                     torch.cat([image_atts, image_atts]))[:, 0]
        out = self.itm_head(torch.cat([pos, neg]))
        labels = torch.cat([torch.ones(bs, dtype=torch.long),
                            torch.zeros(2 * bs, dtype=torch.long)]).to(images.device)
        return {"itc": loss_itc, "itm": F.cross_entropy(out, labels)}
