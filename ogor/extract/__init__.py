"""Extracting occluder instances from photos into an occlusion instance library (OIL).

Detector backends (torchvision, detectron2, COCO ground truth) sit behind one small protocol
(:class:`DetectorBackend`); :mod:`ogor.extract.cutout` turns masks into RGBA cutouts and judges
them; :mod:`ogor.extract.inputs` lists and decodes the input images,
:mod:`ogor.extract.state` keeps the resumable state folder, and :func:`extract_library`
(:mod:`ogor.extract.pipeline`) runs the whole resumable pipeline.
"""

from ogor.extract.base import DetectorBackend, ExtractionError, Instances
from ogor.extract.cutout import CutoutFilter
from ogor.extract.pipeline import (
    ExtractionSummary,
    ImageRef,
    coco_images,
    extract_library,
    scan_images,
    state_folder,
)
from ogor.extract.registry import build_backend, list_backends, resolve_auto

__all__ = [
    "CutoutFilter",
    "DetectorBackend",
    "ExtractionError",
    "ExtractionSummary",
    "ImageRef",
    "Instances",
    "build_backend",
    "coco_images",
    "extract_library",
    "list_backends",
    "resolve_auto",
    "scan_images",
    "state_folder",
]
