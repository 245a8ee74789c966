"""The occlusion instance library (OIL): what occluders there are, and how a library is made.

Rooms: ``taxonomy`` (the 15 classes and their position sets, from ``oil_assets/taxonomy.json``),
``oil`` (a loaded, verified library and its instances), ``png`` (metadata-free PNG codec),
``writer`` (build a library aside, publish ``index.json`` last), ``importer`` (a folder of PNGs,
or the MGCC release), ``sheet`` (a contact sheet of a library) and ``render`` (the embedded
default library, drawn by code, one module per occluder family).
"""

from __future__ import annotations

from ogor.library.oil import OcclusionInstance, OcclusionLibrary, default_library_path
from ogor.library.taxonomy import Taxonomy, load_taxonomy
from ogor.library.writer import LibraryWriter

__all__ = [
    "LibraryWriter",
    "OcclusionInstance",
    "OcclusionLibrary",
    "Taxonomy",
    "default_library_path",
    "load_taxonomy",
]
