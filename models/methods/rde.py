"""RDE (Qin et al., CVPR 2024): noisy-correspondence learning for text-to-image person re-id.

Two embedding branches on one CLIP, and a loss that trusts only the pairs both branches agree on.

* BGE, the basic global embedding: CLIP's projected CLS (image) and EOT (text) features.
* TSE, the token selection embedding: the tokens the global token attends to most in the last
  block (image: the top ``int(n_patches * ratio)`` patches; text: the top
  ``int((context_length - 2) * ratio)`` words, fewer for a shorter caption), each L2-normalised,
  passed through ``linear + MLP(Linear, BatchNorm, ReLU, Linear)`` and max-pooled into one
  ``tse_dim``-d vector. ``ratio`` is 0.3.
* TAL, the triplet alignment loss (:func:`models.losses.rde.tal_per_sample`) on each branch.
* Consensus division (CCD): each branch's per-pair TAL is split into clean and noisy by a
  two-component Gaussian mixture; pairs both branches call clean are trained on, pairs both call
  noisy are dropped, split votes are kept with probability 1/2.
* Retrieval: the mean of the two branches' cosines. :meth:`RDE.encode_images` returns the
  concatenation of the two L2-normalised features, whose cosine is exactly that mean, so the
  evaluator holds one vector per item.
* Text augmentation (RDE's ``--txt_aug``): each word token, with probability 0.2, becomes the
  mask token (60%), a random token (20%) or is deleted (20%).

Paper and code disagree, and what this module does:

* Division granularity. RDE's code fits the mixtures once per epoch on the losses of the whole
  training set (computed in an extra pass with sample indices). Our trainer gives a model one
  batch at a time without sample indices, so the division is fitted per batch on that batch's
  losses (same EM, same consensus rule, same "at least one pair is noisy" rule). Per-batch
  mixtures are noisier; with no injected noise (the TO-ReID setting) they drop a few of the
  hardest pairs per batch.
* TAL is summed over the kept pairs, as the released code does for TAL (the paper writes a mean).
* The unused modules of the release (the visual branch's extra ``linear``, each MLP's second
  BatchNorm) are not built; the importer drops them from released checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import ModelConfig
from models.distributed import gather
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses.rde import (
    consensus_division,
    cosine_scores,
    gmm_clean_probability,
    tal_per_sample,
)
from models.methods.clip_model import GlobalRetrievalModel
from models.methods.irra import MASK_TOKEN_ID, RANDOM_TOKEN_RANGE


@dataclass
class RDEConfig(ModelConfig):
    """RDE (defaults: the paper's and ``run_rde.sh``'s values).

    Attributes:
        select_ratio: fraction of tokens TSE keeps (0.3).
        tse_dim: TSE output size (1024).
        tau: TAL temperature (0.015).
        margin: TAL margin (0.1).
        consensus: fit the clean/noisy division; False trains on every pair (an ablation).
        text_aug_prob: probability that a word token is masked/replaced/deleted (0.2; 0 = off).
    """

    family: str = "rde"
    select_ratio: float = 0.3
    tse_dim: int = 1024
    tau: float = 0.015
    margin: float = 0.1
    consensus: bool = True
    text_aug_prob: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < float(self.select_ratio) <= 1.0:
            raise ModelError(f"select_ratio must be in (0, 1], got {self.select_ratio}")
        if not float(self.tau) > 0:
            raise ModelError(f"tau must be positive, got {self.tau}")
        if int(self.tse_dim) < 2:
            raise ModelError(f"tse_dim must be >= 2, got {self.tse_dim}")
        if not 0.0 <= float(self.text_aug_prob) < 1.0:
            raise ModelError(f"text_aug_prob must be in [0, 1), got {self.text_aug_prob}")


class BatchNormMLP(nn.Module):
    """``Linear -> BatchNorm -> ReLU -> Linear`` on every token (``[B, k, D]``)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(input_dim, hidden_dim),
                                     nn.Linear(hidden_dim, output_dim)])
        self.bns = nn.ModuleList([nn.BatchNorm1d(hidden_dim)])

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, _ = x.shape
        h = x.reshape(batch * tokens, -1)
        h = F.relu(self.bns[0](self.layers[0](h)))
        return self.layers[1](h).view(batch, tokens, -1)


