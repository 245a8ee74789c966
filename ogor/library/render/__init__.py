"""The embedded default occluder library, drawn by code: 15 classes, 4 variants each.

The paper's own occluders (MGCC repository) carry no licence, so the project ships occluders it
makes itself. Each class has a registered renderer that draws a recognisable silhouette from
simple parts (polygons, ellipses, thick lines) with shading (gradients, cylinder and sphere
light), a little seeded texture and soft anti-aliased alpha edges (see ``canvas``).

Everything is deterministic: the random stream of an instance is seeded from
``(DEFAULT_SEED, "<class>/<variant>")`` and PNGs are written by
:func:`ogor.library.png.encode_png` (fixed compression, no metadata), so
``ogor render-default-oil`` reproduces the shipped files byte for byte.

Rooms: ``canvas`` (the drawing surface and the shared colours), ``registry`` (renderers by class
name; rendering one instance or the library) and one module per occluder family: ``carried``,
``street``, ``vehicles``, ``people``. Importing this package registers every renderer.
"""

from __future__ import annotations

from ogor.library.render import carried, people, street, vehicles
from ogor.library.render.registry import (
    DEFAULT_SEED,
    RENDERERS,
    VARIANTS,
    list_renderers,
    register,
    render_default_library,
    render_instance,
)

#: The family modules, imported for the renderers they register.
FAMILIES = (carried, street, vehicles, people)

__all__ = [
    "DEFAULT_SEED",
    "FAMILIES",
    "RENDERERS",
    "VARIANTS",
    "list_renderers",
    "register",
    "render_default_library",
    "render_instance",
]
