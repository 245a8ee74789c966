"""Retrieval models for text-based (occluded) person re-identification: MGCC, IRRA, CLIP.

Layout: ``encoders/`` (one module per encoder family: ``clip`` is the open_clip backbone),
``losses`` (every loss, pure functions), ``methods/`` (one module per method family; variants are
configs in the registry), ``registry`` on top; ``base``, ``features`` and ``token_selection`` are
shared by all methods.

The models know nothing of files, datasets or the command line. The public interface (contract
C4) is::

    from models import build_model, list_models, build_model_from_config, ModelError
    model = build_model("mgcc", backbone="tiny", num_classes=10)
    image_feats = model.encode_images(pixels)      # ImageFeatures
    text_feats = model.encode_texts(model.tokenize(["a man in a red coat"]))
    scores = model.similarity(text_feats, image_feats, chunk=256)   # [Q, G]
    losses = model({"images": pixels, "tokens": tokens, "pids": pids})  # named scalar losses
"""

from models.base import ModelConfig, RetrievalModel
from models.encoders.clip import BACKBONE_PRESETS, Backbone, list_backbones
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses import info_nce, sdm_loss
from models.methods.clip import CLIPBaseline, CLIPConfig
from models.methods.irra import IRRA, IRRAConfig
from models.methods.mgcc import MGCC, MGCC_PAPER_RATIOS, MGCC_PAPER_TABLE4, MGCCConfig
from models.registry import (
    build_model,
    build_model_from_config,
    describe_models,
    list_models,
    tiny_options,
)

__all__ = [
    "BACKBONE_PRESETS",
    "Backbone",
    "CLIPBaseline",
    "CLIPConfig",
    "IRRA",
    "IRRAConfig",
    "ImageFeatures",
    "MGCC",
    "MGCCConfig",
    "MGCC_PAPER_RATIOS",
    "MGCC_PAPER_TABLE4",
    "ModelConfig",
    "ModelError",
    "RetrievalModel",
    "TextFeatures",
    "build_model",
    "build_model_from_config",
    "describe_models",
    "info_nce",
    "sdm_loss",
    "list_backbones",
    "list_models",
    "tiny_options",
]
