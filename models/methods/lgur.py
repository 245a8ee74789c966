"""LGUR: granularity-unified representations (Shao et al., "Learning Granularity-Unified
Representations for Text-to-Image Person Re-identification", ACM MM 2022, arXiv 2207.07802;
official code ``ZhiyinShao-H/LGUR``), the MGCC paper's "LGUR (M) DeiT-BERT" row of Table 2.

Built as the release trains and scores (``train_mydecoder_pixelvit_txtimg_3_bert.py``,
``model/DETR_model.py``, ``model/text_feature_extract.py``, ``vit_pytorch/vit_pytorch.py``,
``loss/RankingLoss.py``, ``loss/Id_loss.py``, ``test_during_train.py``; read to learn);
``docs/fidelity.md`` records where ours differs.

Encoders: a DeiT-Small (timm) whose *last block and final norm are dropped* (the code's
TransReID backbone with ``local_feature=True`` runs ``blocks[:-1]``), its 384-d patch tokens
used as they are; a *frozen* BERT (eval mode, no gradient) whose every word-piece state goes
through a trained bias-free Bi-LSTM (hidden 384 per direction, the two directions averaged), so
text tokens are 384-d too. No projection.

Both modalities share three modules built from one cross-attention layer (:class:`CrossLayer`,
the code's ``Transformer_mydecoder`` layer: one LayerNorm applied to the queries *and* the
memory, bias-free q / kv projections, an output projection, a residual, then a ReLU MLP with its
own pre-norm and residual):

* DGA (dictionary-based granularity alignment): every token queries a learnt dictionary
  ``D`` (``[K, 384]``, K = 400) through one such layer (6 heads of 64, MLP 768); image tokens are
  then gated by a per-token sigmoid of the raw token (``self.mask``).
* PGU (prototype-based granularity unification): ``num_parts`` learnt prototypes (shared by the
  modalities) query a modality's tokens through two layers (6 heads of 512, MLP 512; text
  padding masked), and one bias-free linear head per part (the code's 1x1 convs, shared by the
  modalities and branches) maps each to ``part_dim`` (512).

PGU runs over the raw tokens and over the DGA-rebuilt ones. During training only, the raw image
branch first lets each image token attend to its own caption through the DGA layer (the code's
``image_fusion``, gated the same way); at test time the raw branch is not used at all.

Retrieval (``test_part``): the cosine of the concatenated dictionary-branch parts (``[B, 6 x
512]``, unnormalised per part). Losses (all weight 1): per-part ID losses through one classifier
per part (shared by the modalities and both branches; image + text cross-entropies, averaged over
the parts), on each branch; and LGUR's semi-hard ranking loss (margin 0.3,
:func:`models.losses.semi_hard_ranking_loss_from_scores`) on four similarity matrices of the
concatenated parts: image raw vs text raw, image dict vs text dict, and the consistency terms
text raw vs text dict and image raw vs image dict.

Optimiser groups (:meth:`LGUR.parameter_groups`): the code's two learning rates, not an
encoder/new split: "encoder" = the DeiT, the dictionary, the decoders, the prototypes and the
gate (code: 1e-4); "new" = the Bi-LSTM, the part heads and the classifiers (code: 1e-3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import drop_tokens
from models.distributed import gather, shared_generator
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses import identity_loss, semi_hard_ranking_loss_from_scores
from models.methods.two_tower import TwoTowerConfig, TwoTowerModel


@dataclass
class LGURConfig(TwoTowerConfig):
    """LGUR; see :class:`TwoTowerConfig` for the encoders.

    ``embed_dim`` is the token width: the image encoder's width and the Bi-LSTM's hidden size
    (code: 384).

    Attributes:
        dictionary_size: atoms in the shared dictionary (code: 400).
        num_parts: shared prototypes = part features per sample (code: ``num_query`` 6).
        part_dim: width of each part feature after its head (code: ``feature_length`` 512).
        heads: attention heads of the DGA and PGU layers (code: 6).
        dga_head_dim, dga_mlp_dim: DGA's head width and MLP width (code: 64, 768).
        pgu_layers, pgu_head_dim, pgu_mlp_dim: PGU's depth, head width, MLP width (code: 2,
            512, 512).
        margin: the ranking loss margin (code: 0.3).
        ranking_weight, consistency_weight, id_weight: the loss weights (code: all 1).
    """

    family: str = "lgur"
    image_encoder: str = "vit"
    text_encoder: str = "bert"
    backbone: str = "deit_small_patch16_224"
    bert_max_length: int = 100
    embed_dim: int = 384
    dictionary_size: int = 400
    num_parts: int = 6
    part_dim: int = 512
    heads: int = 6
    dga_head_dim: int = 64
    dga_mlp_dim: int = 768
    pgu_layers: int = 2
    pgu_head_dim: int = 512
    pgu_mlp_dim: int = 512
    margin: float = 0.3
    ranking_weight: float = 1.0
    consistency_weight: float = 1.0
    id_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("dictionary_size", "num_parts", "part_dim", "heads", "dga_head_dim",
                     "dga_mlp_dim", "pgu_layers", "pgu_head_dim", "pgu_mlp_dim"):
            if int(getattr(self, name)) < 1:
                raise ModelError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("margin", "ranking_weight", "consistency_weight", "id_weight"):
            if float(getattr(self, name)) < 0:
                raise ModelError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.text_encoder != "bert":
            raise ModelError("LGUR's text side is a frozen BERT + Bi-LSTM: text_encoder must be "
                             f"'bert', got '{self.text_encoder}'")


class CrossLayer(nn.Module):
    """One cross-attention layer of LGUR's decoders: ``x + Attn(LN(x), LN(memory))``, then
    ``x + MLP(LN'(x))``; the first LayerNorm is shared by the queries and the memory."""

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_dim: int) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim = heads, head_dim
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, dim))

    def _split(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: Tensor, memory: Tensor, valid: Tensor | None = None) -> Tensor:
        """``x`` ``[B, N, d]`` queries ``memory`` ``[B, M, d]``; ``valid`` ``[B, M]`` masks it."""
        q = self._split(self.to_q(self.norm(x)))
        k, v = (self._split(t) for t in self.to_kv(self.norm(memory)).chunk(2, dim=-1))
        dots = q @ k.transpose(-1, -2) * self.head_dim ** -0.5
        if valid is not None:
            dots = dots.masked_fill(~valid[:, None, None, :], -torch.finfo(dots.dtype).max)
        out = (dots.softmax(dim=-1) @ v).transpose(1, 2).flatten(2)
        x = x + self.to_out(out)
        return x + self.mlp(self.mlp_norm(x))