class TokenSelectionEmbedding(nn.Module):
    """TSE of one modality: top-attended tokens -> normalise -> linear + MLP -> max-pool."""

    def __init__(self, input_dim: int, output_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_dim, output_dim)
        self.mlp = BatchNormMLP(input_dim, output_dim // 2, output_dim)

    def forward(self, tokens: Tensor, attention: Tensor, valid: Tensor, k: int) -> Tensor:
        """``tokens [B, n, D]``, their attention ``[B, n]`` and validity ``[B, n]`` ->
        ``[B, output_dim]`` from the ``k`` most attended valid tokens (fewer when a row has
        fewer valid tokens, at least one)."""
        k = max(1, min(k, tokens.shape[1]))
        score = attention.float().masked_fill(~valid, -1.0)
        top = score.topk(k, dim=1).indices  # [B, k], most attended first
        chosen = tokens.gather(1, top.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        keep = valid.gather(1, top)
        keep[:, 0] = True  # a caption without words still pools its best position
        x = F.normalize(chosen.float(), dim=-1)
        x = self.linear(x) + self.mlp(x)
        return x.masked_fill(~keep.unsqueeze(-1), float("-inf")).max(dim=1).values


def augment_caption_tokens(tokens: Tensor, prob: float = 0.2,
                           generator: torch.Generator | None = None) -> Tensor:
    """RDE's text augmentation: each word token, with probability ``prob``, becomes the mask
    token (60%), a random ordinary token (20%), or is deleted (20%, the rest shifts left)."""
    words = (tokens > 0) & (tokens < MASK_TOKEN_ID)
    draw = torch.rand(tokens.shape, generator=generator, device=tokens.device)
    kind = torch.rand(tokens.shape, generator=generator, device=tokens.device)
    chosen = words & (draw < prob)
    out = tokens.clone()
    out[chosen & (kind < 0.6)] = MASK_TOKEN_ID
    to_random = chosen & (kind >= 0.6) & (kind < 0.8)
    random_ids = torch.randint(*RANDOM_TOKEN_RANGE, tokens.shape, generator=generator,
                               device=tokens.device)
    out[to_random] = random_ids[to_random]
    delete = chosen & (kind >= 0.8)
    if delete.any():
        kept = []
        for row, drop in zip(out, delete, strict=True):
            survivors = row[~drop]
            kept.append(F.pad(survivors, (0, row.numel() - survivors.numel())))
        out = torch.stack(kept)
    return out


class RDE(GlobalRetrievalModel):
    """RDE; ``forward`` returns {"bge_tal", "tse_tal"} over the pairs the consensus keeps."""

    batch_gathers = ("image BGE + TSE", "text BGE + TSE", "person ids")

    config: RDEConfig

    def __init__(self, config: RDEConfig) -> None:
        super().__init__(config)
        # TAL has its own temperature; CLIP's learnable scale is unused, so it is frozen.
        self.backbone.clip.logit_scale.requires_grad_(False)
        width, tse_dim = self.backbone.embed_dim, int(config.tse_dim)
        self.visual_tse = TokenSelectionEmbedding(width, tse_dim)
        self.textual_tse = TokenSelectionEmbedding(width, tse_dim)

    @property
    def text_k(self) -> int:
        return int((self.context_length - 2) * self.config.select_ratio)

    def _image_branches(self, pixels: Tensor) -> tuple[Tensor, Tensor]:
        feats = self.backbone.encode_images(pixels)
        k = int(feats.tokens.shape[1] * self.config.select_ratio)
        return feats.pooled, self.visual_tse(feats.tokens, feats.attention, feats.mask, k)

    def _text_branches(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        feats = self.backbone.encode_texts(tokens)
        return feats.pooled, self.textual_tse(feats.tokens, feats.attention, feats.mask,
                                              self.text_k)

    @staticmethod
    def _joint(bge: Tensor, tse: Tensor) -> Tensor:
        return torch.cat([F.normalize(bge.float(), dim=-1), F.normalize(tse.float(), dim=-1)],
                         dim=-1)

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        joint = self._joint(*self._image_branches(pixels))
        return ImageFeatures(joint, *_no_tokens(joint))

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        joint = self._joint(*self._text_branches(tokens))
        return TextFeatures(joint, *_no_tokens(joint))

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        config = self.config
        tokens = batch["tokens"]
        if self.training and config.text_aug_prob > 0:
            tokens = augment_caption_tokens(tokens, config.text_aug_prob)
        image_bge, image_tse = self._image_branches(batch["images"])
        text_bge, text_tse = self._text_branches(tokens)
        # the global batch under DDP (models.distributed): the TAL negatives and the
        # consensus division's two-component mixtures see every pair, as in one process
        image_bge, image_tse = gather(image_bge), gather(image_tse)
        text_bge, text_tse = gather(text_bge), gather(text_tse)
        pids = gather(batch["pids"])
        bge = tal_per_sample(cosine_scores(text_bge, image_bge), pids, config.tau, config.margin)
        tse = tal_per_sample(cosine_scores(text_tse, image_tse), pids, config.tau, config.margin)
        keep = torch.ones_like(bge)
        if config.consensus and bge.numel() > 1:
            keep = consensus_division(_clean_votes(bge), _clean_votes(tse))
        return {"bge_tal": (keep * bge).sum(), "tse_tal": (keep * tse).sum()}


def _clean_votes(losses: Tensor) -> Tensor:
    """One branch's verdict: clean where the mixture posterior exceeds 0.5; when every pair
    looks clean, the lowest-probability 1% (at least one) is called noisy, as RDE does."""
    prob = gmm_clean_probability(losses)
    threshold = 0.5
    if bool((prob > threshold).all()):
        threshold = float(prob.sort().values[len(prob) // 100])
    return prob > threshold


def _no_tokens(joint: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Empty token, mask and attention tensors: retrieval uses the joint vector alone."""
    batch = len(joint)
    return (joint.new_zeros(batch, 0, joint.shape[1]),
            torch.zeros(batch, 0, dtype=torch.bool, device=joint.device),
            joint.new_zeros(batch, 0))
