"""What ``extract-oil`` reads: the input images (a folder, or a COCO file's list) and their pixels.

Images are decoded with their EXIF orientation applied (phone photos are often stored sideways),
unlike generation, which must keep pixels where a placement's box puts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ogor.errors import DatasetError, ToreidError
from ogor.extract.base import ExtractionError, first_line
from toreid.io import read_json

#: File suffixes treated as images when scanning a folder (case-insensitive).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class ImageRef:
    """One input image: its file, its key (path relative to the input root, POSIX), the root."""

    path: Path
    key: str
    root: Path


def scan_images(folder: str | Path) -> list[ImageRef]:
    """Every image file under ``folder`` (recursively), sorted by relative path.

    Raises:
        ExtractionError: the folder does not exist or holds no image.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ExtractionError(f"{root}: input folder not found")
    refs = [
        ImageRef(path, path.relative_to(root).as_posix(), root)
        for path in root.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    ]
    if not refs:
        raise ExtractionError(
            f"{root}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return sorted(refs, key=lambda ref: ref.key)


def coco_images(coco_file: str | Path, images_dir: str | Path | None = None) -> list[ImageRef]:
    """The images a COCO annotation file lists, in file order.

    Raises:
        DatasetError: the file is unreadable or an entry has no ``file_name``.
    """
    coco_file = Path(coco_file)
    root = Path(images_dir) if images_dir is not None else coco_file.parent
    try:
        data = read_json(coco_file, "COCO annotation file")
    except ToreidError as exc:
        raise DatasetError(coco_file, str(exc).split(": ", 1)[-1]) from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetError(coco_file, "missing or not a list", field="images")
    refs = []
    for index, image in enumerate(data["images"]):
        name = image.get("file_name") if isinstance(image, dict) else None
        if not isinstance(name, str) or not name:
            raise DatasetError(coco_file, "missing", index=index, field="images.file_name")
        path = root / name
        if not is_inside(path, root):
            raise DatasetError(
                coco_file, f"'{name}' escapes {root}", index=index, field="images.file_name"
            )
        refs.append(ImageRef(path, Path(name).as_posix(), root))
    return refs


def read_image(path: Path) -> np.ndarray:
    """Decode an image as H x W x 3 uint8 RGB, applying its EXIF orientation.

    Photos from phones are often stored sideways with an EXIF rotation flag; cutting
    instances out of the raw pixels would give sideways occluders.

    Raises:
        DatasetError: missing or undecodable file (one line naming it).
    """
    from PIL import Image, ImageOps

    if not path.is_file():
        raise DatasetError(path, "image file not found")
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DatasetError(path, f"cannot decode image ({first_line(exc)})") from exc


def is_inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
