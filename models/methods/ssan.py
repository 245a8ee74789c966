"""SSAN: Semantically Self-Aligned Network (Ding et al., 2021, arXiv 2107.12666), Table 2's
"SSAN (S) RN50-LSTM" row. Written from the paper's description and its public code
(zifyloo/SSAN), read to learn, not copied.

Three feature levels per modality, all in one space shared by the two modalities (the same
layers project image and text):

* global: the max-pooled ResNet-50 map / the max over words of the Bi-LSTM states, through one
  shared linear layer (SSAN's ``conv_global``, a bias-free 1x1 convolution) to ``embed_dim``.
* parts (``num_parts`` = 6): image part ``k`` is the max-pooled ``k``-th horizontal stripe of the
  map (:func:`models.encoders.parts.stripe_pool`); the text has no stripes, so SSAN's word
  attention gives it parts: a sigmoid classifier scores every word for every part
  (``a[t, k] = sigmoid(w_k . h_t)``) and text part ``k`` is ``max_t a[t, k] * h_t``: the words
  that describe the legs feed the bottom part. Part ``k`` of both modalities then goes through
  the same part-specific linear layer (SSAN's ``conv_local[k]``), then LeakyReLU(0.25).
* part relations (SSAN's multi-view non-local network, :class:`PartRelations`): each part
  attends to the other parts (cosine attention, itself excluded) and adds what it gathers, so a
  part seen badly can borrow from related ones; ``relation_dim`` (512) per part.

Training loss: the compound ranking loss (:mod:`models.losses.compound_ranking`) and the ID loss
(one classifier per level and part, shared by the modalities), each as
``global + part_weight * (parts + relations)`` with ``part_weight`` 0.5 (SSAN's code). The weak
positive of the CR loss is, for each sample, a caption of *another image* of the same person,
drawn per sample (SSAN's ``same_id_index``): the batch's ``weak_tokens``, which ``bench run``
provides with the training option ``weak_caption`` (:mod:`benchmark.data.samplers`; SSAN's presets
set it). A sample whose person has one image gets its own caption back; it has no weak positive and
takes the strong term only (SSAN's release drops those persons from training). Without
``weak_tokens`` (a custom loop) the weak positive is another sample of the same person in the
batch, where there is one: in random batches of 64 from CUHK-PEDES that is about 0.5% of the
anchors, so the weak term is then almost always zero. The two terms are logged apart:
``ranking`` (strong) and ``ranking_weak`` (beta times the weak term). ``set_epoch`` (the
trainer's 1-based epoch) switches on the adaptive weak margin after ``adaptive_margin_epoch``
epochs (5): SSAN's ``epoch >= epoch_begin`` counts from 0, so its first 5 epochs use
``margin / 2``.

Text: SSAN's Bi-LSTM has no biases (``nn.LSTM(..., bias=False)``; ``lstm_bias``), and its
preprocessing deletes the words seen fewer than twice in training from the captions instead of
mapping them to an unknown word (``min_word_count`` 2; :meth:`SSAN.tokenize`).

Retrieval: ``cos(global) + cos(parts) + cos(relations)``, parts and relations each compared as
one concatenated vector (SSAN's evaluation, "similarity_all").

Features for the evaluator: ``pooled`` is the global feature; ``tokens`` holds one row per part,
``[B, num_parts, embed_dim + relation_dim]``: the part feature, then its relation feature.

Where we differ from the code (see docs/fidelity.md): the Bi-LSTM's two directions are
concatenated (``2 * hidden_dim``) instead of averaged over a 2048-unit LSTM, and one word
embedding feeds both the global and the part branches (SSAN learns two tables for one LSTM);
images are normalised with the ImageNet statistics of the weights instead of 0.5/0.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.distributed import gather, same_on_every_process
from models.encoders.parts import stripe_pool
from models.encoders.vocabulary import PAD_ID, UNKNOWN_ID
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses import identity_loss
from models.losses.compound_ranking import compound_ranking_terms
from models.methods.two_tower import TwoTowerConfig, TwoTowerModel

NEGATIVE_SLOPE = 0.25  # SSAN's LeakyReLU


@dataclass
class SSANConfig(TwoTowerConfig):
    """SSAN; see :class:`TwoTowerConfig` for the encoders.

    Attributes:
        num_parts: horizontal stripes / textual parts (SSAN: 6).
        relation_dim: width of each part-relation feature (SSAN: 512).
        margin: the CR loss margin alpha (0.2); beta: weight of its weak term (0.1).
        adaptive_margin_epoch: epochs before the adaptive weak margin starts (5).
        min_weak_margin: anchors whose adaptive weak margin is lower are dropped (0.16).
        part_weight: weight of the part and relation levels against the global one (0.5).
        id_weight: weight of the ID loss (1; 0 disables it).
        lstm_bias: the Bi-LSTM's biases (SSAN: none).
        min_word_count: words seen fewer times in training are deleted from captions (SSAN: 2).
    """

    family: str = "ssan"
    embed_dim: int = 1024
    word_dim: int = 512
    hidden_dim: int = 1024
    text_dropout: float = 0.3
    num_parts: int = 6
    relation_dim: int = 512
    margin: float = 0.2
    beta: float = 0.1
    adaptive_margin_epoch: int = 5
    min_weak_margin: float = 0.16
    part_weight: float = 0.5
    id_weight: float = 1.0
    lstm_bias: bool = False
    min_word_count: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("num_parts", "relation_dim"):
            if int(getattr(self, name)) < 1:
                raise ModelError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("margin", "beta", "part_weight", "id_weight", "min_weak_margin"):
            if float(getattr(self, name)) < 0:
                raise ModelError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.text_encoder != "bilstm":
            raise ModelError("ssan's word attention runs over Bi-LSTM states: text_encoder must "
                             f"be 'bilstm', got '{self.text_encoder}'")


class PartLinear(nn.Module):
    """``num_parts`` bias-free linear layers applied part by part: ``[B, K, in] -> [B, K, out]``
    (SSAN's per-part 1x1 convolutions, as one batched product)."""

    def __init__(self, num_parts: int, in_dim: int, out_dim: int, bias: bool = False,
                 std: float | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_parts, in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(num_parts, out_dim)) if bias else None
        for k in range(num_parts):  # kaiming fan-out (SSAN's conv init) or a small normal
            if std is None:
                nn.init.kaiming_normal_(self.weight.data[k].t(), mode="fan_out",
                                        nonlinearity="relu")
            else:
                nn.init.normal_(self.weight.data[k], std=std)

    def forward(self, x: Tensor) -> Tensor:
        out = torch.einsum("bki,kio->bko", x, self.weight)
        return out if self.bias is None else out + self.bias


class PartRelations(nn.Module):
    """SSAN's multi-view non-local network over ``K`` part features (shared by the modalities).

    Each part ``j`` gets a query ``q_j`` and a key ``k_j`` (part-specific linear + LeakyReLU, to
    ``dim / 2``, L2-normalised); part ``j`` gathers ``sum_i softmax_i(q_i . k_j) q_i`` over the
    other parts ``i != j``, lifts it back to ``dim`` (linear + BatchNorm + LeakyReLU), adds it to
    itself and is projected to ``out_dim``.
    """

    def __init__(self, num_parts: int, dim: int, out_dim: int) -> None:
        super().__init__()
        inner = max(1, dim // 2)
        self.num_parts = num_parts
        self.query = PartLinear(num_parts, dim, inner)
        self.key = PartLinear(num_parts, dim, inner)
        self.lift = PartLinear(num_parts, inner, dim)
        self.lift_norm = nn.BatchNorm1d(num_parts * dim)
        self.out = PartLinear(num_parts, dim, out_dim)

    def forward(self, parts: Tensor) -> Tensor:
        query = F.normalize(F.leaky_relu(self.query(parts), NEGATIVE_SLOPE), dim=-1, eps=1e-8)
        key = F.normalize(F.leaky_relu(self.key(parts), NEGATIVE_SLOPE), dim=-1, eps=1e-8)
        scores = query @ key.transpose(1, 2)  # [B, i, j]
        itself = torch.eye(self.num_parts, dtype=torch.bool, device=parts.device)
        weights = scores.masked_fill(itself, float("-inf")).softmax(dim=1)
        gathered = weights.transpose(1, 2) @ query  # [B, j, inner]
        lifted = self.lift(gathered)
        batch, num, dim = lifted.shape
        lifted = self.lift_norm(lifted.reshape(batch, num * dim)).reshape(batch, num, dim)
        return self.out(parts + F.leaky_relu(lifted, NEGATIVE_SLOPE))


def _masked_max(values: Tensor, mask: Tensor) -> Tensor:
    """Max over dim 1 of ``values [B, L, ...]`` where ``mask [B, L]``; zero for an empty row."""
    shape = mask.shape + (1,) * (values.ndim - 2)
    masked = values.masked_fill(~mask.reshape(shape), float("-inf")).amax(dim=1)
    return torch.where(torch.isinf(masked), torch.zeros_like(masked), masked)


def _same_rows(a: Tensor, b: Tensor) -> Tensor:
    """``[B]`` whether token rows are equal, padding to a common width first."""
    width = max(a.shape[1], b.shape[1])
    a = F.pad(a, (0, width - a.shape[1]), value=PAD_ID)
    return (a == F.pad(b, (0, width - b.shape[1]), value=PAD_ID)).all(dim=1)


def weak_partners(pids: Tensor) -> tuple[Tensor, Tensor]:
    """For each sample, a random other sample of the same person (``index``), and whether the
    batch has one (``found``); samples without one point at themselves."""
    same = (pids.unsqueeze(0) == pids.unsqueeze(1)) & ~torch.eye(
        len(pids), dtype=torch.bool, device=pids.device)
    found = same.any(dim=1)
    weights = torch.where(found.unsqueeze(1), same.float(),
                          torch.eye(len(pids), device=pids.device))
    # one draw for the global batch, whatever each process's random state
    return same_on_every_process(torch.multinomial(weights, 1).squeeze(1)), found


class SSAN(TwoTowerModel):
    """SSAN; ``forward`` returns {"ranking", "ranking_weak", "id"} ("id" only with
    ``num_classes``)."""

    batch_gathers = ("image global/part/relation levels", "text levels (and weak captions)",
                     "person ids")
    config: SSANConfig

    def __init__(self, config: SSANConfig) -> None:
        super().__init__(config)
        # SSAN projects both modalities with the same layers, not one projection each
        del self.image_projection, self.text_projection
        width = int(self.image_encoder.feature_dim)
        if int(self.text_encoder.feature_dim) != width:
            raise ModelError(
                f"ssan shares its projections between the modalities: the Bi-LSTM's width "
                f"2 * hidden_dim = {self.text_encoder.feature_dim} must equal the image "
                f"encoder's {width} (set hidden_dim={width // 2})")
        if not config.lstm_bias:  # SSAN's nn.LSTM(..., bias=False), same shape otherwise
            lstm = self.text_encoder.lstm
            self.text_encoder.lstm = nn.LSTM(lstm.input_size, lstm.hidden_size,
                                             num_layers=lstm.num_layers, batch_first=True,
                                             bidirectional=True, bias=False)
        dim, parts = int(config.embed_dim), int(config.num_parts)
        self.global_projection = nn.Linear(width, dim, bias=False)
        nn.init.kaiming_normal_(self.global_projection.weight, mode="fan_out",
                                nonlinearity="relu")
        self.part_projection = PartLinear(parts, width, dim)
        self.word_part_classifier = nn.Linear(width, parts, bias=False)
        self.relations = PartRelations(parts, dim, int(config.relation_dim))
        self.epoch = 0
        self.classifiers: nn.ModuleDict | None = None
        if config.num_classes is not None and config.id_weight > 0:
            classes = config.num_classes
            self.classifiers = nn.ModuleDict({
                "global": PartLinear(1, dim, classes, bias=True, std=0.001),
                "parts": PartLinear(parts, dim, classes, bias=True, std=0.001),
                "relations": PartLinear(parts, int(config.relation_dim), classes, bias=True,
                                        std=0.001)})

    def set_epoch(self, epoch: int) -> None:
        """The trainer's epoch hook, 1-based (docs/models.md): the adaptive weak margin starts
        once ``adaptive_margin_epoch`` epochs are done."""
        self.epoch = int(epoch)

    def tokenize(self, texts: list[str]) -> Tensor:
        """Word ids with the unknown words deleted (SSAN's preprocessing filters them out of the
        caption), the remaining words moved up and padded."""
        ids = super().tokenize(texts)
        known = ids != UNKNOWN_ID
        order = torch.sort((~known).to(torch.uint8), dim=1, stable=True).indices
        kept = ids.gather(1, order).masked_fill(~known.gather(1, order), PAD_ID)
        width = max(1, int(known.sum(dim=1).max())) if len(texts) else ids.shape[1]
        return kept[:, :width]

    # ------------------------------------------------------------------ the three levels
    def _levels(self, pooled: Tensor, parts: Tensor) -> dict[str, Tensor]:
        part_features = F.leaky_relu(self.part_projection(parts), NEGATIVE_SLOPE)
        return {"global": self.global_projection(pooled), "parts": part_features,
                "relations": self.relations(part_features)}

    def image_levels(self, pixels: Tensor) -> dict[str, Tensor]:
        """{"global": [B, D], "parts": [B, K, D], "relations": [B, K, R]} of images."""
        fmap = self.image_encoder.feature_map(pixels)
        return self._levels(fmap.amax(dim=(2, 3)), stripe_pool(fmap, self.config.num_parts))

    def text_levels(self, tokens: Tensor) -> dict[str, Tensor]:
        """The same levels of captions, parts by word attention (module docstring)."""
        raw = self.text_encoder(tokens)
        words, mask = raw.tokens, raw.mask  # [B, L, C], [B, L]
        scores = torch.sigmoid(self.word_part_classifier(words))  # [B, L, K]
        parts = _masked_max(words.unsqueeze(2) * scores.unsqueeze(-1), mask)  # [B, K, C]
        return self._levels(_masked_max(words, mask), parts)

    @staticmethod
    def _features(levels: dict[str, Tensor], cls: Any) -> Any:
        parts = torch.cat([levels["parts"], levels["relations"]], dim=-1)
        batch, num = parts.shape[:2]
        mask = torch.ones(batch, num, dtype=torch.bool, device=parts.device)
        return cls(pooled=levels["global"], tokens=parts, mask=mask,
                   attention=torch.full((batch, num), 1.0 / num, device=parts.device))

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        return self._features(self.image_levels(pixels), ImageFeatures)

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        return self._features(self.text_levels(tokens), TextFeatures)

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        """cos(global) + cos(parts) + cos(relations), parts concatenated (SSAN's evaluation)."""
        dim = int(self.config.embed_dim)

        def cos(a: Tensor, b: Tensor) -> Tensor:
            a = F.normalize(a.flatten(1).float(), dim=-1, eps=1e-8)
            return a @ F.normalize(b.flatten(1).float(), dim=-1, eps=1e-8).t()

        parts, relations = (slice(None, dim), slice(dim, None))
        return (cos(text.pooled, image.pooled)
                + cos(text.tokens[..., parts], image.tokens[..., parts])
                + cos(text.tokens[..., relations], image.tokens[..., relations]))

    # ------------------------------------------------------------------------- training
    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        config, pids = self.config, batch["pids"]
        image = self.image_levels(batch["images"])
        text = self.text_levels(batch["tokens"])
        # the ranking terms compare all pairs of the (global) batch: gathered, and a weak
        # partner is looked for in the global batch; the ID loss is per sample: local
        every_image = {level: gather(value) for level, value in image.items()}
        every_text = {level: gather(value) for level, value in text.items()}
        every_pid = gather(pids)
        weak_tokens = batch.get("weak_tokens")
        if weak_tokens is not None:  # per-sample weak captions (weak_caption)
            weak = {level: gather(value) for level, value in
                    self.text_levels(weak_tokens).items()}
            found = gather(~_same_rows(weak_tokens, batch["tokens"]))
        else:  # another sample of the same person in the batch, where there is one
            partner, found = weak_partners(every_pid)
            weak = {level: value[partner] for level, value in every_text.items()}
        adaptive = self.epoch > config.adaptive_margin_epoch
        terms = {level: compound_ranking_terms(
            every_image[level], every_text[level], weak[level], every_pid, found, config.margin,
            config.beta, adaptive, config.min_weak_margin) for level in image}
        losses = {name: terms["global"][k] + config.part_weight * (
            terms["parts"][k] + terms["relations"][k])
            for k, name in enumerate(("ranking", "ranking_weak"))}
        if self.classifiers is not None:
            ident = {}
            for level, classifier in self.classifiers.items():
                img, txt = image[level], text[level]
                if img.ndim == 2:
                    img, txt = img.unsqueeze(1), txt.unsqueeze(1)
                img_logits, txt_logits = classifier(img), classifier(txt)  # [B, K, C]
                # SSAN: (CE of image + CE of text) summed over parts, divided by the parts
                ident[level] = 2 * torch.stack([
                    identity_loss(img_logits[:, k], txt_logits[:, k], labels=pids)
                    for k in range(img.shape[1])]).mean()
            losses["id"] = config.id_weight * (ident["global"] + config.part_weight * (
                ident["parts"] + ident["relations"]))
        return losses