class LGUR(TwoTowerModel):
    """LGUR; ``forward`` returns {"ranking", "consistency"} and, with ``num_classes``, "id"."""

    batch_gathers = ("image raw + dictionary parts", "text raw + dictionary parts",
                     "person ids")
    config: LGURConfig

    def __init__(self, config: LGURConfig) -> None:
        super().__init__(config)
        dim = int(config.embed_dim)
        if self.image_encoder.feature_dim != dim:
            raise ModelError(f"LGUR has no projection: embed_dim ({dim}) must equal the image "
                             f"encoder width ({self.image_encoder.feature_dim})")
        net = self.image_encoder.net
        if len(net.blocks) < 2:
            raise ModelError("LGUR drops the image encoder's last block: it needs at least 2")
        net.blocks = net.blocks[:-1]  # the code reads the tokens before the last block
        net.norm = nn.Identity()      # ... and without the final norm
        self.image_projection = nn.Identity()
        self.text_projection = nn.Identity()
        bert = self.text_encoder.bert
        for param in bert.parameters():
            param.requires_grad_(False)
        self.lstm = nn.LSTM(self.text_encoder.feature_dim, dim, bidirectional=True, bias=False,
                            batch_first=True)
        heads, parts = int(config.heads), int(config.num_parts)
        self.dictionary = nn.Parameter(torch.randn(1, int(config.dictionary_size), dim))
        self.dga = CrossLayer(dim, heads, int(config.dga_head_dim), int(config.dga_mlp_dim))
        self.image_gate = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid())
        self.prototypes = nn.Parameter(torch.randn(1, parts, dim))
        self.pgu = nn.ModuleList(
            CrossLayer(dim, heads, int(config.pgu_head_dim), int(config.pgu_mlp_dim))
            for _ in range(int(config.pgu_layers)))
        self.part_heads = nn.ModuleList(nn.Linear(dim, int(config.part_dim), bias=False)
                                        for _ in range(parts))
        for head in self.part_heads:
            nn.init.kaiming_normal_(head.weight, mode="fan_out", nonlinearity="relu")
        self.classifiers: nn.ModuleList | None = None
        if config.num_classes is not None and config.id_weight > 0:
            self.classifiers = nn.ModuleList(nn.Linear(int(config.part_dim), config.num_classes)
                                             for _ in range(parts))
            for classifier in self.classifiers:
                nn.init.normal_(classifier.weight, std=0.001)
                nn.init.zeros_(classifier.bias)

    def train(self, mode: bool = True) -> LGUR:
        """Train mode everywhere but the frozen BERT, which stays in eval mode (the code)."""
        super().train(mode)
        self.text_encoder.eval()
        return self

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The code's two learning rates: "encoder" (1e-4): the DeiT, the dictionary, the DGA
        and PGU layers, the prototypes and the gate; "new" (1e-3): the Bi-LSTM, the part heads
        and the classifiers."""
        fast_modules: list[nn.Module] = [self.lstm, self.part_heads]
        if self.classifiers is not None:
            fast_modules.append(self.classifiers)
        fast_ids = {id(p) for m in fast_modules for p in m.parameters()}
        trainable = [p for p in self.parameters() if p.requires_grad]
        return {"encoder": [p for p in trainable if id(p) not in fast_ids],
                "new": [p for p in trainable if id(p) in fast_ids]}

    def image_tokens(self, pixels: Tensor) -> Tensor:
        """The DeiT's patch tokens before its last block ``[B, P, d]``."""
        return self.image_encoder(pixels).tokens

    def text_tokens(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Bi-LSTM states (directions averaged) over the frozen BERT's word pieces ``[B, L, d]``
        ([CLS] and [SEP] included, zero on padding) and the non-padding mask ``[B, L]``."""
        valid = tokens != self.text_encoder.special_ids[0]
        with torch.no_grad():
            raw = self.text_encoder(tokens)
            states = torch.cat([raw.pooled.unsqueeze(1), raw.tokens], dim=1)
        lengths = valid.sum(dim=1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(states, lengths, batch_first=True,
                                                   enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                  total_length=tokens.shape[1])
        forward_half, backward_half = out.chunk(2, dim=-1)
        return (forward_half + backward_half) / 2, valid

    def rebuild_from_dictionary(self, tokens: Tensor) -> Tensor:
        """DGA: every token re-expressed through the shared dictionary ``[B, N, d]``."""
        return self.dga(tokens, self.dictionary.expand(tokens.shape[0], -1, -1))

    def unify(self, tokens: Tensor, valid: Tensor | None = None) -> Tensor:
        """PGU: the shared prototypes read ``tokens``; ``[B, P, part_dim]`` part features."""
        x = self.prototypes.expand(tokens.shape[0], -1, -1)
        for layer in self.pgu:
            x = layer(x, tokens, valid)
        return torch.stack([head(x[:, i]) for i, head in enumerate(self.part_heads)], dim=1)

    def image_dictionary_parts(self, image: Tensor) -> Tensor:
        """The dictionary branch's image parts ``[B, P, part_dim]`` (gated rebuilt tokens)."""
        return self.unify(self.rebuild_from_dictionary(image) * self.image_gate(image))

    def text_dictionary_parts(self, text: Tensor, valid: Tensor) -> Tensor:
        """The dictionary branch's text parts ``[B, P, part_dim]``."""
        return self.unify(self.rebuild_from_dictionary(text), valid)

    @staticmethod
    def _global(cls: type, parts: Tensor) -> ImageFeatures | TextFeatures:
        """One feature per sample: the parts side by side; no tokens."""
        pooled = parts.flatten(1)
        empty = pooled.new_zeros(pooled.shape[0], 0, pooled.shape[1])
        features = cls(pooled, empty, empty.new_zeros(pooled.shape[0], 0, dtype=torch.bool),
                       empty.new_zeros(pooled.shape[0], 0))
        return drop_tokens(features)

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        """The dictionary branch's parts side by side (the test's only image feature)."""
        parts = self.image_dictionary_parts(self.image_tokens(pixels))
        return self._global(ImageFeatures, parts)  # type: ignore[return-value]

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        parts = self.text_dictionary_parts(*self.text_tokens(tokens))
        return self._global(TextFeatures, parts)  # type: ignore[return-value]

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        return F.normalize(text.pooled.float(), dim=-1) @ F.normalize(
            image.pooled.float(), dim=-1).t()

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        image = self.image_tokens(batch["images"])
        text, valid = self.text_tokens(batch["tokens"])
        pids = batch["pids"]
        gate = self.image_gate(image)
        # training only: the raw image branch reads its tokens after they attend to the caption
        image_raw = self.unify(self.dga(image, text, valid) * gate)
        image_dict = self.unify(self.rebuild_from_dictionary(image) * gate)
        text_raw = self.unify(text, valid)
        text_dict = self.text_dictionary_parts(text, valid)

        def cosine(a: Tensor, b: Tensor) -> Tensor:
            return F.normalize(a.flatten(1).float(), dim=-1) @ F.normalize(
                b.flatten(1).float(), dim=-1).t()

        # the rankings compare all pairs of the (global) batch, their semi-hard picks drawn
        # from one generator state on every process; the ID loss is per sample
        every_pid, generator = gather(pids), shared_generator("cpu")
        every = {"image_raw": gather(image_raw), "image_dict": gather(image_dict),
                 "text_raw": gather(text_raw), "text_dict": gather(text_dict)}

        def ranking(a: str, b: str) -> Tensor:
            return semi_hard_ranking_loss_from_scores(cosine(every[a], every[b]), every_pid,
                                                      self.config.margin, generator)

        config = self.config
        losses = {"ranking": config.ranking_weight * (ranking("image_raw", "text_raw")
                                                      + ranking("image_dict", "text_dict"))}
        losses["consistency"] = config.consistency_weight * (
            ranking("text_raw", "text_dict") + ranking("image_raw", "image_dict"))
        if self.classifiers is not None:
            losses["id"] = config.id_weight * (self._identity(image_raw, text_raw, pids)
                                               + self._identity(image_dict, text_dict, pids))
        return losses

    def _identity(self, image: Tensor, text: Tensor, pids: Tensor) -> Tensor:
        """Mean over parts of (image + text) cross-entropy through part ``i``'s classifier."""
        assert self.classifiers is not None
        terms = [identity_loss(c(image[:, i]), labels=pids) + identity_loss(c(text[:, i]),
                                                                             labels=pids)
                 for i, c in enumerate(self.classifiers)]
        return torch.stack(terms).mean()
