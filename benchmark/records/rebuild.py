"""The model of a finished run, rebuilt from its run folder.

Here rather than beside the training loop so that evaluation, reports and exports read a
run without importing the loop: ``config.json`` + ``checkpoints/best.pt`` are all they need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from benchmark.records import results
from benchmark.records.checkpoints import load_checkpoint, load_model_weights, require_keys
from toreid.errors import ToreidError
from toreid.io import read_json


def build_for_run(name: str, num_classes: int, options: dict[str, Any],
                  train_captions: list[str] | None = None) -> torch.nn.Module:
    """Build ``name`` for a run; a model that embeds words gets the vocabulary of
    ``train_captions`` (it lands in the model config, hence in ``config.json``)."""
    from models import build_model
    from models.registry import with_vocabulary

    if train_captions is not None:
        options = with_vocabulary(name, options, train_captions)
    return build_model(name, num_classes=num_classes, **options)


def rebuild_from_run(run: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model of a finished run with its selected (``best.pt``) weights.

    An incomplete ``config.json``, a checkpoint that is not weights-only, truncated, or of
    another model or shape are each one-line errors naming the file (and the field).
    """
    from models import build_model_from_config

    config_path = Path(run) / "config.json"
    config = read_json(config_path, "run config")
    section = config.get("model") if isinstance(config, dict) else None
    model_config = section.get("config") if isinstance(section, dict) else None
    if not isinstance(model_config, dict):
        raise ToreidError(f"{config_path}: field 'model.config' missing or not an object "
                          "(an incomplete run config)")
    try:
        model = build_model_from_config(model_config, load_pretrained=False)
    except TypeError as exc:  # a config field the model does not know
        raise ToreidError(f"{config_path}: field 'model.config': {exc}") from None
    best = results.checkpoint_dir(run) / "best.pt"
    checkpoint = load_checkpoint(best)
    require_keys(checkpoint, ("model",), best)
    load_model_weights(model, checkpoint["model"], best,
                       f"model '{section.get('name', '?')}' of {config_path}")
    return model, config


def recorded_dataset_root(run: Path, config: dict[str, Any]) -> Path:
    """The dataset root a run's ``config.json`` records (field ``dataset.root``)."""
    section = config.get("dataset")
    root = section.get("root") if isinstance(section, dict) else None
    if not isinstance(root, str):
        raise ToreidError(f"{Path(run) / 'config.json'}: field 'dataset.root' missing (an "
                          "imported checkpoint records no dataset): pass --dataset ROOT")
    return Path(root)


def dataset_occlusion_flags(root: Path) -> dict[str, bool] | None:
    """The dataset's occlusion flags (``ogor.generation.occlusion_flags``), or ``None``."""
    from ogor.generation import occlusion_flags

    return occlusion_flags(root)
