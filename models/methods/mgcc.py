"""MGCC: multi-granularity contrastive consistency (AAAI 2024), every ablation as a config.

Four similarities between a text (global ``T``, selected word tokens ``W``, ``m`` of them) and an
image (global ``I``, selected patch tokens ``P``, ``n`` of them), all features L2-normalised so
every entry is a cosine:

* ``S_I-T = I . T`` (Eq. 2), coarse-coarse.
* ``S_P-W`` (Eq. 1, 5-9): the ``n x m`` matrix ``S = P W^T`` reduced in two levels.
* ``S_P-T`` (Eq. 3, 10): the ``n`` patch-text cosines reduced over patches.
* ``S_I-W`` (Eq. 4, 11): the ``m`` image-word cosines reduced over words.

Final similarity (Eq. 12): the mean of the enabled components; training multiplies it by CLIP's
learnable logit scale and applies InfoNCE in both directions (Eq. 13-15).

Reading of Eq. 5-8 (the subscripts in the paper are inconsistent: Eq. 5 sums over patches ``i``
but attends with a row index, Eq. 6 sums over words ``i`` but normalises rows of patches). The
result shapes the paper states fix the meaning, and that is what this module implements:

* Eq. 5, ``S_img`` in R^{1 x m}: for each word ``j``, attend over patches:
  ``S_img[j] = sum_i softmax_i(S[i, j] / tau) * S[i, j]``.
* Eq. 6, ``S_txt`` in R^{n x 1}: for each patch ``i``, attend over words:
  ``S_txt[i] = sum_j softmax_j(S[i, j] / tau) * S[i, j]``.
* Eq. 7: ``S_img' = sum_j softmax_j(S_img[j] / tau) * S_img[j]`` (over words).
* Eq. 8: ``S_txt' = sum_i softmax_i(S_txt[i] / tau) * S_txt[i]`` (over patches).
* Eq. 9: ``S'_P-W = (S_img' + S_txt') / 2``.
* Eq. 10 / 11: the same softmax-weighted sum over the ``n`` patch-text cosines / ``m``
  image-word cosines.

Fusion strategies (Appendix Table 6) replace the softmax-weighted sums: ``"A-B"`` applies ``A``
("mean" or "max") at the first level (Eq. 5-6: inside the token-token matrix) and ``B`` at the
second level (Eq. 7-8) and to the single-level reductions of Eq. 10-11, which are instance-level
like Eq. 7-8. ``"af"`` is the attention-based fusion at every level (the paper's model).

Masks: unselected and padding tokens never contribute: they are excluded from every softmax,
mean and max (a mean divides by the valid count).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from models.base import ModelConfig, drop_tokens
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures, _Features
from models.losses import info_nce
from models.methods.clip_model import CLIPRetrievalModel
from models.token_selection import select_tokens

COMPONENTS = ("sit", "spw", "spt", "siw")
FUSIONS = ("af", "mean-mean", "mean-max", "max-mean", "max-max")
LOSS_REDUCTIONS = ("sum", "mean")

# Paper ratios (rho_image, rho_text) per source dataset: Appendix §D and §F (Table 5 bold).
# Main-text Table 4 prints (0.2, 0.4) for ICFG; the appendix text and Table 5 say (0.4, 0.5).
MGCC_PAPER_RATIOS: dict[str, tuple[float, float]] = {
    "cuhk-pedes": (0.3, 0.4),
    "icfg-pedes": (0.4, 0.5),
    "rstpreid": (0.5, 0.5),
}

# Appendix Table 4 (main text): inference time T (ms/query) and memory M (GB) without selection
# and with the paper's ratios, for perf/models.py to print beside measured numbers.
MGCC_PAPER_TABLE4: dict[str, dict[str, tuple[float, float]]] = {
    "cuhk-pedes": {"(1.0, 1.0)": (3.63, 15.27), "(0.3, 0.4)": (2.61, 12.70)},
    "icfg-pedes": {"(1.0, 1.0)": (8.33, 15.27), "(0.2, 0.4)": (4.40, 12.70)},
    "rstpreid": {"(1.0, 1.0)": (3.94, 15.27), "(0.5, 0.5)": (3.24, 12.82)},
}


@dataclass
class MGCCConfig(ModelConfig):
    """MGCC and its ablations.

    Attributes:
        rho_image: patch selection ratio in (0, 1]; 1 keeps every patch.
        rho_text: word selection ratio in (0, 1]; 1 keeps every word.
        components: which of "sit", "spw", "spt", "siw" enter the mean of Eq. 12 (Table 3).
        fusion: "af" (the paper) or "mean-mean", "mean-max", "max-mean", "max-max" (Table 6).
        tau: temperature of the attention-based fusion softmaxes (paper: 0.01).
        loss_reduction: "sum" of both InfoNCE directions (paper Eq. 15) or "mean" (released code).
        max_words: keep only the first this many words of a caption before selection (the
            released code caps captions at 25 words); None keeps all.
    """

    family: str = "mgcc"
    rho_image: float = 1.0
    rho_text: float = 1.0
    components: tuple[str, ...] = COMPONENTS
    fusion: str = "af"
    tau: float = 0.01
    loss_reduction: str = "sum"
    max_words: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.components, str):
            self.components = tuple(c for c in self.components.replace("+", "-").split("-") if c)
        self.components = tuple(self.components)
        unknown = [c for c in self.components if c not in COMPONENTS]
        if unknown or not self.components:
            raise ModelError(f"components must be a non-empty subset of {', '.join(COMPONENTS)}; "
                             f"got {', '.join(self.components) or 'none'}")
        # canonical order, no duplicates, so equal configs compare and serialise equal
        self.components = tuple(c for c in COMPONENTS if c in self.components)
        for field, value in (("rho_image", self.rho_image), ("rho_text", self.rho_text)):
            if not 0.0 < float(value) <= 1.0:
                raise ModelError(f"{field} must be in (0, 1], got {value}")
        self.rho_image, self.rho_text = float(self.rho_image), float(self.rho_text)
        if self.fusion not in FUSIONS:
            raise ModelError(f"unknown fusion '{self.fusion}'; valid: {', '.join(FUSIONS)}")
        if not float(self.tau) > 0:
            raise ModelError(f"tau must be positive, got {self.tau}")
        self.tau = float(self.tau)
        if self.loss_reduction not in LOSS_REDUCTIONS:
            raise ModelError(f"unknown loss_reduction '{self.loss_reduction}'; valid: "
                             f"{', '.join(LOSS_REDUCTIONS)}")
        if self.max_words is not None and int(self.max_words) < 1:
            raise ModelError(f"max_words must be positive, got {self.max_words}")


def masked_reduce(values: Tensor, mask: Tensor, dim: int, op: str, tau: float) -> Tensor:
    """Reduce ``values`` over ``dim`` using only positions where ``mask`` is True.

    ``op`` is "af" (softmax(values / tau)-weighted sum), "mean" or "max". Where no position is
    valid the result is 0, so an empty caption contributes nothing instead of NaN.
    """
    mask = mask.expand_as(values)
    any_valid = mask.any(dim=dim)
    if op == "mean":
        reduced = (values * mask).sum(dim=dim) / mask.sum(dim=dim).clamp_min(1)
    elif op == "max":
        reduced = values.masked_fill(~mask, torch.finfo(values.dtype).min).amax(dim=dim)
    elif op == "af":
        logits = (values / tau).masked_fill(~mask, torch.finfo(values.dtype).min)
        weights = logits.softmax(dim=dim)
        reduced = (weights * values.masked_fill(~mask, 0.0)).sum(dim=dim)
    else:  # pragma: no cover - configs are validated
        raise ValueError(op)
    return reduced.masked_fill(~any_valid, 0.0)


def fusion_ops(fusion: str) -> tuple[str, str]:
    """(first-level op, second-level op) of a fusion strategy name."""
    if fusion == "af":
        return "af", "af"
    first, second = fusion.split("-")
    return first, second


def component_similarities(
    text: TextFeatures, image: ImageFeatures, components: tuple[str, ...], fusion: str = "af",
    tau: float = 0.01,
) -> dict[str, Tensor]:
    """Each of ``components`` (Eq. 1-11) as ``[Q, G]`` (float32, unscaled).

    A pure function of the features, so that every model with global + token features (MGCC on
    CLIP, the paper's Baseline1/Baseline2 on other encoders) shares one implementation.
    """
    first, second = fusion_ops(fusion)
    needs_patches = bool(set(components) & {"spw", "spt"})
    needs_words = bool(set(components) & {"spw", "siw"})
    text_global = F.normalize(text.pooled.float(), dim=-1)
    image_global = F.normalize(image.pooled.float(), dim=-1)
    out: dict[str, Tensor] = {}
    if needs_patches:
        patches = F.normalize(image.tokens, dim=-1)
    if needs_words:
        words = F.normalize(text.tokens, dim=-1)
    for name in components:
        if name == "sit":  # Eq. 2
            out[name] = text_global @ image_global.t()
        elif name == "spw":  # Eq. 1, 5-9
            token_sim = torch.einsum("qmd,gnd->qgnm", words, patches).float()
            pair_mask = image.mask[None, :, :, None] & text.mask[:, None, None, :]
            per_word = masked_reduce(token_sim, pair_mask, 2, first, tau)  # Eq. 5: [Q,G,m]
            per_patch = masked_reduce(token_sim, pair_mask, 3, first, tau)  # Eq. 6: [Q,G,n]
            image_level = masked_reduce(per_word, text.mask[:, None, :], 2, second, tau)
            text_level = masked_reduce(per_patch, image.mask[None, :, :], 2, second, tau)
            out[name] = (image_level + text_level) / 2  # Eq. 9
        elif name == "spt":  # Eq. 3, 10
            patch_text = torch.einsum("qd,gnd->qgn", text_global, patches.float())
            out[name] = masked_reduce(patch_text, image.mask[None, :, :], 2, second, tau)
        elif name == "siw":  # Eq. 4, 11
            image_word = torch.einsum("qmd,gd->qgm", words.float(), image_global)
            out[name] = masked_reduce(image_word, text.mask[:, None, :], 2, second, tau)
    return out


class MGCC(CLIPRetrievalModel):
    """The MGCC model; see the module docstring for the equations and choices."""

    config: MGCCConfig

    def __init__(self, config: MGCCConfig) -> None:
        super().__init__(config)
        comps = set(config.components)
        self._needs_patches = bool(comps & {"spw", "spt"})
        self._needs_words = bool(comps & {"spw", "siw"})

    # ------------------------------------------------------------------------------ encoders
    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        """Global + the top ``ceil(rho_image * n)`` patches by CLS attention."""
        features = self.backbone.encode_images(pixels)
        if not self._needs_patches:
            return drop_tokens(features)  # type: ignore[return-value]
        return select_tokens(features, self.config.rho_image)  # type: ignore[return-value]

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        """Global + the top ``ceil(rho_text * m)`` words by EOT attention (m per caption)."""
        features = self.backbone.encode_texts(tokens)
        if not self._needs_words:
            return drop_tokens(features)  # type: ignore[return-value]
        if self.config.max_words is not None:
            features = _cap_words(features, int(self.config.max_words))
        return select_tokens(features, self.config.rho_text)  # type: ignore[return-value]

    # ---------------------------------------------------------------------------- similarity
    def component_similarities(
        self, text: TextFeatures, image: ImageFeatures,
    ) -> dict[str, Tensor]:
        """Each enabled component as ``[Q, G]`` (float32, unscaled)."""
        return component_similarities(text, image, self.config.components, self.config.fusion,
                                      self.config.tau)

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        """Eq. 12: the mean of the enabled components, ``[Q, G]``."""
        components = self.component_similarities(text, image)
        return torch.stack(list(components.values())).mean(dim=0)

    def _entries_per_pair(self, text: TextFeatures, image: ImageFeatures) -> int:
        return max(1, image.num_tokens) * max(1, text.num_tokens)

    # ------------------------------------------------------------------------------- training
    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """InfoNCE (Eq. 13-15) over the batch's matched (image, caption) pairs."""
        image = self.encode_images(batch["images"])
        text = self.encode_texts(batch["tokens"])
        logits = self.pair_similarity(text, image) * self.logit_scale()
        return {"infonce": info_nce(logits, self.config.loss_reduction)}


def _cap_words(features: _Features, max_words: int) -> _Features:
    """Keep only the first ``max_words`` word positions (attention renormalised)."""
    if features.num_tokens <= max_words:
        return features
    mask = features.mask[:, :max_words]
    attention = features.attention[:, :max_words] * mask
    attention = attention / attention.sum(dim=1, keepdim=True).clamp_min(1e-12)
    return type(features)(pooled=features.pooled, tokens=features.tokens[:, :max_words],
                          mask=mask, attention=attention)


def table3_variants() -> dict[str, tuple[str, ...]]:
    """Registry names of the component ablations: every non-empty subset of the four
    components (Table 3 reports seven of them), named ``mgcc-<c1>-<c2>...`` in canonical order;
    all four together is plain ``mgcc``."""
    names: dict[str, tuple[str, ...]] = {}
    for size in range(1, len(COMPONENTS)):
        for subset in itertools.combinations(COMPONENTS, size):
            names["mgcc-" + "-".join(subset)] = subset
    return names
