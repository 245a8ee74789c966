"""The detector backend registry: names, the options each accepts, and ``auto``.

Backend modules are imported only when built, so listing backends or using ``coco-gt`` never
imports torch models or detectron2.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from ogor.extract.base import DetectorBackend, ExtractionError


@dataclass(frozen=True)
class BackendSpec:
    """One registered backend: where its class lives and which options it accepts."""

    name: str
    target: str  # "module:attribute" of a callable returning a DetectorBackend
    options: frozenset[str]
    summary: str

    def factory(self) -> Callable[..., DetectorBackend]:
        module_name, attribute = self.target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


_MODEL_OPTIONS = frozenset(
    {
        "weights",
        "config",
        "device",
        "min_score",
        "min_size",
        "max_size",
        "mask_threshold",
        "max_detections",
        "proposals",
    }
)

_BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec(
            "torchvision",
            "ogor.extract.torchvision_backend:TorchvisionMaskRCNN",
            _MODEL_OPTIONS - {"config"},
            "torchvision maskrcnn_resnet50_fpn_v2 trained on COCO",
        ),
        BackendSpec(
            "detectron2",
            "ogor.extract.detectron2_backend:Detectron2MaskRCNN",
            _MODEL_OPTIONS - {"mask_threshold"},
            "a detectron2 model-zoo Mask R-CNN config (COCO or LVIS)",
        ),
        BackendSpec(
            "coco-gt",
            "ogor.extract.coco_gt:CocoGroundTruth",
            frozenset({"coco", "images"}),
            "ground-truth masks (polygons or RLE) of a COCO-format annotation file",
        ),
    )
}

AUTO = "auto"


def list_backends() -> list[str]:
    """Registered backend names (``auto`` is a choice of the command, not a backend)."""
    return list(_BACKENDS)


def backend_summary(name: str) -> str:
    """One line describing a backend, for ``--help`` and messages."""
    return _spec(name).summary


def detectron2_available() -> bool:
    """Whether ``import detectron2`` can work, without importing it (it is slow)."""
    try:
        return importlib.util.find_spec("detectron2") is not None
    except (ImportError, ValueError):
        # find_spec raises ValueError when sys.modules holds None for the name (a blocked import).
        return False


def resolve_auto(name: str) -> tuple[str, str | None]:
    """Resolve ``auto`` to a backend name; also return why, for the command to say.

    ``auto`` prefers detectron2 because its LVIS configs cover post, stone and card, which COCO
    lacks; torchvision ships with the project, so it is the fallback.
    """
    if name != AUTO:
        return name, None
    if detectron2_available():
        return "detectron2", "detectron2 is installed"
    return "torchvision", "detectron2 is not installed"


def build_backend(name: str, **options: object) -> DetectorBackend:
    """Build a backend by registry name (or ``auto``) with the options it accepts.

    Options left as ``None`` are treated as not given. An option the backend does not take is
    an error rather than silently ignored (``--weights`` with ``coco-gt`` is a user mistake).

    Raises:
        ExtractionError: unknown name (the message lists the valid ones) or unsupported option.
    """
    name, _ = resolve_auto(name)
    spec = _spec(name)
    given = {key: value for key, value in options.items() if value is not None}
    unsupported = sorted(set(given) - spec.options)
    if unsupported:
        raise ExtractionError(
            f"backend '{name}' does not take option(s) {', '.join(unsupported)}; "
            f"it takes: {', '.join(sorted(spec.options))}"
        )
    return spec.factory()(**given)


def _spec(name: str) -> BackendSpec:
    try:
        return _BACKENDS[name]
    except KeyError:
        valid = ", ".join([AUTO, *_BACKENDS])
        raise ExtractionError(f"unknown backend '{name}'; valid backends: {valid}") from None
