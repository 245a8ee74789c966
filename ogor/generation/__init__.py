"""Building an Occluded-* dataset and checking it: the orchestrator and its receipts.

Rooms: ``generate`` (the orchestrator, :func:`generate_dataset`), ``worker`` (tasks and the
per-process worker), ``plan`` (tasks, output records, annotation, counts), ``journal`` (the
output folder's states, journal and resume, the final rename), ``summary`` (what a run made),
``manifest`` (write, read and query ``ogor-manifest.json``), ``verify`` (check a dataset against
its manifest) and ``preview`` (source | occluded pairs, the paper's Figure 2). Images are read and
encoded through :mod:`ogor.imageio`.
"""

from __future__ import annotations

from ogor.generation.generate import generate_dataset
from ogor.generation.manifest import MANIFEST_NAME, occlusion_flags, read_manifest
from ogor.generation.preview import make_preview
from ogor.generation.summary import GenerationSummary
from ogor.generation.verify import VerifyReport, verify_dataset

__all__ = [
    "MANIFEST_NAME",
    "GenerationSummary",
    "VerifyReport",
    "generate_dataset",
    "make_preview",
    "occlusion_flags",
    "read_manifest",
    "verify_dataset",
]
