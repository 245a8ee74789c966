"""``bench export``: a run's selected weights as a ``.safetensors`` file that carries its config.

``.safetensors`` holds tensors and a string-to-string header, nothing executable, so it is the
format to share trained models in. The header records the model's config (as JSON), so that
:func:`load_exported` rebuilds the model from the file alone, with no pickle anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from benchmark.records.checkpoints import load_model_weights
from toreid.errors import ToreidError

FORMAT = "toreid-model"


def export_safetensors(run: str | Path, out: str | Path) -> Path:
    """Write ``run``'s ``best.pt`` model weights and model config to ``out`` (atomically)."""
    from safetensors.torch import save

    from benchmark.records.rebuild import rebuild_from_run
    from toreid.io import atomic_write_bytes

    model, config = rebuild_from_run(Path(run))
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "model": str(config["model"].get("name", "")),
                "model_config": json.dumps(config["model"]["config"])}
    out = Path(out)
    atomic_write_bytes(out, save(tensors, metadata=metadata))
    return out


def load_exported(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model a :func:`export_safetensors` file describes, with its weights."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from models import build_model_from_config

    path = Path(path)
    if not path.is_file():
        raise ToreidError(f"{path}: exported model not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt file
        raise ToreidError(f"{path}: not a readable .safetensors file ({type(exc).__name__})"
                          ) from None
    if metadata.get("format") != FORMAT or "model_config" not in metadata:
        raise ToreidError(f"{path}: field 'model_config' missing from the header: not a "
                          "model exported by 'bench export'")
    config = json.loads(metadata["model_config"])
    model = build_model_from_config(config, load_pretrained=False)
    load_model_weights(model, state, path, f"model '{metadata.get('model', '?')}'")
    return model, config
