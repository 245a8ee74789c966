"""What every detector backend returns, and the small protocol the extraction pipeline sees.

A backend answers in its *own* label space (COCO names, LVIS names, or the category names of a
ground-truth file); mapping labels to the 15 occlusion classes is the taxonomy's job, so a new
detector never needs to know the taxonomy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from ogor.errors import ToreidError

LabelSpace = Literal["coco", "lvis", "gt"]


@dataclass(frozen=True)
class Instances:
    """Instance masks found in one image.

    Attributes:
        masks: bool array ``[N, H, W]``, one full-image mask per instance.
        labels: N label names in the backend's label space (e.g. ``"fire hydrant"``).
        scores: float array ``[N]``; ground truth uses 1.0.
    """

    masks: np.ndarray
    labels: list[str]
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    def __post_init__(self) -> None:
        if self.masks.ndim != 3:
            raise ValueError(f"masks must be [N, H, W], got shape {self.masks.shape}")
        n = self.masks.shape[0]
        if len(self.labels) != n or len(self.scores) != n:
            raise ValueError(
                f"{n} masks but {len(self.labels)} labels and {len(self.scores)} scores"
            )

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @classmethod
    def empty(cls, height: int, width: int) -> Instances:
        """No instances in an image of the given size."""
        return cls(
            masks=np.zeros((0, height, width), dtype=bool),
            labels=[],
            scores=np.zeros(0, dtype=np.float32),
        )


@runtime_checkable
class DetectorBackend(Protocol):
    """A source of instance masks.

    ``predict`` receives the image as H x W x 3 uint8 RGB. ``image_path`` is given for backends
    that look masks up rather than compute them (``coco-gt``); model backends ignore it.
    """

    #: registry name, e.g. ``"torchvision"``.
    name: str
    #: which taxonomy mapping applies to ``Instances.labels``.
    label_space: LabelSpace
    #: provenance string stored in the library, e.g. ``"torchvision:maskrcnn_resnet50_fpn_v2"``.
    detector: str

    def predict(self, image_rgb: np.ndarray, *, image_path: Path | None = None) -> Instances:
        """Instance masks of one image."""
        ...

    def settings(self) -> dict[str, object]:
        """Everything about the backend that changes its output (for resume checks)."""
        ...


class ExtractionError(ToreidError):
    """A user-fixable problem while extracting instances (weights, backend, options, images)."""


def resolve_device(device: str) -> str:
    """Check a ``--device`` value against what this machine has."""
    import torch

    if device == "cpu":
        return device
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ExtractionError(
                f"--device {device} requested but CUDA is not available "
                f"(torch {torch.__version__}); use --device cpu"
            )
        return device
    raise ExtractionError(f"unknown device '{device}'; valid devices: cpu, cuda, cuda:N")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type name), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
