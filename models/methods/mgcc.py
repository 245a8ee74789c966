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

The paper's setting (Appendix §D) is the default configuration: CLIP ViT-B/32 at 224x224
(n = 49 patches), word tokens limited to m = 25, every granularity in a 768-d space. That space
is the vision width: the CLS and patch features are taken before CLIP's visual projection
(after ``ln_post``), and the text tokens after ``ln_final`` go through a new text projection
(``LayerNorm`` + bias-free ``Linear`` into 768-d, the release's shape), one of the "other
modules" trained at the new-module learning rate (``feature_space="vision"``).
``feature_space="joint"`` keeps CLIP's own 512-d joint space (the ``mgcc-b16-384`` variant, a
like-for-like comparison with IRRA at IRRA's input size). The release's own architecture is
:mod:`models.methods.mgcc_release`.

Word cap (``max_words``, ``word_cap``): the paper says only that m "is limited to 25". Our
reading for the paper model keeps the first 25 words of a caption (``word_cap="first"``: the
cap a tokenizer's truncation would make); the MGCC release keeps the 25 words the end-of-text
token attends to most (``word_cap="attention"``). The global text feature always comes from the
whole caption. Token selection (``rho_text``) then keeps ``ceil(rho_text * m_b)`` of the
``m_b = min(words, 25)`` capped words.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import ModelConfig, drop_tokens
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures, _Features
from models.losses import info_nce
from models.methods.clip_model import CLIPRetrievalModel
from models.precision import full_precision
from models.token_selection import keep_top, select_tokens

COMPONENTS = ("sit", "spw", "spt", "siw")
FUSIONS = ("af", "mean-mean", "mean-max", "max-mean", "max-max")
LOSS_REDUCTIONS = ("sum", "mean")
FEATURE_SPACES = ("vision", "joint")
WORD_CAPS = ("first", "attention")

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
        max_words: the word cap m (paper: 25); None keeps every word.
        word_cap: which words the cap keeps: "first" (our reading of the paper) or
            "attention" (the most attended, as the MGCC release does).
        feature_space: "vision" (the paper: 768-d, CLS and patches before CLIP's projection,
            a new text projection) or "joint" (CLIP's projected joint space).
    """

    family: str = "mgcc"
    backbone: str = "ViT-B-32-224"
    rho_image: float = 1.0
    rho_text: float = 1.0
    components: tuple[str, ...] = COMPONENTS
    fusion: str = "af"
    tau: float = 0.01
    loss_reduction: str = "sum"
    max_words: int | None = 25
    word_cap: str = "first"
    feature_space: str = "vision"

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
        if self.word_cap not in WORD_CAPS:
            raise ModelError(f"unknown word_cap '{self.word_cap}'; valid: {', '.join(WORD_CAPS)}")
        if self.feature_space not in FEATURE_SPACES:
            raise ModelError(f"unknown feature_space '{self.feature_space}'; valid: "
                             f"{', '.join(FEATURE_SPACES)}")


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
    CLIP, the paper's Baseline1/Baseline2 on other encoders) shares one implementation. It runs
    in float32 even under autocast (see :mod:`models.precision`).
    """
    with full_precision(text.pooled):
        return _component_similarities(text, image, components, fusion, tau)


def _component_similarities(
    text: TextFeatures, image: ImageFeatures, components: tuple[str, ...], fusion: str,
    tau: float,
) -> dict[str, Tensor]:
    first, second = fusion_ops(fusion)
    needs_patches = bool(set(components) & {"spw", "spt"})
    needs_words = bool(set(components) & {"spw", "siw"})
    text_global = F.normalize(text.pooled.float(), dim=-1)
    image_global = F.normalize(image.pooled.float(), dim=-1)
    out: dict[str, Tensor] = {}
    if needs_patches:
        patches = F.normalize(image.tokens.float(), dim=-1)
    if needs_words:
        words = F.normalize(text.tokens.float(), dim=-1)
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

    batch_gathers = ("image global + patch tokens", "text global + word tokens")

    config: MGCCConfig

    def __init__(self, config: MGCCConfig) -> None:
        super().__init__(config)
        comps = set(config.components)
        self._needs_patches = bool(comps & {"spw", "spt"})
        self._needs_words = bool(comps & {"spw", "siw"})
        self._project = config.feature_space == "joint"
        self.text_projection: nn.Module | None = None
        if not self._project:
            # the paper's "other module": text width -> vision width (512 -> 768 for ViT-B)
            self.text_projection = nn.Sequential(
                nn.LayerNorm(self.backbone.text_width),
                nn.Linear(self.backbone.text_width, self.backbone.vision_width, bias=False))
            # CLIP's own projections are unused in this space: frozen, not left without grads
            clip = self.backbone.clip
            for unused in (clip.visual.proj, clip.text_projection):
                if isinstance(unused, nn.Parameter):
                    unused.requires_grad_(False)

    def has_second_stage(self, image: ImageFeatures) -> bool:
        """Any component but the global one (``sit``) compares token features."""
        return self._needs_patches or self._needs_words

    @property
    def embed_dim(self) -> int:
        """Width of every granularity's features (768 for ViT-B in the paper's space)."""
        return self.backbone.embed_dim if self._project else self.backbone.vision_width

    # ------------------------------------------------------------------------------ encoders
    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        """Global + the top ``ceil(rho_image * n)`` patches by CLS attention."""
        features = self.backbone.encode_images(pixels, project=self._project)
        if not self._needs_patches:
            return drop_tokens(features)  # type: ignore[return-value]
        return select_tokens(features, self.config.rho_image)  # type: ignore[return-value]

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        """Global + the top ``ceil(rho_text * m)`` words by EOT attention (m per caption)."""
        features = self.backbone.encode_texts(tokens, project=self._project)
        if self.text_projection is not None:
            features = dataclasses.replace(
                features, pooled=self.text_projection(features.pooled),
                tokens=self.text_projection(features.tokens))
        if not self._needs_words:
            return drop_tokens(features)  # type: ignore[return-value]
        if self.config.max_words is not None:
            features = cap_words(features, int(self.config.max_words), self.config.word_cap)
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
        # the whole global batch under DDP (models.distributed): every negative of one process
        image = self.encode_images(batch["images"]).gathered()
        text = self.encode_texts(batch["tokens"]).gathered()
        logits = self.pair_similarity(text, image) * self.logit_scale()
        return {"infonce": info_nce(logits, self.config.loss_reduction)}


def cap_words(features: _Features, max_words: int, how: str = "first") -> _Features:
    """Keep at most ``max_words`` words per caption: the first ones (``how="first"``, in
    caption order) or the most attended ones (``"attention"``, in descending attention, as
    the MGCC release does)."""
    counts = features.mask.sum(dim=1).clamp(max=max_words)
    if how == "attention":
        return keep_top(features, counts)
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
