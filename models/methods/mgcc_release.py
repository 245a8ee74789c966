"""MGCC as its public release builds it (``mgcc-release``), to compare paper and code.

The release (github.com/littlexinyi/MGCC, read to learn; nothing copied) differs from the
paper's equations (:mod:`models.methods.mgcc`) in its architecture:

* Learnable fusion matrices, identity-initialised. ``S_I-T = I W_g T^T`` (``D x D``); the
  softmax weights of every attention-based fusion are multiplied by a square matrix over the
  token slots before weighting (``m x m`` for words, ``n x n`` for patches; two of each in
  ``S_P-W``, one per level); the token-token similarity is ``(P W_l) W^T`` (``D x D``). At
  initialisation the model equals the paper's AF; training moves the matrices at the
  new-module learning rate.
* Fixed token counts, as the matrices need: ``n = round(rho_image * 49)`` patches and
  ``m = round(rho_text * 25)`` word slots (Python's round, half to even: 0.5 * 49 = 24.5 -> 24)
  instead of the paper model's ``ceil(rho * count)`` per sample. A caption with fewer words than
  ``m`` fills the remaining slots with zero vectors, and those slots take part in every fusion
  with cosine 0, as the release's zero padding does.
* The 25-word cap keeps the words the end-of-text token attends to most (sorted by that
  attention, highest first), not the first 25.
* Text/attention alignment: the release ranks word ``k`` (token position ``k``) by the EOT
  attention at position ``k`` but takes the embedding at position ``k + 1``: its word features
  are ``last_hidden_state[:, 1:]`` indexed again from 1. Selecting a word therefore keeps the
  *next* token's feature (the last word keeps the end-of-text feature). This module reproduces
  that shift; the paper model aligns them.
* Patch features are taken before ``ln_post`` (Hugging Face's ``last_hidden_state``); the CLS
  feature after it (``pooler_output``); both in the 768-d vision width. Text: ``ln_final``
  states through ``LayerNorm + Linear(512 -> 768, no bias)``, as the paper model.
* Images normalised with mean = std = 0.5 per channel (the release's ``Normalize``), resized
  bicubic to 224x224.
* InfoNCE averaged over the two directions (``loss_reduction="mean"``).
* Captions cleaned as the release's test script does (``src/test.py``, ``pre_caption``):
  lowercased, ``, . ' ! ? " ( ) * # : ; ~`` replaced by spaces, ``-`` and ``/`` too,
  ``<person>`` read as ``person``, runs of spaces collapsed (:func:`release_caption`), and HTML
  entities left as they are: the release's Hugging Face ``CLIPTokenizer`` (no ftfy in its
  requirements) splits ``&amp`` into ``&`` and ``amp``, where open_clip's tokenizer would
  unescape it to ``&``. We clean in training too (the release trains on raw captions): one
  tokenizer for both, so the model never meets at test a spelling it was not trained on.

Not reproduced (training-loop matters, see docs/fidelity.md): the release's step schedule
(x0.1 at epochs 20 and 40), its logit scale at the new-module learning rate, and its model
selection on test (available as ``bench run --select-on test``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import drop_tokens
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses import info_nce
from models.methods.mgcc import MGCC, MGCCConfig
from models.precision import full_precision

RELEASE_PUNCTUATION = re.compile(r"""[,.'!?"()*#:;~]""")
RELEASE_IMAGE_MEAN = (0.5, 0.5, 0.5)
RELEASE_IMAGE_STD = (0.5, 0.5, 0.5)


@dataclass
class MGCCReleaseConfig(MGCCConfig):
    """The release's MGCC. Same fields as :class:`MGCCConfig`; the release's values are the
    defaults (AF fusion, the 25-word cap by attention, the 768-d vision space, mean InfoNCE)."""

    family: str = "mgcc-release"
    loss_reduction: str = "mean"
    word_cap: str = "attention"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fusion != "af":
            raise ModelError("mgcc-release has learnable matrices for the attention-based "
                             f"fusion only (fusion 'af'), got '{self.fusion}'")
        if self.feature_space != "vision" or self.word_cap != "attention":
            raise ModelError("mgcc-release works in the vision space with the attention word "
                             "cap (feature_space 'vision', word_cap 'attention')")
        if self.max_words is None:
            raise ModelError("mgcc-release needs max_words (the release: 25)")


def release_caption(caption: str) -> str:
    """A caption as the release's ``pre_caption`` leaves it, entities kept as text: ``&`` gets
    a space after it so that open_clip's HTML unescaping cannot turn ``&amp`` back into ``&``
    (its BPE then yields ``&`` and ``amp``, the release tokenizer's two tokens)."""
    text = RELEASE_PUNCTUATION.sub(" ", caption.lower())
    text = text.replace("-", " ").replace("/", " ").replace("<person>", "person")
    return " ".join(text.replace("&", "& ").split())


def release_count(rho: float, total: int) -> int:
    """The release's fixed token count ``round(rho * total)`` (half to even), at least 1."""
    return max(1, round(rho * total))


class MGCCRelease(MGCC):
    """The released architecture; see the module docstring."""

    batch_gathers = ("image global + patch tokens", "text global + word tokens")

    config: MGCCReleaseConfig

    def __init__(self, config: MGCCReleaseConfig) -> None:
        super().__init__(config)
        self.image_mean = RELEASE_IMAGE_MEAN
        self.image_std = RELEASE_IMAGE_STD
        grid = self.backbone.clip.visual.grid_size
        self.num_patches = release_count(config.rho_image, int(grid[0]) * int(grid[1]))
        self.num_words = release_count(config.rho_text, int(config.max_words))
        dim, n, m = self.embed_dim, self.num_patches, self.num_words
        comps = set(config.components)

        def eye(size: int, wanted: bool) -> nn.Parameter | None:
            return nn.Parameter(torch.eye(size)) if wanted else None

        self.global_weight = eye(dim, "sit" in comps)
        self.word_logit_weight = eye(m, "siw" in comps)
        self.patch_logit_weight = eye(n, "spt" in comps)
        self.local_weight = eye(dim, "spw" in comps)
        self.patch_weight = eye(n, "spw" in comps)
        self.word_weight = eye(m, "spw" in comps)
        self.patch_weight2 = eye(n, "spw" in comps)
        self.word_weight2 = eye(m, "spw" in comps)

    # ------------------------------------------------------------------------------ encoders
    def tokenize(self, texts: list[str]) -> Tensor:
        """CLIP tokens of the captions cleaned as the release's test script cleans them."""
        return super().tokenize([release_caption(t) for t in texts])

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        """CLS (after ``ln_post``) + the ``n`` most attended patches (before ``ln_post``)."""
        features = self.backbone.encode_images(pixels, project=False, patch_norm=False)
        if not self._needs_patches:
            return drop_tokens(features)  # type: ignore[return-value]
        order = features.attention.topk(self.num_patches, dim=1).indices
        tokens = torch.gather(features.tokens, 1,
                              order.unsqueeze(-1).expand(-1, -1, features.tokens.shape[-1]))
        attention = torch.gather(features.attention, 1, order)
        mask = torch.ones(attention.shape, dtype=torch.bool, device=attention.device)
        return ImageFeatures(features.pooled, tokens, mask, attention)

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        """EOT feature + ``m`` word slots: the most attended words with the release's one-token
        shift, zero slots where the caption has fewer words (every slot counts)."""
        states, eot, attention, pooled = self.backbone.text_tokens(tokens, project=False)
        assert self.text_projection is not None
        pooled = self.text_projection(pooled)
        if not self._needs_words:
            empty = pooled.new_zeros(pooled.shape[0], 0, pooled.shape[1])
            none = torch.zeros(pooled.shape[0], 0, dtype=torch.bool, device=pooled.device)
            return TextFeatures(pooled, empty, none, none.float())
        length = tokens.shape[1]
        positions = torch.arange(1, length - 1, device=tokens.device)  # word positions k
        is_word = positions.unsqueeze(0) < eot.unsqueeze(1)
        word_attention = attention[:, 1:length - 1].masked_fill(~is_word, 0.0)
        shifted = self.text_projection(states[:, 2:length])  # the feature at position k + 1
        slots = min(self.num_words, positions.numel())
        score = word_attention.masked_fill(~is_word, float("-inf"))
        order = score.topk(slots, dim=1).indices
        real = torch.gather(is_word, 1, order)
        features = torch.gather(shifted, 1, order.unsqueeze(-1).expand(-1, -1, shifted.shape[-1]))
        features = features * real.unsqueeze(-1)
        slot_attention = torch.gather(word_attention, 1, order) * real
        if slots < self.num_words:  # a context shorter than the slots: pad with zero slots
            extra = self.num_words - slots
            features = F.pad(features, (0, 0, 0, extra))
            slot_attention = F.pad(slot_attention, (0, extra))
        mask = torch.ones(slot_attention.shape, dtype=torch.bool, device=tokens.device)
        return TextFeatures(pooled, features, mask, slot_attention)

    # ---------------------------------------------------------------------------- similarity
    def component_similarities(
        self, text: TextFeatures, image: ImageFeatures,
    ) -> dict[str, Tensor]:
        """The release's four similarities, ``[Q, G]`` each, in float32."""
        with full_precision(text.pooled):
            return self._release_similarities(text, image)

    def _release_similarities(self, text: TextFeatures,
                              image: ImageFeatures) -> dict[str, Tensor]:
        tau = self.config.tau
        text_global = F.normalize(text.pooled.float(), dim=-1)
        image_global = F.normalize(image.pooled.float(), dim=-1)
        out: dict[str, Tensor] = {}
        if self._needs_patches:
            patches = F.normalize(image.tokens.float(), dim=-1)
        if self._needs_words:
            words = F.normalize(text.tokens.float(), dim=-1)
        for name in self.config.components:
            if name == "sit":
                out[name] = text_global @ (image_global @ self.global_weight).t()
            elif name == "siw":
                image_word = torch.einsum("qmd,gd->qgm", words, image_global)
                out[name] = _weighted(image_word, self.word_logit_weight, tau)
            elif name == "spt":
                patch_text = torch.einsum("qd,gnd->qgn", text_global, patches)
                out[name] = _weighted(patch_text, self.patch_logit_weight, tau)
            elif name == "spw":
                token_sim = torch.einsum("qmd,gnd->qgnm", words, patches @ self.local_weight)
                per_word = _weighted(token_sim.transpose(2, 3), self.patch_weight, tau)
                per_patch = _weighted(token_sim, self.word_weight, tau)
                image_level = _weighted(per_word, self.word_weight2, tau)
                text_level = _weighted(per_patch, self.patch_weight2, tau)
                out[name] = (image_level + text_level) / 2
        return out

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        # the whole global batch under DDP (models.distributed): every negative of one process
        image = self.encode_images(batch["images"]).gathered()
        text = self.encode_texts(batch["tokens"]).gathered()
        logits = self.pair_similarity(text, image) * self.logit_scale()
        return {"infonce": info_nce(logits, self.config.loss_reduction)}


def _weighted(values: Tensor, matrix: Tensor | None, tau: float) -> Tensor:
    """Release AF over the last dim: ``sum_k (softmax(values / tau) @ matrix)[k] * values[k]``."""
    assert matrix is not None
    weights = (values / tau).softmax(dim=-1) @ matrix
    return (weights * values).sum(dim=-1)

