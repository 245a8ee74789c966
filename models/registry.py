"""Model names -> (family, config defaults); ``build_model`` and ``build_model_from_config``.

Variants are configurations of a few families, never copies of code:

* ``mgcc``: the paper's model (ViT-B/32 at 224x224, m = 25 words, 768-d) with all four
  similarities and AF fusion (no token selection by default: the ratios are per dataset, see
  :data:`models.methods.mgcc.MGCC_PAPER_RATIOS` and the ``mgcc-cuhk`` etc. names).
* ``mgcc-b16-384``: the same on IRRA's input (ViT-B/16 at 384x128) in CLIP's joint space.
* ``mgcc-release`` (family ``mgcc-release``): the MGCC release's architecture.
* ``mgcc-<components>``: every component subset in canonical order sit, spw, spt, siw
  (Table 3 rows: ``mgcc-sit``, ``mgcc-spw``, ``mgcc-spt``, ``mgcc-siw``, ``mgcc-sit-spw``,
  ``mgcc-spt-siw``; the others exist too).
* ``mgcc-mean-mean``, ``mgcc-mean-max``, ``mgcc-max-mean``, ``mgcc-max-max``: Table 6 fusions.
* ``mgcc-cuhk``, ``mgcc-icfg``, ``mgcc-rstpreid``: the paper's per-dataset token ratios.
* ``irra``, ``clip``.
* ``cmpm`` (RN50 + Bi-LSTM, CMPM + CMPC) and ``baseline1`` (the ``baseline`` family: MGCC's
  multi-granularity model on RN50 + Bi-LSTM; other encoder pairs are other configs of it);
  ``baseline2``: the same family on CLIP's image tower + BERT.
* ``dpath``: Dual-Path (:mod:`models.methods.dpath`).
* ``ssan`` (RN50 + Bi-LSTM, stripes + word-attention parts + part relations) and ``tipcb``
  (RN50 + BERT, low-level / stripe / global levels): :mod:`models.methods.ssan`,
  :mod:`models.methods.tipcb`.
* ``rde``, ``tbps-clip``: RDE (CVPR 2024) and TBPS-CLIP (AAAI 2024), see their modules.
* ``clip-zeroshot``: pretrained CLIP evaluated without training (``needs_training = False``).
* ``vitaa`` (RN50 + Bi-LSTM, parsing-supervised attribute branches) and ``nafs`` (RN50 + BERT,
  full-scale parts, non-local alignment, optional re-ranking by visual neighbours).
* ``tbps`` (RN50 + BERT, momentum contrast with queues); ``saf`` (timm ViT + BERT, heads
  queried by each sample's [CLS] give the parts).
* ``tbps`` (RN50 + BERT, momentum contrast with queues).
* ``cfine`` (CLIP image + BERT, :mod:`models.methods.cfine`) and ``lgur`` (DeiT + BERT,
  :mod:`models.methods.lgur`).
* ``rasa`` (ALBEF: ViT-B/16 + BERT with fusion layers) and ``aptm`` (Swin-B + the same BERT):
  two-stage rankers, contrastive top-k re-scored by image-text matching
  (:mod:`models.two_stage`).

Any config field can be overridden: ``build_model("mgcc", fusion="max-mean", rho_image=0.3)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from models.base import ModelConfig, RetrievalModel
from models.encoders.vocabulary import TINY_WORDS, Vocabulary
from models.errors import ModelError
from models.methods.aptm import APTM, APTMConfig
from models.methods.baseline import MultiGranularity, MultiGranularityConfig
from models.methods.cfine import CFine, CFineConfig
from models.methods.clip import CLIPBaseline, CLIPConfig
from models.methods.cmpm import CMPM, CMPMConfig
from models.methods.dpath import DPath, DPathConfig
from models.methods.irra import IRRA, IRRAConfig
from models.methods.lgur import LGUR, LGURConfig
from models.methods.mgcc import FUSIONS, MGCC, MGCC_PAPER_RATIOS, MGCCConfig, table3_variants
from models.methods.mgcc_release import MGCCRelease, MGCCReleaseConfig
from models.methods.nafs import NAFS, NAFSConfig
from models.methods.rasa import RaSa, RaSaConfig
from models.methods.rde import RDE, RDEConfig
from models.methods.saf import SAF, SAFConfig
from models.methods.ssan import SSAN, SSANConfig
from models.methods.tbps import TBPS, TBPSConfig
from models.methods.tbps_clip import TBPSCLIP, TBPSCLIPConfig
from models.methods.tipcb import TIPCB, TIPCBConfig
from models.methods.vitaa import ViTAA, ViTAAConfig
from models.methods.zeroshot import ZeroShotCLIP, ZeroShotCLIPConfig


@dataclass(frozen=True)
class ModelEntry:
    family: str
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Family:
    """A model family: its config and model classes, and the build options of its tiny
    configuration (random weights, small enough for a CPU test step in well under a second)."""

    config_cls: type[ModelConfig]
    model_cls: type[RetrievalModel]
    tiny: dict[str, Any] = field(default_factory=dict)


# tiny ResNet (64x32) + a 32-unit Bi-LSTM over a fixed small word list, 32-d joint space
# (a text encoder "bert" uses the tiny random BERT with its built-in WordPiece vocabulary)
TINY_TWO_TOWER: dict[str, Any] = {"embed_dim": 32, "word_dim": 32, "hidden_dim": 32,
                                  "vocabulary": TINY_WORDS, "bert": "tiny"}

FAMILIES: dict[str, Family] = {
    "mgcc": Family(MGCCConfig, MGCC, {"backbone": "tiny"}),
    "irra": Family(IRRAConfig, IRRA, {"backbone": "tiny"}),
    "clip": Family(CLIPConfig, CLIPBaseline, {"backbone": "tiny"}),
    "cmpm": Family(CMPMConfig, CMPM, {"backbone": "tiny", **TINY_TWO_TOWER}),
    "baseline": Family(MultiGranularityConfig, MultiGranularity,
                       {"backbone": "tiny", **TINY_TWO_TOWER}),
    "mgcc-release": Family(MGCCReleaseConfig, MGCCRelease, {"backbone": "tiny"}),
    "dpath": Family(DPathConfig, DPath, {"backbone": "tiny", "vocabulary": TINY_WORDS}),
    # 96x32 gives the tiny ResNet a 6-row map (one row per stripe); the Bi-LSTM's 2 x 64 states
    # match its 128 channels, as SSAN's shared projections need
    "ssan": Family(SSANConfig, SSAN, {"backbone": "tiny", **TINY_TWO_TOWER, "hidden_dim": 64,
                                      "relation_dim": 16, "image_size": (96, 32)}),
    # last stride 1: the tiny ResNet's stride is 8, so 48x16 gives a 6x2 map; the tiny BERT
    "tipcb": Family(TIPCBConfig, TIPCB, {"backbone": "tiny", **TINY_TWO_TOWER,
                                        "image_size": (48, 16)}),
    "rde": Family(RDEConfig, RDE, {"backbone": "tiny", "tse_dim": 128}),
    "tbps-clip": Family(TBPSCLIPConfig, TBPSCLIP, {"backbone": "tiny", "simclr_hidden": 32}),
    "clip-zeroshot": Family(ZeroShotCLIPConfig, ZeroShotCLIP, {"backbone": "tiny"}),
    "vitaa": Family(ViTAAConfig, ViTAA, {"backbone": "tiny", **TINY_TWO_TOWER, "part_dim": 16}),
    "nafs": Family(NAFSConfig, NAFS, {"backbone": "tiny", **TINY_TWO_TOWER, "embed_dim": 64}),
    "tbps": Family(TBPSConfig, TBPS, {"backbone": "tiny", **TINY_TWO_TOWER, "queue_size": 16}),
    # SAF and LGUR have no projection: the joint width is the tiny ViT's and BERT's (64)
    "saf": Family(SAFConfig, SAF, {"backbone": "tiny", **TINY_TWO_TOWER, "embed_dim": 64,
                                   "image_size": (64, 32), "num_parts": 3}),
    # CFine keeps the encoders' widths: the tiny CLIP and the tiny BERT are both 64 wide
    "cfine": Family(CFineConfig, CFine, {"backbone": "tiny", "bert": "tiny"}),
    "lgur": Family(LGURConfig, LGUR, {"backbone": "tiny", **TINY_TWO_TOWER, "embed_dim": 64,
                                      "heads": 2, "dga_head_dim": 16, "dga_mlp_dim": 32,
                                      "pgu_head_dim": 16, "pgu_mlp_dim": 32,
                                      "dictionary_size": 16, "num_parts": 2, "part_dim": 32}),
    # ALBEF's split BERT (2 text + 2 fusion layers, width 64) on a tiny ViT, 32-d joint space
    "rasa": Family(RaSaConfig, RaSa, {"backbone": "tiny", "bert": "tiny", "embed_dim": 32,
                                      "queue_size": 32, "rerank_k": 2, "max_words": 32}),
    # a two-stage tiny Swin (16x8 then 8x4 at 64x32) + the same tiny ALBEF BERT
    "aptm": Family(APTMConfig, APTM, {"backbone": "tiny", "bert": "tiny", "embed_dim": 32,
                                      "rerank_k": 2, "max_words": 32}),
}

#: Values of fields added after runs were recorded, for configs that predate them: an ``mgcc``
#: config without ``feature_space`` was trained in CLIP's joint space.
LEGACY_DEFAULTS: dict[str, dict[str, Any]] = {"mgcc": {"feature_space": "joint"}}

#: Models that take the MGCC paper's per-dataset token-selection ratios by default (MGCC,
#: its architecture variants and the paper's Baseline1/Baseline2).
MGCC_DATASET_RATIO_MODELS = ("mgcc", "mgcc-b16-384", "mgcc-release", "baseline1", "baseline2")


def _entries() -> dict[str, ModelEntry]:
    entries = {
        "mgcc": ModelEntry("mgcc", "MGCC as the paper: ViT-B/32 224x224, 49 patches, m=25, "
                           "768-d, S_I-T + S_P-W + S_P-T + S_I-W, AF fusion"),
        "mgcc-b16-384": ModelEntry(
            "mgcc", "MGCC on IRRA's input: ViT-B/16 384x128, 192 patches, all words, CLIP's "
                    "512-d joint space", {"backbone": "ViT-B-16", "feature_space": "joint",
                                          "max_words": None}),
        "mgcc-release": ModelEntry(
            "mgcc-release", "MGCC as its release builds it: learnable identity-initialised "
                            "fusion matrices, 25 words by attention (shifted by one token)"),
    }
    for name, components in table3_variants().items():
        pretty = " + ".join(f"S_{c[0].upper()}-{c[1:].upper()}" for c in components)
        entries[name] = ModelEntry("mgcc", f"MGCC ablation: {pretty}",
                                   {"components": components})
    for fusion in FUSIONS:
        if fusion != "af":
            entries[f"mgcc-{fusion}"] = ModelEntry(
                "mgcc", f"MGCC with {fusion} fusion instead of AF (Table 6)", {"fusion": fusion})
    for short, dataset in (("cuhk", "cuhk-pedes"), ("icfg", "icfg-pedes"),
                           ("rstpreid", "rstpreid")):
        rho_image, rho_text = MGCC_PAPER_RATIOS[dataset]
        entries[f"mgcc-{short}"] = ModelEntry(
            "mgcc", f"MGCC with the paper's {dataset} ratios ({rho_image}, {rho_text})",
            {"rho_image": rho_image, "rho_text": rho_text})
    entries["irra"] = ModelEntry("irra", "IRRA: SDM + IRR (masked language modelling) + ID")
    entries["clip"] = ModelEntry("clip", "CLIP fine-tuning baseline: global cosine, InfoNCE")
    entries["cmpm"] = ModelEntry("cmpm", "CMPM (S): RN50 + Bi-LSTM, CMPM + CMPC losses (Zhang & "
                                         "Lu, ECCV 2018)")
    entries["baseline1"] = ModelEntry(
        "baseline", "Baseline1 (M): MGCC's multi-granularity model on RN50 + Bi-LSTM",
        {"image_encoder": "resnet", "backbone": "resnet50", "text_encoder": "bilstm"})
    entries["baseline2"] = ModelEntry(
        "baseline", "Baseline2 (M): MGCC's multi-granularity model on CLIP image + BERT text",
        {"image_encoder": "clip", "backbone": "ViT-B-32-224", "text_encoder": "bert",
         "bert": "bert-base-uncased", "bert_max_length": 100, "embed_dim": 768})
    entries["dpath"] = ModelEntry("dpath", "Dual-Path: ResNet-50 + residual text CNN, instance "
                                  "loss (stage I) then + ranking loss (stage II)")
    entries["ssan"] = ModelEntry("ssan", "SSAN (S): RN50 + Bi-LSTM, stripe / word-attention parts "
                                         "+ part relations, compound ranking + ID losses")
    entries["tipcb"] = ModelEntry(
        "tipcb", "TIPCB (S): RN50 + frozen BERT + part-branch text CNN, CMPM at low-level, "
                 "stripe and global levels", {"text_encoder": "bert", "bert": "bert-base-uncased"})
    entries["rde"] = ModelEntry("rde", "RDE: BGE + TSE branches, TAL, consensus division")
    entries["tbps-clip"] = ModelEntry(
        "tbps-clip", "TBPS-CLIP: CLIP + augmentations, N-ITC + R-ITC + C-ITC + SimCLR")
    entries["clip-zeroshot"] = ModelEntry(
        "clip-zeroshot", "zero-shot CLIP: pretrained weights evaluated, no training")
    entries["vitaa"] = ModelEntry(
        "vitaa", "ViTAA: RN50 + Bi-LSTM, attribute branches supervised by human-parsing masks, "
                 "aligned with attribute phrases (Wang et al., ECCV 2020)")
    entries["nafs"] = ModelEntry(
        "nafs", "NAFS: RN50 + BERT, staircase full-scale parts, locality-constrained text, "
                "contextual non-local attention (Gao et al., 2021)")
    entries["tbps"] = ModelEntry(
        "tbps", "TBPS (S): RN50 + BERT, cross-modal momentum contrast with queues + instance + "
                "alignment losses (Han et al., BMVC 2021)",
        {"image_encoder": "resnet", "backbone": "resnet50", "text_encoder": "bert",
         "bert": "bert-base-uncased"})
    entries["saf"] = ModelEntry(
        "saf", "SAF (M): ViT-B/16 + BERT, 10 full-width heads queried by each sample's [CLS] "
               "give part features shared by both modalities (Li et al., ICASSP 2022)",
        {"image_encoder": "vit", "backbone": "vit_base_patch16_384.orig_in21k_ft_in1k",
         "text_encoder": "bert", "bert": "bert-base-uncased"})
    entries["cfine"] = ModelEntry(
        "cfine", "CFine (M): CLIP ViT-B/16 + BERT, multi-grained global features from the "
                 "top-K tokens by CLS attention; CFR and FCD train only (Yan et al., TIP 2023)")
    entries["lgur"] = ModelEntry(
        "lgur", "LGUR (M): DeiT-S + frozen BERT / Bi-LSTM, shared dictionary (DGA) + shared "
                "prototypes (PGU), ranked by the dictionary branch (Shao et al., ACM MM 2022)")
    entries["rasa"] = ModelEntry(
        "rasa", "RaSa: ALBEF (ViT-B/16 + BERT with cross-attention fusion), momentum contrast, "
                "p-ITM + positive relation detection, MLM + replaced-token detection; cosine "
                "top-128 re-scored by ITM (Bai et al., IJCAI 2023)")
    entries["aptm"] = ModelEntry(
        "aptm", "APTM: Swin-B + ALBEF-style BERT (text + fusion layers), cosine top-128 "
                "re-scored by ITM + 0.002 cosine; for its released checkpoints (Yang et al., "
                "ACM MM 2023)")
    return entries


MODELS: dict[str, ModelEntry] = _entries()


def list_models() -> list[str]:
    """Every registered model name."""
    return list(MODELS)


def describe_models() -> dict[str, str]:
    """Name -> one-line description, for ``--help`` texts and listings."""
    return {name: entry.description for name, entry in MODELS.items()}


def needs_training(name: str) -> bool:
    """False for models evaluated straight from their weights (``clip-zeroshot``)."""
    if name not in MODELS:
        raise ModelError(f"unknown model '{name}'; valid models: {', '.join(list_models())}")
    return bool(getattr(FAMILIES[MODELS[name].family].model_cls, "needs_training", True))


def tiny_options(name: str) -> dict[str, Any]:
    """Build options that make ``name`` tiny (for tests and the CPU demo), e.g.
    ``build_model(name, **tiny_options(name))``."""
    if name not in MODELS:
        raise ModelError(f"unknown model '{name}'; valid models: {', '.join(list_models())}")
    return dict(FAMILIES[MODELS[name].family].tiny)


def requires_vocabulary(name: str, options: dict[str, Any] | None = None) -> bool:
    """Whether ``name`` (built with ``options``) embeds words from a vocabulary fitted to the
    training captions: its model class sets ``requires_vocabulary = True`` (or a function of the
    options) and its config has ``vocabulary`` and ``min_word_count`` fields."""
    if name not in MODELS:
        raise ModelError(f"unknown model '{name}'; valid models: {', '.join(list_models())}")
    entry = MODELS[name]
    flag = getattr(FAMILIES[entry.family].model_cls, "requires_vocabulary", False)
    if callable(flag):  # depends on the options (e.g. which text encoder)
        return bool(flag({**entry.defaults, **(options or {})}))
    return bool(flag)


def with_vocabulary(name: str, options: dict[str, Any], captions: Iterable[str]) -> dict[str, Any]:
    """``options`` plus ``vocabulary``: the word list of ``captions`` (the train split), for a
    model that needs one and was not given one. The minimum word count is the option
    ``min_word_count`` or the config's default. Other models get ``options`` unchanged.

    The list becomes a field of the model config, so a run's ``config.json`` carries it and
    :func:`build_model_from_config` tokenises exactly as training did.
    """
    if not requires_vocabulary(name, options) or options.get("vocabulary") is not None:
        return dict(options)
    entry = MODELS[name]
    config_fields = {f.name: f for f in dataclasses.fields(FAMILIES[entry.family].config_cls)}
    min_count = options.get("min_word_count", entry.defaults.get(
        "min_word_count", config_fields["min_word_count"].default))
    vocabulary = Vocabulary.from_captions(captions, min_count=int(min_count))
    return {**options, "vocabulary": vocabulary.to_json()}


def _make_config(family: str, values: dict[str, Any]) -> ModelConfig:
    config_cls = FAMILIES[family].config_cls
    valid = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - valid)
    if unknown:
        raise ModelError(f"unknown option(s) {', '.join(unknown)} for a {family} model; "
                         f"valid: {', '.join(sorted(valid - {'family'}))}")
    if values.get("family", family) != family:
        raise ModelError(f"config family '{values['family']}' does not match '{family}'")
    return config_cls(**{**values, "family": family})


def model_config(name: str, **overrides: Any) -> ModelConfig:
    """The resolved config ``build_model(name, **overrides)`` would build, without building
    it (no weights are read or downloaded): for dry runs and listings."""
    if name not in MODELS:
        raise ModelError(f"unknown model '{name}'; valid models: {', '.join(list_models())}")
    entry = MODELS[name]
    return _make_config(entry.family, {**entry.defaults, **overrides, "name": name})


#: Model options the harness sets itself (refused from the command line).
RESERVED_OPTIONS: dict[str, str] = {
    "num_classes": "the training split's number of identities",
    "vocabulary": "fitted on the training captions",
    "name": "the model name", "family": "the model name",
}


def check_model_options(name: str, options: dict[str, Any], user: dict[str, Any]) -> None:
    """Check a run's model options before anything is built or trained.

    ``user`` (the ``--model-opt`` values) is checked key by key against the model's config
    fields (unknown key, type, range, a key the harness sets); then the whole resolved
    ``options`` must make a config (a config's own checks, e.g. incompatible values, become
    one line too)."""
    from toreid.options import check_fields

    if name not in MODELS:
        raise ModelError(f"unknown model '{name}'; valid models: {', '.join(list_models())}")
    config_cls = FAMILIES[MODELS[name].family].config_cls
    check_fields("--model-opt", config_cls, user, reserved=RESERVED_OPTIONS,
                 owner=f"model '{name}'")
    try:
        model_config(name, **options)
    except (TypeError, ValueError, ModelError) as error:
        raise ModelError(f"--model-opt: model '{name}' refuses its options: "
                         f"{str(error).splitlines()[0]}") from None


def describe_architecture(config: ModelConfig) -> dict[str, Any]:
    """What a config builds, from the configs alone: image size, patch grid, feature width,
    word cap. Empty for backbones that are not open_clip CLIPs."""
    from models.methods.clip_model import clip_architecture
    if config.family in ("rasa", "aptm"):  # not open_clip: ALBEF-style two-stage rankers
        return {"backbone": config.backbone, "image_size": config.image_size,
                "feature_dim": getattr(config, "embed_dim", None),
                "max_words": getattr(config, "max_words", None),
                "rerank_k": getattr(config, "rerank_k", None)}

    arch = clip_architecture(config.backbone, config.image_size)
    if not arch:
        return {}
    feature_dim = arch["embed_dim"]
    if getattr(config, "feature_space", "joint") == "vision":
        feature_dim = arch["vision_width"]
    arch["feature_dim"] = feature_dim
    if hasattr(config, "max_words"):
        arch["max_words"] = config.max_words
    return arch


def build_model(name: str, **overrides: Any) -> RetrievalModel:
    """Build a registered model, e.g. ``build_model("mgcc", backbone="tiny", num_classes=10)``.

    Raises:
        ModelError: unknown name (the message lists the valid names) or invalid option.
    """
    if name not in MODELS:
        raise ModelError(f"unknown model '{name}'; valid models: {', '.join(list_models())}")
    entry = MODELS[name]
    values = {**entry.defaults, **overrides, "name": name}
    return build_model_from_config(_make_config(entry.family, values))


def build_model_from_config(
    config: dict[str, Any] | ModelConfig, *, load_pretrained: bool = True,
) -> RetrievalModel:
    """Rebuild a model from ``dataclasses.asdict(model.config)`` (or a config object).

    Args:
        config: the dict (as read back from JSON) or a config dataclass.
        load_pretrained: False builds the same architecture with random weights and ignores
            ``pretrained`` (for loading a fine-tuned checkpoint right after, without needing the
            original weights file or a network). The quick-GELU choice is kept: it is recorded in
            the config once the weights have decided it.
    """
    if isinstance(config, ModelConfig):
        values = dataclasses.asdict(config)
    elif isinstance(config, dict):
        values = dict(config)
    else:
        raise ModelError(f"a model config must be a dict, got {type(config).__name__}")
    family = values.get("family")
    for key, value in LEGACY_DEFAULTS.get(str(family), {}).items():
        values.setdefault(key, value)
    if family not in FAMILIES:
        raise ModelError(f"model config has unknown family '{family}'; valid: "
                         f"{', '.join(FAMILIES)}")
    resolved = _make_config(family, values)
    build_config = resolved
    if not load_pretrained:  # every field that names a weights file (default: pretrained)
        weight_fields = getattr(resolved, "pretrained_fields", ("pretrained",))
        build_config = dataclasses.replace(resolved, **dict.fromkeys(weight_fields))
    model = FAMILIES[family].model_cls(build_config)
    # record what the weights decided (quick-GELU), so that a rebuild matches exactly
    model.finalize_config(resolved)
    model.config = resolved
    return model
