"""The torch device a command runs on (shared by every stage)."""

from __future__ import annotations

import torch

from toreid.errors import ToreidError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available else CPU; a CUDA request without CUDA is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ToreidError("device 'cuda' requested but CUDA is not available (use --device "
                              "cpu or auto)")
        if name == "cuda":
            name = f"cuda:{local_rank}"
    elif name != "cpu":
        raise ToreidError(f"unknown device {name!r} (valid: auto, cpu, cuda, cuda:N)")
    return torch.device(name)
