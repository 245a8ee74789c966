"""CFine: CLIP-driven fine-grained text-image person re-id (Yan, Dong, Zhang, Tang; arXiv
2210.10276, IEEE TIP 2023), the MGCC paper's "CFine (M) CLIP-BERT" row of Table 2.

Written from the paper's abstract and the authors' code (github.com/shuanglinyan/CFine:
``models/model.py``, ``models/layers.py``, ``utils/metric.py``, ``utils/CRLoss.py``,
``train.py``, ``test.py``, ``train_config.py``), read to learn; ``docs/fidelity.md`` lists every
setting with its source and the few places where ours differs.

Features stay in the encoders' own spaces: CLIP's image tower after ``ln_post`` without CLIP's
projection, and BERT's last hidden states (the abstract: "performed in the original modality
space without further feature embedding"), so both encoders must have the same width (768 for
ViT-B/16 and BERT-base).

* Multi-grained global features (MGF): each sample's tokens are ranked by the last encoder
  layer's attention of the global token ([CLS]) over them, heads averaged. The top ``K`` form
  group 1 and the next ``K`` group 2 (image ``K = int(0.1 x 197) = 19`` of the 196 patches; text
  ``K = int(0.2 x 100) = 20`` of the word pieces, ``[SEP]`` included, padding never). Each
  group, led by the sample's global token, is the query of one residual block (self-attention
  among the queries, cross-attention to all of the sample's tokens, MLP), shared by both groups
  and both modalities (:class:`MultiGrainedBlock`); the block's output at the global position is
  that group's global feature. The global token and the two MGF features pass through one
  BatchNorm per modality (bias frozen at 0).
* Retrieval: the cosine of the concatenated ``[global, MGF1, MGF2]`` (``test.py`` /
  ``compute_topk``). Nothing else: the two modules below are training-only.
* Cross-grained feature refinement (CFR, training only): image global vs the text's ``2K``
  selected words and text global vs the image's ``2K`` selected patches, each a
  softmax-weighted sum of cosines scaled by ``1 / 0.07`` (:func:`cross_grained_similarity`).
* Fine-grained correspondence discovery (FCD, training only): within each matched pair, every
  group-1 patch finds its top-3 words and every group-1 word its top-3 patches (soft matches);
  the pair ``(i, j)`` then scores patch ``p`` of image ``i`` against the words matched to patch
  ``p`` of image ``j`` by caption ``j``, and vice versa, at ``1 / 0.01``
  (:func:`fine_grained_similarity`).

Losses (``train.py``, ``utils/metric.py``): CMPM on the global, MGF1 and MGF2 features (weights
1, 1, 0.1), CMPC on all three through one shared classifier, 0.2 x the diversity of the two MGF
features of each sample (:func:`mgf_diversity`), and 10 x SSAN's hard-negative triplet loss
(margin 0.2) on the sum of the CFR and FCD similarities
(:func:`models.losses.hard_triplet_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from open_clip.transformer import QuickGELU
from torch import Tensor, nn

from models.base import RetrievalModel
from models.distributed import gather
from models.encoders.bert import BertTextEncoder
from models.encoders.clip_image import CLIPImageEncoder
from models.encoders.resnet import IMAGENET_MEAN, IMAGENET_STD
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses import cmpc_loss, cmpm_loss, hard_triplet_loss
from models.methods.two_tower import (
    IMAGE_ENCODERS,
    TEXT_ENCODERS,
    TwoTowerConfig,
    TwoTowerModel,
)

IMAGE_NORMALIZATIONS = ("imagenet", "clip")
NUM_LEVELS = 3  # global, MGF1, MGF2


@dataclass
class CFineConfig(TwoTowerConfig):
    """CFine; see :class:`TwoTowerConfig` for the encoders (``embed_dim`` is not used: the
    features keep the encoders' width).

    Attributes:
        image_k_ratio, text_k_ratio: ``K = int(ratio x tokens)``, tokens counting the global one
            (image: patches + 1; text: ``bert_max_length``); the two MGF groups are ranks
            ``1..K`` and ``K+1..2K``.
        mgf_heads: heads of the MGF block (``None``: width / 64, as BERT and CLIP).
        cfr_temperature, fcd_temperature: the scales ``1 / t`` of CFR and FCD.
        fcd_top_k: how many soft matches FCD averages (words per patch and patches per word).
        cmpm_weights: CMPM's weight on the global, MGF1 and MGF2 features.
        cmpm_match_norm: CMPM's matching distribution (see :func:`models.losses.cmpm_loss`).
        cmpc_weight, diversity_weight, triplet_weight: the other losses' weights.
        triplet_margin: the hard-negative triplet margin.
        image_normalization: "imagenet" (the code's ``transforms.Normalize``) or "clip".
    """

    family: str = "cfine"
    image_encoder: str = "clip"
    text_encoder: str = "bert"
    backbone: str = "ViT-B-16"
    bert_max_length: int = 100
    image_k_ratio: float = 0.1
    text_k_ratio: float = 0.2
    mgf_heads: int | None = None
    cfr_temperature: float = 0.07
    fcd_temperature: float = 0.01
    fcd_top_k: int = 3
    cmpm_weights: tuple[float, float, float] = (1.0, 1.0, 0.1)
    cmpm_match_norm: str = "l2"
    cmpc_weight: float = 1.0
    diversity_weight: float = 0.2
    triplet_weight: float = 10.0
    triplet_margin: float = 0.2
    image_normalization: str = "imagenet"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_encoder != "clip" or self.text_encoder != "bert":
            raise ModelError("CFine reads CLIP image tokens and BERT word pieces: image_encoder "
                             f"must be 'clip' and text_encoder 'bert', got "
                             f"'{self.image_encoder}' / '{self.text_encoder}'")
        for name in ("image_k_ratio", "text_k_ratio", "cfr_temperature", "fcd_temperature"):
            if not float(getattr(self, name)) > 0:
                raise ModelError(f"{name} must be positive, got {getattr(self, name)}")
        if int(self.fcd_top_k) < 1:
            raise ModelError(f"fcd_top_k must be at least 1, got {self.fcd_top_k}")
        self.cmpm_weights = tuple(float(w) for w in self.cmpm_weights)  # type: ignore[assignment]
        if len(self.cmpm_weights) != NUM_LEVELS:
            raise ModelError(f"cmpm_weights needs {NUM_LEVELS} values (global, MGF1, MGF2), got "
                             f"{list(self.cmpm_weights)}")
        if self.cmpm_match_norm not in ("l1", "l2"):
            raise ModelError(f"cmpm_match_norm must be 'l1' or 'l2', got "
                             f"'{self.cmpm_match_norm}'")
        if self.image_normalization not in IMAGE_NORMALIZATIONS:
            raise ModelError(f"unknown image_normalization '{self.image_normalization}'; valid: "
                             f"{', '.join(IMAGE_NORMALIZATIONS)}")


class MultiGrainedBlock(nn.Module):
    """The MGF block (the code's ``ResidualCrossAttentionBlock``): pre-norm self-attention among
    the queries, cross-attention from the normed queries to the raw tokens, pre-norm MLP with
    QuickGELU, each residual. Masked query slots and padding keys take no part."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln_0 = nn.LayerNorm(width)
        self.self_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = nn.LayerNorm(width)
        self.cross_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), QuickGELU(),
                                 nn.Linear(4 * width, width))

    def forward(self, queries: Tensor, query_valid: Tensor, keys: Tensor,
                key_valid: Tensor) -> Tensor:
        h = self.ln_0(queries)
        x = queries + self.self_attn(h, h, h, key_padding_mask=~query_valid,
                                     need_weights=False)[0]
        x = x + self.cross_attn(self.ln_1(x), keys, keys, key_padding_mask=~key_valid,
                                need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


@dataclass
class CFineSide:
    """One modality of a batch as CFine's losses see it.

    Attributes:
        levels: ``[B, 3, D]`` global, MGF1, MGF2 after the modality's BatchNorm.
        glob: ``[B, D]`` the encoder's global token (no BatchNorm: CFR's input).
        selected: ``[B, 2K, D]`` the encoder's tokens of attention ranks ``1..2K``, in rank order.
        selected_valid: ``[B, 2K]`` False on slots beyond a short caption's word pieces.
        k: the group size ``K``.
    """

    levels: Tensor
    glob: Tensor
    selected: Tensor
    selected_valid: Tensor
    k: int


def gathered(side: CFineSide) -> CFineSide:
    """Every process's share of the batch (:func:`models.distributed.gather`). A process
    whose captions are all shorter than ``2K`` pieces selects fewer slots: its slots are
    padded, as invalid ones, to the widest process's."""
    return CFineSide(levels=gather(side.levels), glob=gather(side.glob),
                     selected=gather(side.selected, pad_dim=1),
                     selected_valid=gather(side.selected_valid, pad_dim=1, pad_value=False),
                     k=side.k)


def top_ranked(score: Tensor, valid: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """Indices ``[B, count]`` of each row's highest-scoring valid tokens, best first, and whether
    each slot holds a valid token (rows with fewer valid tokens end in invalid slots)."""
    order = score.float().masked_fill(~valid, float("-inf")).argsort(
        dim=1, descending=True, stable=True)[:, :count]
    return order, valid.gather(1, order)


def _gather_tokens(tokens: Tensor, index: Tensor) -> Tensor:
    return tokens.gather(1, index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def cross_grained_similarity(image: CFineSide, text: CFineSide, temperature: float) -> Tensor:
    """CFR's ``[B_image, B_text]`` score: (image global vs text words + text global vs image
    patches) / 2, each ``sum_n softmax(s)_n s_n`` of the scaled cosines ``s = cos / t`` over the
    other modality's ``2K`` selected tokens (``model.py``: ``sim_iw``, ``sim_pt``)."""

    def global_to_tokens(glob: Tensor, tokens: Tensor, valid: Tensor) -> Tensor:
        scaled = torch.einsum("gd,tnd->gtn", F.normalize(glob.float(), dim=-1),
                              F.normalize(tokens.float(), dim=-1)) / temperature
        weights = scaled.masked_fill(~valid.unsqueeze(0), float("-inf")).softmax(dim=-1)
        return (weights.nan_to_num(0.0) * scaled).sum(dim=-1)

    image_word = global_to_tokens(image.glob, text.selected, text.selected_valid)
    patch_text = global_to_tokens(text.glob, image.selected, image.selected_valid).t()
    return (image_word + patch_text) / 2


def _soft_matches(tokens: Tensor, scores: Tensor, valid: Tensor, top_k: int,
                  dim: int) -> Tensor:
    """Mean of the ``top_k`` valid tokens of highest ``scores`` along ``dim`` (1: patches per
    word, 2: words per patch); ``tokens`` are the other side's ``[B, N, D]``."""
    k = min(top_k, scores.shape[dim])
    index = scores.topk(k, dim=dim).indices  # [B, P, k] or [B, k, W]
    if dim == 1:
        index = index.transpose(1, 2)  # [B, W, k]
    batch, rows, _ = index.shape
    flat = index.reshape(batch, rows * k)
    picked = _gather_tokens(tokens.float(), flat).view(batch, rows, k, -1)
    keep = valid.gather(1, flat).view(batch, rows, k, 1).float()
    return (picked * keep).sum(2) / keep.sum(2).clamp(min=1)


def fine_grained_similarity(image: CFineSide, text: CFineSide, temperature: float,
                            top_k: int) -> Tensor:
    """FCD's ``[B, B]`` score of image ``i`` and caption ``j`` over the group-1 tokens
    (``model.py``, "Correspondence Discovery").

    Within each matched pair ``b``, the patch-word cosines are softmax-normalised over the
    words; each patch's ``top_k`` words (and each word's ``top_k`` patches, ranked by the same
    normalised scores) are averaged into its soft match. Then ``s0(i, j)`` is the mean over
    patch slots ``p`` of ``cos(patch_i[p], words matched to patch_j[p] in pair j) / t`` and
    ``s1(i, j)`` the mean over word slots ``w`` of ``cos(patches matched to word_i[w] in pair i,
    word_j[w]) / t``; the score is ``(s0 + s1) / 2``. Slots invalid on either side are left out
    of the means.
    """
    k_image, k_text = image.k, text.k
    patches, patch_valid = image.selected[:, :k_image].float(), image.selected_valid[:, :k_image]
    words, word_valid = text.selected[:, :k_text].float(), text.selected_valid[:, :k_text]
    if len(patches) != len(words):
        raise ValueError("FCD matches within pairs: image and text batches must be the same")
    patch_dir, word_dir = F.normalize(patches, dim=-1), F.normalize(words, dim=-1)
    pair_valid = patch_valid.unsqueeze(2) & word_valid.unsqueeze(1)  # [B, P, W]
    soft = (patch_dir @ word_dir.transpose(1, 2)).masked_fill(~pair_valid, float("-inf"))
    soft = soft.softmax(dim=2).nan_to_num(0.0).masked_fill(~pair_valid, float("-inf"))
    word_match = F.normalize(_soft_matches(words, soft, word_valid, top_k, dim=2), dim=-1)
    patch_match = F.normalize(_soft_matches(patches, soft, patch_valid, top_k, dim=1), dim=-1)

    def slot_mean(left: Tensor, right: Tensor, valid: Tensor) -> Tensor:
        cos = torch.einsum("ind,jnd->ijn", left, right) / temperature
        both = (valid.unsqueeze(1) & valid.unsqueeze(0)).float()
        return (cos * both).sum(-1) / both.sum(-1).clamp(min=1)

    patch_side = slot_mean(patch_dir, word_match, patch_valid)
    word_side = slot_mean(patch_match, word_dir, word_valid)
    return (patch_side + word_side) / 2


def mgf_diversity(features: Tensor) -> Tensor:
    """``[B, K, D]`` -> the batch mean of ``||G - diag(G)||_F / K^2``, ``G`` the cosine Gram of a
    sample's ``K`` features (``metric.py``'s ``diversity_loss``): the MGF features should
    differ."""
    unit = F.normalize(features.float(), dim=-1)
    gram = unit @ unit.transpose(1, 2)
    count = features.shape[1]
    off = gram.masked_fill(torch.eye(count, dtype=torch.bool, device=gram.device), 0.0)
    return (off.flatten(1).norm(dim=1) / count ** 2).mean()


def _frozen_bias_batchnorm(width: int) -> nn.BatchNorm1d:
    norm = nn.BatchNorm1d(width)
    norm.bias.requires_grad_(False)  # the code's bottleneck: a BNNeck without a trained shift
    return norm


class CFine(TwoTowerModel):
    """CFine; ``forward`` returns {"cmpm", "diversity", "triplet"} and, with ``num_classes``,
    {"cmpc"}; ``encode_*`` give the concatenated ``[global, MGF1, MGF2]`` and no tokens."""

    batch_gathers = ("image levels + global + selected tokens",
                     "text levels + global + selected tokens", "person ids")
    config: CFineConfig

    def __init__(self, config: CFineConfig) -> None:
        # no projection after the encoders, so TwoTowerModel's constructor (which adds one) is
        # skipped; its tokenizer, config recording and encoder groups are inherited
        RetrievalModel.__init__(self, config)
        self.image_encoder = IMAGE_ENCODERS[config.image_encoder](config)
        self.text_encoder = TEXT_ENCODERS[config.text_encoder](config)
        assert isinstance(self.image_encoder, CLIPImageEncoder)
        assert isinstance(self.text_encoder, BertTextEncoder)
        self.image_size = self.image_encoder.image_size
        if config.image_normalization == "imagenet":
            self.image_mean, self.image_std = IMAGENET_MEAN, IMAGENET_STD
        else:
            self.image_mean = self.image_encoder.image_mean
            self.image_std = self.image_encoder.image_std
        width = self.image_encoder.backbone.vision_width
        if self.text_encoder.feature_dim != width:
            raise ModelError(f"CFine compares CLIP image tokens with BERT states unprojected: "
                             f"their widths must match, got {width} and "
                             f"{self.text_encoder.feature_dim}")
        heads = config.mgf_heads or max(1, width // 64)
        if width % heads:
            raise ModelError(f"mgf_heads {heads} does not divide the width {width}")
        height, grid_width = self.image_encoder.backbone.clip.visual.grid_size
        num_patches = int(height) * int(grid_width)
        self.image_k = int(float(config.image_k_ratio) * (num_patches + 1))
        self.text_k = int(float(config.text_k_ratio) * self.text_encoder.max_length)
        if not 1 <= self.image_k <= num_patches // 2:
            raise ModelError(f"image_k_ratio {config.image_k_ratio} gives K = {self.image_k} "
                             f"of {num_patches} patches; two groups of K must fit")
        if not 1 <= self.text_k <= (self.text_encoder.max_length - 1) // 2:
            raise ModelError(f"text_k_ratio {config.text_k_ratio} gives K = {self.text_k} of "
                             f"{self.text_encoder.max_length} word pieces; two groups of K "
                             "must fit")
        self.mgf = MultiGrainedBlock(width, heads)
        self.image_norm = _frozen_bias_batchnorm(width)
        self.text_norm = _frozen_bias_batchnorm(width)
        self.cmpc_classifier: nn.Parameter | None = None
        if config.num_classes is not None and config.cmpc_weight > 0:
            self.cmpc_classifier = nn.Parameter(torch.empty(width, config.num_classes))
            nn.init.xavier_uniform_(self.cmpc_classifier)

    # ------------------------------------------------------------------------- encoders
    def image_states(self, pixels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """CLS ``[B, D]``, patches ``[B, N, D]`` (both after ``ln_post``, unprojected) and the
        last block's CLS attention over the patches, heads averaged ``[B, N]``."""
        return self.image_encoder.backbone.image_tokens(pixels, project=False)

    def text_states(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """[CLS] state ``[B, D]``, the other positions' states ``[B, L-1, D]``, the last layer's
        [CLS] attention over them (heads averaged) and which are word pieces or [SEP] (not
        padding): the code ranks every position but [CLS], and padding scores 0."""
        pad_id = self.text_encoder.special_ids[0]
        attention_mask = tokens != pad_id
        out = self.text_encoder.bert(input_ids=tokens, attention_mask=attention_mask.long(),
                                     output_attentions=True)
        states = out.last_hidden_state
        with torch.no_grad():
            score = out.attentions[-1][:, :, 0, 1:].float().mean(dim=1)
        return states[:, 0], states[:, 1:], score, attention_mask[:, 1:]

    def _side(self, glob: Tensor, tokens: Tensor, score: Tensor, valid: Tensor, k: int,
              norm: nn.BatchNorm1d) -> CFineSide:
        order, selected_valid = top_ranked(score, valid, 2 * k)
        selected = _gather_tokens(tokens, order)
        keys = torch.cat([glob.unsqueeze(1), tokens], dim=1)
        always = valid.new_ones(len(valid), 1)
        key_valid = torch.cat([always, valid], dim=1)
        mgf = []
        for group in range(2):
            span = slice(group * k, (group + 1) * k)
            queries = torch.cat([glob.unsqueeze(1), selected[:, span]], dim=1)
            query_valid = torch.cat([always, selected_valid[:, span]], dim=1)
            mgf.append(self.mgf(queries, query_valid, keys, key_valid)[:, 0])
        # one BatchNorm call per level, as the code (each level its own batch statistics)
        levels = torch.stack([norm(level) for level in (glob, *mgf)], dim=1)
        return CFineSide(levels, glob, selected, selected_valid, k)

    def image_side(self, pixels: Tensor) -> CFineSide:
        glob, patches, score = self.image_states(pixels)
        valid = torch.ones(score.shape, dtype=torch.bool, device=score.device)
        return self._side(glob, patches, score, valid, self.image_k, self.image_norm)

    def text_side(self, tokens: Tensor) -> CFineSide:
        glob, states, score, valid = self.text_states(tokens)
        return self._side(glob, states, score, valid, self.text_k, self.text_norm)

    @staticmethod
    def _retrieval_features(side: CFineSide, cls: type) -> ImageFeatures | TextFeatures:
        pooled = side.levels.flatten(1)
        batch = len(pooled)
        return cls(pooled=pooled, tokens=pooled.new_zeros(batch, 0, pooled.shape[-1]),
                   mask=torch.zeros(batch, 0, dtype=torch.bool, device=pooled.device),
                   attention=pooled.new_zeros(batch, 0))

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        return self._retrieval_features(self.image_side(pixels),  # type: ignore[return-value]
                                        ImageFeatures)

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        return self._retrieval_features(self.text_side(tokens),  # type: ignore[return-value]
                                        TextFeatures)

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        """Cosine of the concatenated ``[global, MGF1, MGF2]`` (``utils/metric.py``)."""
        return F.normalize(text.pooled.float(), dim=-1) @ F.normalize(
            image.pooled.float(), dim=-1).t()

    # ------------------------------------------------------------------------- training
    def training_similarity(self, image: CFineSide, text: CFineSide) -> Tensor:
        """``[B_image, B_text]`` CFR + FCD, the score of the triplet loss (training only)."""
        config = self.config
        return (cross_grained_similarity(image, text, float(config.cfr_temperature))
                + fine_grained_similarity(image, text, float(config.fcd_temperature),
                                          int(config.fcd_top_k)))

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        config = self.config
        image = self.image_side(batch["images"])
        text = self.text_side(batch["tokens"])
        pids = batch["pids"]
        # CMPM and the triplet compare all pairs of the (global) batch; CMPC and the
        # diversity are per sample
        every_image, every_text, every_pid = gathered(image), gathered(text), gather(pids)
        losses = {"cmpm": sum(
            weight * cmpm_loss(every_image.levels[:, level], every_text.levels[:, level],
                               every_pid, match_norm=config.cmpm_match_norm)
            for level, weight in enumerate(config.cmpm_weights) if weight)}
        if self.cmpc_classifier is not None:
            losses["cmpc"] = config.cmpc_weight * sum(
                cmpc_loss(image.levels[:, level], text.levels[:, level], pids,
                          self.cmpc_classifier) for level in range(NUM_LEVELS))
        losses["diversity"] = config.diversity_weight * (
            mgf_diversity(image.levels[:, 1:]) + mgf_diversity(text.levels[:, 1:]))
        losses["triplet"] = config.triplet_weight * hard_triplet_loss(
            self.training_similarity(every_image, every_text), every_pid,
            float(config.triplet_margin))
        return losses  # type: ignore[return-value]
