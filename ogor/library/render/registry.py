"""Renderers by class name, and rendering an instance or the whole default library.

Each family module registers its renderers with :func:`register` when ``ogor.library.render`` is
imported. An instance's random stream is seeded from ``(seed, "<class>/<variant>")``, so rendering
one class never depends on which others were rendered or in which order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ogor.errors import LibraryError
from ogor.library.taxonomy import load_taxonomy
from ogor.library.writer import LibraryWriter
from toreid.io import stable_seed

#: Seed of the shipped default library; changing it changes every shipped PNG.
DEFAULT_SEED = 20240101
#: Instances rendered per class.
VARIANTS = 4

Renderer = Callable[[np.random.Generator, int], np.ndarray]
RENDERERS: dict[str, Renderer] = {}


def register(class_name: str) -> Callable[[Renderer], Renderer]:
    """Register the renderer of one taxonomy class."""

    def wrap(func: Renderer) -> Renderer:
        RENDERERS[class_name] = func
        return func

    return wrap


def list_renderers() -> list[str]:
    """Classes that have a procedural renderer."""
    return list(RENDERERS)


def render_instance(class_name: str, variant: int, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Render variant ``variant`` of a class as H x W x 4 uint8 RGBA.

    Raises:
        LibraryError: no renderer for the class (the message lists those there are).
    """
    renderer = RENDERERS.get(class_name)
    if renderer is None:
        raise LibraryError(
            f"no procedural renderer for class '{class_name}'; renderers: " + ", ".join(RENDERERS)
        )
    rng = np.random.default_rng(stable_seed(seed, f"{class_name}/{variant}"))
    return renderer(rng, variant)


def render_default_library(
    out: str | Path, *, seed: int = DEFAULT_SEED, variants: int = VARIANTS, overwrite: bool = False
) -> Path:
    """Render every class's variants into a library folder (atomically, via LibraryWriter)."""
    taxonomy = load_taxonomy()
    missing = [name for name in taxonomy.classes if name not in RENDERERS]
    if missing:
        raise LibraryError("no procedural renderer for: " + ", ".join(missing))
    # The text names the module's old path (ogor.oil_render): it is part of the shipped
    # index.json, whose bytes must not change.
    description = (
        f"OGOR default occluders: procedurally rendered by ogor.oil_render, seed {seed}, "
        f"{variants} variants per class; made by this project, not the paper's images"
    )
    with LibraryWriter(out, overwrite, taxonomy=taxonomy, description=description) as writer:
        for name in taxonomy.classes:
            for variant in range(variants):
                writer.add(name, render_instance(name, variant, seed), detector="procedural")
    return Path(out)
