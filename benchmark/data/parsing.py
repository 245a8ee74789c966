"""Per-image human-parsing masks for models that train against them (ViTAA).

A model that needs them declares ``train_inputs = ("parsing",)``; ``bench run`` then finds the
folder of parsing maps (:func:`resolve_parsing_dir`), records it in the model options (so in
``config.json``), and :class:`ParsingMaps` hands each training sample its label map, resized
with nearest neighbour to the model's image size. The label convention is
``ogor.synth.parsing.PARSING_LABELS`` (``docs/parsing.md``): one 8-bit grey PNG per image at
``<folder>/<image path relative to the image folder, with .png>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ogor.errors import DatasetError, ToreidError
from ogor.synth.parsing import MARKER_FILE, PARSING_LABELS

HOW_TO = ("pass --model-opt parsing_dir=DIR: one 8-bit PNG per image, labels 0-5 as in "
          "docs/parsing.md, made by any human parser (for an `ogor synth` dataset: "
          "ogor synth-parsing ROOT DIR)")


def needs_parsing(model: torch.nn.Module) -> bool:
    return "parsing" in getattr(model, "train_inputs", ())


def resolve_parsing_dir(model_name: str, options: dict[str, Any], dataset_root: Path) -> Path:
    """The parsing-map folder: the ``parsing_dir`` option, else a ``parsing`` folder with an
    ``ogor-parsing.json`` beside the dataset root (what the embedded demo writes). Raises a
    one-line error that says how to make the maps when there is none."""
    given = options.get("parsing_dir")
    if given:
        folder = Path(given).expanduser()
        if not folder.is_dir():
            raise ToreidError(f"{folder}: parsing_dir is not a folder ({HOW_TO})")
        return folder
    beside = Path(dataset_root).resolve().parent / "parsing"
    if (beside / MARKER_FILE).is_file():
        return beside
    raise ToreidError(f"model '{model_name}' trains against human-parsing masks and "
                      f"{dataset_root} has none: {HOW_TO}")


class ParsingMaps:
    """Label maps ``[H, W]`` (int64) of a dataset's images, from one folder."""

    def __init__(self, folder: Path, size: tuple[int, int]) -> None:
        self.folder, self.size = Path(folder), (int(size[0]), int(size[1]))
        marker = self.folder / MARKER_FILE
        if marker.is_file():
            try:
                json.loads(marker.read_text(encoding="utf-8"))
            except ValueError:
                raise DatasetError(marker, "not valid JSON") from None

    def path_of(self, image_rel: str) -> Path:
        return self.folder / Path(image_rel).with_suffix(".png")

    def get(self, image_rel: str) -> torch.Tensor:
        path = self.path_of(image_rel)
        try:
            with Image.open(path) as img:
                if img.mode not in ("L", "P"):
                    raise DatasetError(path, f"a parsing map must be an 8-bit grey PNG, got "
                                       f"mode {img.mode}")
                img = img.resize((self.size[1], self.size[0]), Image.NEAREST)
                labels = np.asarray(img, dtype=np.int64).copy()
        except FileNotFoundError:
            raise DatasetError(path, f"parsing map not found ({HOW_TO})") from None
        except (UnidentifiedImageError, OSError) as error:
            raise DatasetError(path, f"cannot decode parsing map: {error}") from None
        if labels.size and int(labels.max()) > max(PARSING_LABELS):
            raise DatasetError(path, f"label {int(labels.max())} outside 0-{max(PARSING_LABELS)}"
                               " (docs/parsing.md)")
        return torch.from_numpy(labels)
