"""Occluding one image, the pure parts: which images, where the occluder goes, how it is pasted.

Rooms: ``selection`` (which images of a split are occluded), ``placement`` (a frozen
:class:`~ogor.occlude.placement.Placement` sampled from a random stream), ``compose`` (pasting an
occluder as a placement says) and ``protocols`` (a selection rule and a placement rule under one
name: ``paper``, ``mgcc-code``). Nothing here reads or writes files.
"""

from __future__ import annotations

from ogor.occlude.placement import Placement, sample_placement
from ogor.occlude.protocols import get_protocol, list_protocols

__all__ = ["Placement", "get_protocol", "list_protocols", "sample_placement"]
