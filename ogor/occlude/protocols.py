"""Named generation protocols: a selection rule and a placement rule under one name.

* ``paper`` (default): the MGCC paper's Algorithm 1 made well defined
  (``ogor.occlude.placement``) and a per-split random selection of ``ratio`` of the images spread
  over identities (``ogor.occlude.selection``).
* ``mgcc-code``: what the released MGCC generator does, for users who want its data: the first image
  of each id run, fixed area and corner per class, off-canvas parts clipped. ``ratio`` does not
  apply. The released code's re-encoding of every image at JPEG quality 75 is *not* reproduced:
  unselected images stay byte-identical here and ``--quality`` applies to occluded ones.

Both draw the occluder uniformly from the library with the image's own seeded stream.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ogor.errors import GenerationError
from ogor.library.taxonomy import Taxonomy
from ogor.occlude.placement import InstanceLike, Placement, mgcc_code_placement, sample_placement
from ogor.occlude.selection import ImageItem, select_first_of_runs, select_paper


class InstanceSource(Protocol):
    """What a protocol needs from a library (``ogor.library.OcclusionLibrary``)."""

    taxonomy: Taxonomy

    def sample(self, rng: np.random.Generator) -> InstanceLike: ...


@dataclass(frozen=True)
class GenerationProtocol(abc.ABC):
    """A selection rule plus a placement rule.

    Attributes:
        name: registry name.
        description: one line for ``--help`` and error messages.
        uses_ratio: whether ``--ratio`` means anything under this protocol.
    """

    name: str
    description: str
    uses_ratio: bool

    @abc.abstractmethod
    def select(self, images: Sequence[ImageItem], ratio: float, seed: int) -> set[str]:
        """Paths (relative to ``imgs/``) of the images to occlude."""

    @abc.abstractmethod
    def place(
        self, rng: np.random.Generator, image_hw: tuple[int, int], library: InstanceSource
    ) -> Placement:
        """Draw an instance and its placement from the image's own stream ``rng``."""


class PaperProtocol(GenerationProtocol):
    def select(self, images: Sequence[ImageItem], ratio: float, seed: int) -> set[str]:
        return select_paper(images, ratio, seed)

    def place(
        self, rng: np.random.Generator, image_hw: tuple[int, int], library: InstanceSource
    ) -> Placement:
        return sample_placement(rng, image_hw, library.sample(rng))


class MgccCodeProtocol(GenerationProtocol):
    def select(self, images: Sequence[ImageItem], ratio: float, seed: int) -> set[str]:
        return select_first_of_runs(images)

    def place(
        self, rng: np.random.Generator, image_hw: tuple[int, int], library: InstanceSource
    ) -> Placement:
        instance = library.sample(rng)
        cls = library.taxonomy.classes[instance.class_name]
        return mgcc_code_placement(
            image_hw, instance, area_fraction=cls.mgcc_area, corner=cls.mgcc_corner
        )


PROTOCOLS: dict[str, GenerationProtocol] = {
    p.name: p
    for p in (
        PaperProtocol(
            "paper",
            "paper Algorithm 1: delta ~ U(0.1, 0.6), set-aligned position, ratio per split",
            uses_ratio=True,
        ),
        MgccCodeProtocol(
            "mgcc-code",
            "released MGCC code: first image of each id run, fixed area and corner per class",
            uses_ratio=False,
        ),
    )
}


def list_protocols() -> list[str]:
    """Names of the registered protocols."""
    return list(PROTOCOLS)


def get_protocol(name: str) -> GenerationProtocol:
    """The protocol called ``name``; the error lists the valid names."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise GenerationError(
            f"unknown protocol '{name}' (valid: {', '.join(PROTOCOLS)})"
        ) from None
