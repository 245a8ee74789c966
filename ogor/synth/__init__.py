"""The synthetic demo dataset (``ogor synth``): rendered pedestrians, captions from attributes.

It exists so that every part of the project (generation, training, evaluation, the tests) can run
end to end without the real datasets, which users must obtain from their authors. It is
SYNTHETIC data and must never be presented as a real dataset: the root gets a ``SYNTHETIC.md``
note and the annotation file holds nothing that could pass for real captions of real people.

Design choices that matter downstream:

* Learnable: each identity has a distinct tuple of visible attributes (gender and hair, upper
  garment type and colour, lower garment type and colour, shoes colour, hat, handbag, backpack),
  drawn as large flat regions in a palette of well separated named colours, so a small model can
  tell identities apart from the attributes the captions name, even at 64x32.
* Views vary (pose, scale, shift, flip, lighting, background) but keep the attributes.
* The captions name what occlusion hides (shoes, trousers, bags), which is the point of TO-ReID.
* Deterministic: each identity, view and caption draws from its own random stream seeded by
  ``stable_seed(seed, key)``; JPEG quality is fixed and nothing records a time, so the same
  arguments give identical bytes.
* ``synth-attributes.json`` keeps the ground truth: attributes and pixel boxes of each region
  (with a ``sample`` box inside it that only that region's colour covers), so tests can check
  that what a caption says matches the pixels.

Rooms: ``attributes`` (identities and views), ``person`` (the renderer), ``captions`` (the caption
writer) and ``dataset`` (writing the root: splits, paths, annotation, ground truth).
"""

from __future__ import annotations

from ogor.synth.attributes import (
    BACKGROUNDS,
    HAIR_COLOURS,
    HAIR_STYLES,
    JEANS_COLOURS,
    LOWER_TYPES,
    P_BACKPACK,
    P_HANDBAG,
    P_HAT,
    PALETTE,
    SKIN_TONES,
    UPPER_TYPES,
    PersonAttributes,
    ViewParams,
    sample_attributes,
    sample_identities,
    sample_view,
)
from ogor.synth.captions import (
    BACKPACK_NOUNS,
    BAG_NOUNS,
    CAPTION_TEMPLATES,
    HAT_NOUNS,
    LOWER_NOUNS,
    PERSON_NOUNS,
    SHOE_NOUNS,
    UPPER_NOUNS,
    make_captions,
)
from ogor.synth.dataset import (
    ATTRIBUTES_FILE,
    CAMERAS,
    CAPTIONS_PER_IMAGE,
    FIRST_ID,
    JPEG_QUALITY,
    NOTE_FILE,
    SPLIT_SHARES,
    image_path,
    is_synthetic,
    parse_size,
    split_of_identities,
    synthesize,
)
from ogor.synth.person import (
    Point,
    Regions,
    render_person,
)

__all__ = [
    "ATTRIBUTES_FILE",
    "BACKGROUNDS",
    "BACKPACK_NOUNS",
    "BAG_NOUNS",
    "CAMERAS",
    "CAPTIONS_PER_IMAGE",
    "CAPTION_TEMPLATES",
    "FIRST_ID",
    "HAIR_COLOURS",
    "HAIR_STYLES",
    "HAT_NOUNS",
    "JEANS_COLOURS",
    "JPEG_QUALITY",
    "LOWER_NOUNS",
    "LOWER_TYPES",
    "NOTE_FILE",
    "PALETTE",
    "PERSON_NOUNS",
    "P_BACKPACK",
    "P_HANDBAG",
    "P_HAT",
    "PersonAttributes",
    "Point",
    "Regions",
    "SHOE_NOUNS",
    "SKIN_TONES",
    "SPLIT_SHARES",
    "UPPER_NOUNS",
    "UPPER_TYPES",
    "ViewParams",
    "image_path",
    "is_synthetic",
    "make_captions",
    "parse_size",
    "render_person",
    "sample_attributes",
    "sample_identities",
    "sample_view",
    "split_of_identities",
    "synthesize",
]
