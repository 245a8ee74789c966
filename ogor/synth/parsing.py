"""Human-parsing maps of a synthetic dataset, from the region boxes its renderer recorded.

ViTAA (``models/methods/vitaa.py``) trains each attribute branch against a human-parsing mask.
On real data those masks come from any human parser the user runs (see ``docs/parsing.md`` for
the label convention); the synthetic demo knows where it drew each garment
(``synth-attributes.json`` keeps every region's pixel box), so it can write the same maps itself.

The maps are boxes painted in the renderer's drawing order (backpack, legs, shoes, torso, head,
hat, handbag: later regions cover earlier ones, as in the picture), so they are coarser than a
parser's output: a box also covers the background beside a garment. That is enough to tell a
branch where its attribute is, which is what ViTAA's supervision asks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ogor.errors import DatasetError
from toreid.io import atomic_write_bytes

#: Label convention of a parsing map (one 8-bit grey PNG per image): pixel value -> attribute.
PARSING_LABELS: dict[int, str] = {0: "background", 1: "head", 2: "upper", 3: "lower",
                                  4: "shoes", 5: "bag"}
#: Synthetic region name -> label, in the renderer's drawing order.
REGION_LABELS: tuple[tuple[str, int], ...] = (
    ("backpack", 5), ("legs", 3), ("shoes", 4), ("torso", 2), ("head", 1), ("hat", 1), ("bag", 5),
)
MARKER_FILE = "ogor-parsing.json"


def parsing_map(regions: dict[str, Any], size: tuple[int, int]) -> np.ndarray:
    """The ``[H, W]`` uint8 label map of one image's region boxes (``[x, y, w, h]`` pixels)."""
    height, width = size
    labels = np.zeros((height, width), dtype=np.uint8)
    for name, label in REGION_LABELS:
        region = regions.get(name)
        if not region:
            continue
        x, y, w, h = (int(v) for v in region["box"])
        labels[max(0, y):max(0, y + h), max(0, x):max(0, x + w)] = label
    return labels


def write_parsing_maps(synth_root: str | Path, out: str | Path) -> Path:
    """Write one PNG parsing map per image of a synthetic dataset under ``out`` (the image's
    relative path with ``.png``), plus ``ogor-parsing.json`` naming the labels and the source.

    Nothing is written inside ``synth_root``. Returns ``out``.
    """
    root, out = Path(synth_root), Path(out)
    attributes_file = root / "synth-attributes.json"
    if not attributes_file.is_file():
        raise DatasetError(attributes_file, "not found: parsing maps can be made only for an "
                           "`ogor synth` dataset; run a human parser for real images")
    try:
        truth = json.loads(attributes_file.read_text(encoding="utf-8"))
        size = tuple(int(v) for v in truth["arguments"]["size"])
        images = truth["images"]
    except (ValueError, KeyError, TypeError) as error:
        raise DatasetError(attributes_file, f"unreadable ground truth ({error})") from None
    if out.resolve().is_relative_to(root.resolve()):
        raise DatasetError(out, "parsing maps must not be written inside the source dataset",
                           field="out")
    for rel, entry in images.items():
        target = out / Path(rel).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(parsing_map(entry.get("regions", {}), size), mode="L")
        image.save(target, format="PNG")
    atomic_write_bytes(out / MARKER_FILE, json.dumps({
        "format": "ogor-parsing", "version": 1, "source": str(root.resolve()),
        "labels": {str(k): v for k, v in PARSING_LABELS.items()}, "images": len(images),
    }, indent=1).encode("utf-8"))
    return out
