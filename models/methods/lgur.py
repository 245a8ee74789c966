"""LGUR: granularity-unified representations (Shao et al., "Learning Granularity-Unified
Representations for Text-to-Image Person Re-identification", ACM MM 2022; public code
ZhiyinShao-H/LGUR), the MGCC paper's "LGUR (M) DeiT-BERT" row of Table 2.

Model: an image encoder (DeiT through timm, :class:`models.encoders.vit.ViTEncoder`) and a text
encoder (BERT), their token features projected to one ``embed_dim`` space, then two modules that
both modalities share:

* Dictionary-based Granularity Alignment (DGA): one learnable dictionary ``D`` (``[K, d]``, the
  code's 400 x 384) of "atoms" common to both modalities. Every token (image patch or word piece)
  is rebuilt from ``D`` by a one-layer transformer decoder whose queries are the tokens and whose
  keys/values are the atoms (the code's ``TXTDecoder_2``), so that patches and words are
  re-expressed in the same vocabulary of concepts; image tokens are then gated by a learned
  per-token sigmoid (the code's ``self.mask``), which lets background patches fade.
* Prototype-based Granularity Unification (PGU): ``num_parts`` learnable prototypes (the code's
  ``query_embed_image``, shared by image and text: ``share_query=True``) are the queries of a
  two-layer transformer decoder over a modality's tokens (text padding masked), giving
  ``num_parts`` part features per sample at one granularity whichever the modality; one linear
  head per part (the code's ``conv_1X1_2``, shared by the modalities) maps them to
  ``part_dim``.

PGU runs twice per sample, over the raw tokens and over the dictionary-rebuilt ones (the code's
``hs`` and ``hs_dict``). The retrieval feature is the concatenation of all ``2 x num_parts``
L2-normalised part features, scaled so that its cosine is the mean of the per-part cosines.

Losses (per part and branch, averaged): CMPM (:func:`models.losses.cmpm_loss`) as the
cross-modal matching loss, and with ``num_classes`` an identity loss through one classifier
per part, shared by the modalities and the two branches.

Choices where the sources differ (see ``docs/fidelity.md``): the public code's ranking loss is
replaced by CMPM (the library's tested cross-modal matching loss; the code's own file mixes
several variants); the code's training-only text-guided image fusion (image tokens attending to
their own caption before PGU) is left out, because at test time the code encodes images without
it and training on a branch the test never sees only changes which features the loss shapes; the
text encoder is plain BERT (the code stacks a Bi-LSTM over frozen BERT).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import drop_tokens
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses import cmpm_loss, identity_loss
from models.methods.two_tower import TwoTowerConfig, TwoTowerModel


@dataclass
class LGURConfig(TwoTowerConfig):
    """LGUR; see :class:`TwoTowerConfig` for the encoders.

    Attributes:
        dictionary_size: atoms ``K`` in the shared dictionary (code: 400).
        num_parts: shared prototypes, i.e. part features per sample (code: ``num_query`` 6).
        part_dim: width of each part feature after its head (code: ``feature_length`` 512).
        heads: attention heads of the DGA and PGU decoders (code: 6).
        pgu_layers: depth of the PGU decoder (code: 2); DGA has one layer as in the code.
        cmpm_weight, id_weight: the two losses' weights.
    """

    family: str = "lgur"
    image_encoder: str = "vit"
    text_encoder: str = "bert"
    backbone: str = "deit_small_distilled_patch16_224"
    embed_dim: int = 384
    dictionary_size: int = 400
    num_parts: int = 6
    part_dim: int = 512
    heads: int = 6
    pgu_layers: int = 2
    cmpm_weight: float = 1.0
    id_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("dictionary_size", "num_parts", "part_dim", "heads", "pgu_layers"):
            if int(getattr(self, name)) < 1:
                raise ModelError(f"{name} must be positive, got {getattr(self, name)}")
        if int(self.embed_dim) % int(self.heads):
            raise ModelError(f"embed_dim {self.embed_dim} is not divisible by heads {self.heads}")


def _decoder(dim: int, heads: int, layers: int) -> nn.TransformerDecoder:
    layer = nn.TransformerDecoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.0,
                                       batch_first=True)
    return nn.TransformerDecoder(layer, layers)


class LGUR(TwoTowerModel):
    """LGUR; ``forward`` returns {"cmpm"} and, with ``num_classes``, {"id"}."""

    config: LGURConfig

    def __init__(self, config: LGURConfig) -> None:
        super().__init__(config)
        dim = int(config.embed_dim)
        self.dictionary = nn.Parameter(torch.randn(int(config.dictionary_size), dim) * 0.02)
        self.dictionary_decoder = _decoder(dim, int(config.heads), 1)
        self.image_gate = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid())
        self.prototypes = nn.Parameter(torch.randn(int(config.num_parts), dim) * 0.02)
        self.part_decoder = _decoder(dim, int(config.heads), int(config.pgu_layers))
        self.part_heads = nn.ModuleList(nn.Linear(dim, int(config.part_dim))
                                        for _ in range(int(config.num_parts)))
        # one identity classifier per part (the code's id_loss_fun list), shared by the
        # modalities and by the raw and dictionary branches
        self.classifiers: nn.ModuleList | None = None
        if config.num_classes is not None and config.id_weight > 0:
            self.classifiers = nn.ModuleList(
                nn.Linear(int(config.part_dim), config.num_classes)
                for _ in range(int(config.num_parts)))

    def rebuild_from_dictionary(self, tokens: Tensor, padding: Tensor | None) -> Tensor:
        """DGA: every token re-expressed through the shared dictionary ``[B, N, d]``."""
        atoms = self.dictionary.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        return self.dictionary_decoder(tokens, atoms, tgt_key_padding_mask=padding)

    def unify(self, tokens: Tensor, padding: Tensor | None) -> Tensor:
        """PGU: the shared prototypes read ``tokens``; ``[B, P, part_dim]`` part features."""
        queries = self.prototypes.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        parts = self.part_decoder(queries, tokens, memory_key_padding_mask=padding)
        return torch.stack([head(parts[:, i]) for i, head in enumerate(self.part_heads)], 1)

    def _parts(self, tokens: Tensor, padding: Tensor | None, gate: bool) -> Tensor:
        """Both branches' parts ``[B, 2P, part_dim]``: over raw and over rebuilt tokens."""
        rebuilt = self.rebuild_from_dictionary(tokens, padding)
        if gate:
            rebuilt = rebuilt * self.image_gate(tokens)
        return torch.cat([self.unify(tokens, padding), self.unify(rebuilt, padding)], dim=1)

    def image_parts(self, pixels: Tensor) -> Tensor:
        return self._parts(self.project_images(pixels).tokens, None, gate=True)

    def text_parts(self, tokens: Tensor) -> Tensor:
        text = self.project_texts(tokens)
        return self._parts(text.tokens, ~text.mask, gate=False)

    @staticmethod
    def _flatten(parts: Tensor) -> Tensor:
        """Normalised parts side by side, over sqrt(#parts): cosine = mean part cosine."""
        return F.normalize(parts.float(), dim=-1).flatten(1) / parts.shape[1] ** 0.5

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        pooled = self._flatten(self.image_parts(pixels))
        empty = pooled.new_zeros(pooled.shape[0], 0, pooled.shape[1])
        features = ImageFeatures(pooled, empty, empty.new_zeros(pooled.shape[0], 0, dtype=bool),
                                 empty.new_zeros(pooled.shape[0], 0))
        return drop_tokens(features)  # type: ignore[return-value]

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        pooled = self._flatten(self.text_parts(tokens))
        empty = pooled.new_zeros(pooled.shape[0], 0, pooled.shape[1])
        features = TextFeatures(pooled, empty, empty.new_zeros(pooled.shape[0], 0, dtype=bool),
                                empty.new_zeros(pooled.shape[0], 0))
        return drop_tokens(features)  # type: ignore[return-value]

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        return F.normalize(text.pooled.float(), dim=-1) @ F.normalize(
            image.pooled.float(), dim=-1).t()

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        image = self.image_parts(batch["images"])
        text = self.text_parts(batch["tokens"])
        pids = batch["pids"]
        count = image.shape[1]
        matching = sum(cmpm_loss(image[:, i], text[:, i], pids) for i in range(count)) / count
        losses = {"cmpm": self.config.cmpm_weight * matching}
        if self.classifiers is not None:
            parts = len(self.classifiers)
            ids = sum(identity_loss(self.classifiers[i % parts](image[:, i]),
                                    self.classifiers[i % parts](text[:, i]), labels=pids)
                      for i in range(count)) / count
            losses["id"] = self.config.id_weight * ids
        return losses
