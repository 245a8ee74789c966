"""RaSa: relation- and sensitivity-aware representation learning (Bai et al., IJCAI 2023), on
ALBEF. Written from the paper and its public code (Flame-Chasers/RaSa, MIT; read to learn).

Architecture (the code's ``models/model_person_search.py``): a ViT-B/16 (timm's
``VisionTransformer``, the release's key names), ALBEF's BERT (:mod:`models.encoders.albef`:
6 text layers, then 6 layers with cross-attention to the image tokens), linear projections of
both ``[CLS]`` states to a 256-d space, a learnable temperature, and three 2-way heads on the
fused ``[CLS]``: ``itm_head`` (matching), ``prd_head`` (positive relation detection) and
``mrtd_head`` (replaced-token detection, every position). Momentum copies of both encoders and
projections (``*_m``, no gradient, ``m <- 0.995 m + 0.005 q`` before every step) and queues
of 65,536 momentum features with their person ids.

Losses, weighted 0.5 / 1 / 1 / 0.5 / 0.5 as the code's ``weights`` (the returned values are
the weighted terms, so their sum is the code's total):

* ``cl``: ALBEF's momentum-distilled contrast in four directions (i2t, t2i, i2i, t2t) against
  the momentum features of the batch and the queues; targets ``alpha * softmax(momentum
  similarities) + (1 - alpha) * same-person distribution`` (``alpha`` 0.4).
* ``pitm`` (relation-aware, probabilistic ITM): the text side is the sample's own caption, or
  with probability ``weak_pos_probability`` (0.1) a caption of another image of the same
  person (a *weak* positive, ``batch["weak_tokens"]``; preset ``weak_caption: true``); every
  such pair counts as matching; one hard negative image per text and one hard negative text
  per image, drawn from the in-batch softmax with same-person entries zeroed.
* ``prd``: on the positive pairs' fused ``[CLS]``, was the caption replaced (weak) or not.
* ``mlm`` (sensitivity-aware): masked language modelling of the own caption given the image
  (15%; 80/10/10), distilled from the momentum model's predictions with weight ``alpha``.
* ``mrtd``: 30% of the own caption's pieces masked, the momentum MLM samples replacements,
  and every piece (``[CLS]`` and padding excepted) is classified replaced or not.

Retrieval (the code's ``evaluation``): cosine of the projected ``[CLS]`` features ranks the
gallery; each query's top ``rerank_k`` (128) are re-scored by the ITM head's positive logit
on the fused pair (:mod:`models.two_stage`).

Where we differ from the code (``docs/fidelity.md``): one augmented view feeds both the
online and the momentum image encoder (the code draws a second flip for the momentum one);
the weak positive is a caption of *another* image of the person (the code may draw the same
caption, then labels it unreplaced); ``alpha`` is 0 for the first epoch, then constant (the
code ramps it linearly over its first epoch's steps);
the MLM distillation term takes the log-softmax over the vocabulary (the code's
``F.log_softmax(..., dim=1)`` normalises over positions).

Several processes (DDP): the contrastive terms compare the global batch (features gathered,
:mod:`models.distributed`), and every process enqueues the global batch's momentum features,
as the code does (``concat_all_gather``); p-ITM draws its hard negatives from the process's own
share of the batch, as the code does (ALBEF's ``sim_i2t[:, :bs]``), so a run on W processes is
the code's run on W GPUs; MLM and the detection heads are per sample.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from models.base import ModelConfig, RetrievalModel
from models.distributed import gather, own_rows
from models.encoders.albef import (
    ALBEF_BERT_ARCHITECTURE,
    AlbefTextEncoder,
    tiny_albef_architecture,
)
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.two_stage import two_stage_similarity

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # RaSa's transforms.Normalize
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# ALBEF's ViT-B/16 and the tiny one (tests, the CPU demo)
VIT_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "ViT-B-16": {"embed_dim": 768, "depth": 12, "num_heads": 12, "patch_size": 16,
                 "mlp_ratio": 4.0, "image_size": (384, 384)},
    "tiny": {"embed_dim": 64, "depth": 2, "num_heads": 2, "patch_size": 16, "mlp_ratio": 2.0,
             "image_size": (64, 32)},
}


def build_albef_vit(backbone: str, image_size: tuple[int, int]) -> VisionTransformer:
    """ALBEF's ViT (qkv bias, LayerNorm eps 1e-6, no classifier) at ``image_size``."""
    if backbone not in VIT_ARCHITECTURES:
        raise ModelError(f"unknown backbone '{backbone}' for an ALBEF model; valid: "
                         f"{', '.join(VIT_ARCHITECTURES)}")
    arch = VIT_ARCHITECTURES[backbone]
    return VisionTransformer(
        img_size=image_size, patch_size=arch["patch_size"], embed_dim=arch["embed_dim"],
        depth=arch["depth"], num_heads=arch["num_heads"], mlp_ratio=arch["mlp_ratio"],
        qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), num_classes=0)


