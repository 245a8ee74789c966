"""OGOR: the occlusion generator for text-based occluded person re-identification.

It makes data: occlusion instance libraries (OIL) and Occluded-* versions of the CUHK-PEDES,
ICFG-PEDES and RSTPReid datasets, each with a manifest that records every paste.

The public API, for code outside ``ogor`` (``benchmark/``, users' scripts): ``ogor.datasets``
(read, validate and write the source formats), ``ogor.library`` (occlusion instance libraries),
``ogor.occlude`` (protocols and placements), ``ogor.generation`` (``generate_dataset``,
``verify_dataset``, ``occlusion_flags``), ``ogor.synth`` (the synthetic demo dataset),
``ogor.imageio`` and ``ogor.errors``. Modules whose name starts with ``_`` are private.
``docs/architecture.md`` walks through the rooms.
"""

__version__ = "0.1.0"