@dataclass
class RaSaConfig(ModelConfig):
    """RaSa (values of configs/PS_cuhk_pedes.yaml unless said otherwise).

    Attributes:
        backbone: "ViT-B-16" (ALBEF's) or "tiny".
        pretrained: ALBEF's pre-trained checkpoint file (``ALBEF.pth``) or None (random).
        bert: where the WordPiece vocabulary comes from: "tiny", a BERT folder or Hub name
            (``vocab.txt`` only; the weights are ALBEF's), None (from a checkpoint).
        bert_architecture: the ALBEF BERT's architecture; None picks the backbone's (recorded
            by ``finalize_config``).
        max_words: word pieces per caption, ``[CLS]``/``[SEP]`` included (50).
        embed_dim: joint space (256); temperature: initial learnable temperature (0.07).
        queue_size (65,536), momentum (0.995), alpha (0.4): ALBEF's momentum distillation.
        alpha_warmup: no distillation during the first epoch (the code's ``warm_up`` ramps
            alpha from 0 over its first epoch; the model does not see the step, see
            :meth:`RaSa.set_epoch`).
        mlm_probability (0.15), mrtd_mask_probability (0.3), weak_pos_probability (0.1).
        cl_weight, pitm_weight, mlm_weight, prd_weight, mrtd_weight: 0.5, 1, 1, 0.5, 0.5.
        rerank_k: candidates the ITM re-scores per query (``k_test`` 128); 0: cosine only.
        rerank_batch: pairs per cross-encoder pass at evaluation (memory only).
    """

    family: str = "rasa"
    backbone: str = "ViT-B-16"
    bert: str | None = "bert-base-uncased"
    bert_architecture: dict[str, Any] | None = None
    lowercase: bool = True
    max_words: int = 50
    embed_dim: int = 256
    temperature: float = 0.07
    queue_size: int = 65536
    momentum: float = 0.995
    alpha: float = 0.4
    alpha_warmup: bool = True
    mlm_probability: float = 0.15
    mrtd_mask_probability: float = 0.3
    weak_pos_probability: float = 0.1
    cl_weight: float = 0.5
    pitm_weight: float = 1.0
    mlm_weight: float = 1.0
    prd_weight: float = 0.5
    mrtd_weight: float = 0.5
    rerank_k: int = 128
    rerank_batch: int = 256
    # a rebuild from a run needs neither ALBEF's file nor a BERT vocabulary (the checkpoint
    # carries both)
    pretrained_fields: ClassVar[tuple[str, ...]] = ("pretrained", "bert")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("queue_size", "embed_dim", "max_words", "rerank_batch"):
            if int(getattr(self, name)) < 1:
                raise ModelError(f"{name} must be positive, got {getattr(self, name)}")
        if int(self.rerank_k) < 0:
            raise ModelError(f"rerank_k must be >= 0 (0: no re-ranking), got {self.rerank_k}")
        for name in ("momentum", "alpha", "mlm_probability", "mrtd_mask_probability",
                     "weak_pos_probability"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ModelError(f"{name} must be in [0, 1], got {getattr(self, name)}")


class AlbefRetrievalBase(RetrievalModel):
    """What RaSa and APTM share: features (projected, normalised ``[CLS]``; the unprojected
    token states for the cross encoder), two-stage similarity, the ITM second stage."""

    text_encoder: AlbefTextEncoder
    vision_proj: nn.Module
    text_proj: nn.Module
    itm_head: nn.Module

    image_mean = CLIP_MEAN
    image_std = CLIP_STD

    @property
    def rerank_k(self) -> int:
        return int(self.config.rerank_k)  # type: ignore[attr-defined]

    def tokenize(self, texts: list[str]) -> Tensor:
        return self.text_encoder.tokenize(texts)

    def image_states(self, pixels: Tensor) -> Tensor:
        """``[B, 1 + N, W]`` image tokens, the first one the global token."""
        raise NotImplementedError

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        states = self.image_states(pixels)
        pooled = F.normalize(self.vision_proj(states[:, 0]), dim=-1)
        batch, tokens = states.shape[:2]
        return ImageFeatures(pooled=pooled, tokens=states,
                             mask=torch.ones(batch, tokens, dtype=torch.bool,
                                             device=states.device),
                             attention=states.new_zeros(batch, tokens))

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        mask = tokens != self.text_encoder.special_ids["pad"]
        states = self.text_encoder.bert.text(tokens, mask.long())
        pooled = F.normalize(self.text_proj(states[:, 0]), dim=-1)
        return TextFeatures(pooled=pooled, tokens=states, mask=mask,
                            attention=states.new_zeros(mask.shape))

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        return text.pooled @ image.pooled.t()

    def first_stage_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        """Cosine of the projected ``[CLS]`` features (the contrastive space)."""
        return text.pooled.float() @ image.pooled.float().t()

    def itm_logits(self, text_states: Tensor, text_mask: Tensor, image_states: Tensor) -> Tensor:
        """The ITM head's two logits on fused pairs (row i: text i with image i)."""
        image_mask = torch.ones(image_states.shape[:2], dtype=torch.long,
                                device=image_states.device)
        fused = self.text_encoder.bert.fusion(text_states, text_mask.long(), image_states,
                                              image_mask)
        return self.itm_head(fused[:, 0])

    def second_stage_scores(self, text: TextFeatures, image: ImageFeatures, first: Tensor,
                            top: Tensor) -> Tensor:
        """ITM positive logit of each query with each of its candidates, computed
        ``rerank_batch`` pairs at a time."""
        num_q, k = top.shape
        flat_q = torch.arange(num_q, device=top.device).repeat_interleave(k)
        flat_g = top.reshape(-1)
        out = torch.empty(num_q * k, dtype=torch.float32, device=top.device)
        step = int(self.config.rerank_batch)  # type: ignore[attr-defined]
        for start in range(0, len(flat_q), step):
            q, g = flat_q[start:start + step], flat_g[start:start + step]
            logits = self.itm_logits(text.tokens[q], text.mask[q], image.tokens[g])
            out[start:start + step] = logits[:, 1].float()
        return out.view(num_q, k)

    def similarity(self, text_feats: TextFeatures, image_feats: ImageFeatures,
                   chunk: int | tuple[int, int] | None = None) -> Tensor:
        """Two stages over the images given (the evaluator passes the whole gallery); the
        first stage is one matrix product, so ``chunk`` has nothing to bound."""
        return two_stage_similarity(self, text_feats, image_feats)


class RaSa(AlbefRetrievalBase):
    """RaSa on ALBEF; see the module docstring."""

    batch_gathers = ("image/text CLS features", "momentum features (enqueued by every "
                     "process)", "person ids")
    config: RaSaConfig

    def __init__(self, config: RaSaConfig) -> None:
        super().__init__(config)
        if config.pretrained:  # before anything is built or fetched: the file users must get
            from models.albef_weights import require_albef_file

            require_albef_file(config.pretrained)
        if config.backbone not in VIT_ARCHITECTURES:
            raise ModelError(f"unknown backbone '{config.backbone}' for rasa; valid: "
                             f"{', '.join(VIT_ARCHITECTURES)}")
        self.image_size = tuple(config.image_size or
                                VIT_ARCHITECTURES[config.backbone]["image_size"])
        self.visual_encoder = build_albef_vit(config.backbone, self.image_size)
        width = self.visual_encoder.embed_dim
        arch = config.bert_architecture or (
            tiny_albef_architecture(width) if config.backbone == "tiny"
            else {**ALBEF_BERT_ARCHITECTURE, "encoder_width": width})
        self.text_encoder = AlbefTextEncoder(arch, config.bert, config.max_words,
                                             config.lowercase)
        text_width = int(arch["hidden_size"])
        self.vision_proj = nn.Linear(width, config.embed_dim)
        self.text_proj = nn.Linear(text_width, config.embed_dim)
        self.temp = nn.Parameter(torch.tensor(float(config.temperature)))
        self.itm_head = nn.Linear(text_width, 2)
        self.prd_head = nn.Linear(text_width, 2)
        self.mrtd_head = nn.Linear(text_width, 2)
        self.visual_encoder_m = copy.deepcopy(self.visual_encoder)
        self.vision_proj_m = copy.deepcopy(self.vision_proj)
        self.text_encoder_m = copy.deepcopy(self.text_encoder)
        self.text_proj_m = copy.deepcopy(self.text_proj)
        for module in self._momentum_pairs():
            module[1].requires_grad_(False)
        dim, size = config.embed_dim, config.queue_size
        self.register_buffer("image_queue", F.normalize(torch.randn(dim, size), dim=0))
        self.register_buffer("text_queue", F.normalize(torch.randn(dim, size), dim=0))
        self.register_buffer("idx_queue", torch.full((1, size), -100, dtype=torch.long))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
        if config.pretrained:
            from models.albef_weights import load_albef_pretrained

            load_albef_pretrained(self, config.pretrained)
            self.copy_momentum()

    # ------------------------------------------------------------------ bookkeeping
    def finalize_config(self, config: ModelConfig) -> None:
        assert isinstance(config, RaSaConfig)
        config.bert_architecture = dict(self.text_encoder.architecture)
        config.lowercase = self.text_encoder.lowercase
        config.image_size = tuple(self.image_size)  # type: ignore[assignment]

    def _momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.visual_encoder, self.visual_encoder_m),
                (self.vision_proj, self.vision_proj_m),
                (self.text_encoder, self.text_encoder_m), (self.text_proj, self.text_proj_m)]

    @torch.no_grad()
    def copy_momentum(self) -> None:
        """Momentum copies start equal to the online modules (the code's ``copy_params``)."""
        for online, momentum in self._momentum_pairs():
            for p, p_m in zip(online.parameters(), momentum.parameters(), strict=True):
                p_m.copy_(p)

    @torch.no_grad()
    def _momentum_update(self) -> None:
        m = float(self.config.momentum)
        for online, momentum in self._momentum_pairs():
            for p, p_m in zip(online.parameters(), momentum.parameters(), strict=True):
                p_m.mul_(m).add_(p.detach(), alpha=1.0 - m)

    def encoder_modules(self) -> Iterable[nn.Module]:
        """Everything but the two RaSa heads (the code gives only ``prd``/``mrtd`` the
        higher ``lr_custm``)."""
        return (self.visual_encoder, self.text_encoder, self.vision_proj, self.text_proj,
                self.itm_head)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        groups = super().parameter_groups()
        groups["encoder"].append(self.temp)
        groups["new"] = [p for p in groups["new"] if p is not self.temp]
        return groups

    def image_states(self, pixels: Tensor) -> Tensor:
        return self.visual_encoder.forward_features(pixels)

    def set_epoch(self, epoch: int) -> None:
        """The trainer's epoch hook (1-based): distillation starts after the first epoch when
        ``alpha_warmup`` (the momentum model is as untrained as the online one before)."""
        self.epoch = int(epoch)

    @property
    def current_alpha(self) -> float:
        """``alpha`` of the momentum distillation at this epoch."""
        if self.config.alpha_warmup and getattr(self, "epoch", 1) <= 1:
            return 0.0
        return float(self.config.alpha)

    @torch.no_grad()
    def _enqueue(self, image_feat: Tensor, text_feat: Tensor, idx: Tensor) -> None:
        size, n = self.image_queue.shape[1], image_feat.shape[0]
        ptr = int(self.queue_ptr)
        positions = (ptr + torch.arange(n, device=idx.device)) % size
        self.image_queue[:, positions] = image_feat.t()
        self.text_queue[:, positions] = text_feat.t()
        self.idx_queue[:, positions] = idx.view(1, -1)
        self.queue_ptr[0] = (ptr + n) % size

    # ------------------------------------------------------------------ masking
    def _mask(self, ids: Tensor, probability: float, targets: Tensor | None = None) -> Tensor:
        """The code's ``mask``: pick ``probability`` of the pieces ([PAD]/[CLS] never); 80%
        become [MASK], half of the rest a random piece, the rest stay. ``targets`` (if given)
        are set to -100 where nothing was picked."""
        special = self.text_encoder.special_ids
        picked = torch.bernoulli(torch.full(ids.shape, probability, device=ids.device)).bool()
        picked &= (ids != special["pad"]) & (ids != special["cls"])
        if targets is not None:
            targets[~picked] = -100
        replaced = torch.bernoulli(torch.full(ids.shape, 0.8, device=ids.device)).bool() & picked
        ids = ids.clone()
        ids[replaced] = special["mask"]
        rand = torch.bernoulli(torch.full(ids.shape, 0.5, device=ids.device)).bool()
        rand &= picked & ~replaced
        words = torch.randint(int(self.text_encoder.architecture["vocab_size"]), ids.shape,
                              device=ids.device)
        ids[rand] = words[rand]
        return ids

    @staticmethod
    def _negatives(weights: Tensor) -> Tensor:
        """One index per row drawn from ``weights``; a row with no admissible entry (every
        sample of its person) draws uniformly among the other rows."""
        weights = weights.clone()
        empty = weights.sum(dim=1) <= 0
        if empty.any():
            fallback = 1.0 - torch.eye(len(weights), device=weights.device)
            weights[empty] = fallback[empty] if len(weights) > 1 else 1.0
        return torch.multinomial(weights, 1).flatten()

    # ------------------------------------------------------------------ training
    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        cfg = self.config
        alpha = self.current_alpha
        images, own, pids = batch["images"], batch["tokens"], batch["pids"].view(-1, 1)
        pad, bs = self.text_encoder.special_ids["pad"], images.shape[0]
        replace = torch.zeros(bs, dtype=torch.long, device=images.device)
        text2 = own
        weak = batch.get("weak_tokens")
        if weak is not None and cfg.weak_pos_probability > 0:
            length = max(own.shape[1], weak.shape[1])
            own_p = F.pad(own, (0, length - own.shape[1]), value=pad)
            weak_p = F.pad(weak.to(own.device), (0, length - weak.shape[1]), value=pad)
            replace = (torch.rand(bs, device=images.device) < cfg.weak_pos_probability).long()
            text2 = torch.where(replace.bool()[:, None], weak_p, own_p)
        mask2 = (text2 != pad).long()
        mask1 = (own != pad).long()

        image_embeds = self.image_states(images)
        image_atts = torch.ones(image_embeds.shape[:2], dtype=torch.long, device=images.device)
        image_feat = F.normalize(self.vision_proj(image_embeds[:, 0]), dim=-1)
        text_embeds = self.text_encoder.bert.text(text2, mask2)
        text_feat = F.normalize(self.text_proj(text_embeds[:, 0]), dim=-1)

        # contrast against the momentum features and the queues: over the (global) batch,
        # gathered; every process enqueues the global batch's momentum features. p-ITM draws
        # its hard negatives from this process's own share, as the release does under DDP
        mine = own_rows(bs, images.device)
        image_feat, text_feat, pids = gather(image_feat), gather(text_feat), gather(pids)
        idx_all = torch.cat([pids.t(), self.idx_queue.clone()], dim=1)
        pos = (pids == idx_all).float()
        sim_targets = pos / pos.sum(dim=1, keepdim=True)
        with torch.no_grad():
            if self.training:
                self._momentum_update()
            image_embeds_m = self.visual_encoder_m.forward_features(images)
            image_feat_m = gather(F.normalize(self.vision_proj_m(image_embeds_m[:, 0]), dim=-1))
            image_all = torch.cat([image_feat_m.t(), self.image_queue.clone()], dim=1)
            text_m = self.text_encoder_m.bert.text(text2, mask2)
            text_feat_m = gather(F.normalize(self.text_proj_m(text_m[:, 0]), dim=-1))
            text_all = torch.cat([text_feat_m.t(), self.text_queue.clone()], dim=1)
            targets = [alpha * F.softmax(m @ other / self.temp, dim=1)
                       + (1 - alpha) * sim_targets
                       for m, other in ((image_feat_m, text_all), (text_feat_m, image_all),
                                        (image_feat_m, image_all), (text_feat_m, text_all))]
        sims = [image_feat @ text_all / self.temp, text_feat @ image_all / self.temp,
                image_feat @ image_all / self.temp, text_feat @ text_all / self.temp]
        loss_cl = sum(-(F.log_softmax(s, dim=1) * t).sum(dim=1).mean()
                      for s, t in zip(sims, targets, strict=True)) / 4
        if self.training:
            self._enqueue(image_feat_m, text_feat_m, pids)

        # relation-aware: p-ITM with hard negatives, positive relation detection
        output_pos = self.text_encoder.bert.fusion(text_embeds, mask2, image_embeds, image_atts)
        with torch.no_grad():
            same = (pids == pids.t())[mine, mine]
            weights_i2t = F.softmax(sims[0][mine, mine].float(), dim=1).masked_fill(same, 0)
            weights_t2i = F.softmax(sims[1][mine, mine].float(), dim=1).masked_fill(same, 0)
            image_neg = self._negatives(weights_t2i)
            text_neg = self._negatives(weights_i2t)
        text_all_states = torch.cat([text_embeds, text_embeds[text_neg]], dim=0)
        text_all_mask = torch.cat([mask2, mask2[text_neg]], dim=0)
        image_all_states = torch.cat([image_embeds[image_neg], image_embeds], dim=0)
        output_neg = self.text_encoder.bert.fusion(
            text_all_states, text_all_mask, image_all_states,
            torch.cat([image_atts, image_atts], dim=0))
        vl = self.itm_head(torch.cat([output_pos[:, 0], output_neg[:, 0]], dim=0))
        itm_labels = torch.cat([torch.ones(bs, dtype=torch.long),
                                torch.zeros(2 * bs, dtype=torch.long)]).to(images.device)
        loss_pitm = F.cross_entropy(vl, itm_labels)
        loss_prd = F.cross_entropy(self.prd_head(output_pos[:, 0]), replace)

        # sensitivity-aware: MLM distilled from the momentum model, replaced-token detection
        labels = own.clone()
        masked = self._mask(own, cfg.mlm_probability, targets=labels)
        with torch.no_grad():
            soft = F.softmax(self.text_encoder_m.mlm_logits(self.text_encoder_m.bert.multimodal(
                masked, mask1, image_embeds_m, image_atts)), dim=-1)
        logits = self.text_encoder.mlm_logits(
            self.text_encoder.bert.multimodal(masked, mask1, image_embeds, image_atts))
        picked = labels != -100
        if picked.any():
            ce = F.cross_entropy(logits[picked], labels[picked])
            distill = -(F.log_softmax(logits[picked], dim=-1) * soft[picked]).sum(-1).mean()
            loss_mlm = (1 - alpha) * ce + alpha * distill
        else:
            loss_mlm = logits.sum() * 0.0
        with torch.no_grad():
            generator_in = self._mask(own, cfg.mrtd_mask_probability)
            gen_logits = self.text_encoder_m.mlm_logits(self.text_encoder_m.bert.multimodal(
                generator_in, mask1, image_embeds_m, image_atts))
            probs = F.softmax(gen_logits.float(), dim=-1).view(-1, gen_logits.shape[-1])
            pred = torch.multinomial(probs, 1).view(bs, -1)
            pred[:, 0] = self.text_encoder.special_ids["cls"]
            mrtd_ids = pred * mask1
            mrtd_labels = (pred != own).long() * mask1
            mrtd_labels[mrtd_ids == pad] = -100
            mrtd_labels[mrtd_ids == self.text_encoder.special_ids["cls"]] = -100
        states = self.text_encoder.bert.multimodal(mrtd_ids, mask1, image_embeds, image_atts)
        mrtd_logits = self.mrtd_head(states).view(-1, 2)
        if (mrtd_labels != -100).any():
            loss_mrtd = F.cross_entropy(mrtd_logits, mrtd_labels.view(-1), ignore_index=-100)
        else:
            loss_mrtd = mrtd_logits.sum() * 0.0

        return {"cl": cfg.cl_weight * loss_cl, "pitm": cfg.pitm_weight * loss_pitm,
                "mlm": cfg.mlm_weight * loss_mlm, "prd": cfg.prd_weight * loss_prd,
                "mrtd": cfg.mrtd_weight * loss_mrtd}

