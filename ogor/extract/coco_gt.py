"""Ground-truth masks from a COCO-format annotation file as a "detector" backend.

No model runs: ``predict`` looks the image up by its file name and decodes its annotations
(polygons or RLE, through pycocotools). Labels are the category names of the file, which the
pipeline maps to occluder classes through the taxonomy (COCO names, LVIS names or class names
and aliases all work). Crowd annotations (``iscrowd: 1``) are skipped: they mark a group of
objects, not one instance that could be cut out.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from ogor.errors import DatasetError, ToreidError
from ogor.extract.base import Instances
from toreid.io import read_json, sha256_file


def _quiet_coco(dataset: dict):
    """A pycocotools ``COCO`` over an already parsed dict, without its prints to stdout."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


class CocoGroundTruth:
    """Masks of a COCO annotation file.

    Args:
        coco: the annotation JSON file.
        images: the folder holding the images named by ``file_name`` (default: the JSON's
            folder).
    """

    name = "coco-gt"
    label_space = "gt"
    detector = "coco-gt"

    def __init__(self, *, coco: str | Path, images: str | Path | None = None) -> None:
        self.coco_file = Path(coco)
        self.images_dir = Path(images) if images is not None else self.coco_file.parent
        try:
            data = read_json(self.coco_file, "COCO annotation file")
        except ToreidError as exc:
            raise DatasetError(self.coco_file, str(exc).split(": ", 1)[-1]) from exc
        self._check(data)
        self._coco = _quiet_coco(data)
        self._by_file: dict[str, int] = {}
        for image in data["images"]:
            self._by_file[self._key(self.images_dir / image["file_name"])] = image["id"]
        self._names = {c["id"]: str(c["name"]) for c in data["categories"]}
        self._sha256 = sha256_file(self.coco_file)

    def _check(self, data: object) -> None:
        """Validate the fields this backend relies on, naming the first bad one."""
        if not isinstance(data, dict):
            raise DatasetError(self.coco_file, "must be a JSON object")
        for key in ("images", "annotations", "categories"):
            if not isinstance(data.get(key), list):
                raise DatasetError(self.coco_file, "missing or not a list", field=key)
        for index, image in enumerate(data["images"]):
            for key in ("id", "file_name", "height", "width"):
                if not isinstance(image, dict) or key not in image:
                    raise DatasetError(
                        self.coco_file, "missing", index=index, field=f"images.{key}"
                    )
        category_ids = set()
        for index, category in enumerate(data["categories"]):
            for key in ("id", "name"):
                if not isinstance(category, dict) or key not in category:
                    raise DatasetError(
                        self.coco_file, "missing", index=index, field=f"categories.{key}"
                    )
            category_ids.add(category["id"])
        image_ids = {image["id"] for image in data["images"]}
        for index, ann in enumerate(data["annotations"]):
            for key in ("image_id", "category_id", "segmentation"):
                if not isinstance(ann, dict) or key not in ann:
                    raise DatasetError(
                        self.coco_file, "missing", index=index, field=f"annotations.{key}"
                    )
            if ann["image_id"] not in image_ids:
                raise DatasetError(
                    self.coco_file,
                    f"unknown image id {ann['image_id']!r}",
                    index=index,
                    field="annotations.image_id",
                )
            if ann["category_id"] not in category_ids:
                raise DatasetError(
                    self.coco_file,
                    f"unknown category id {ann['category_id']!r}",
                    index=index,
                    field="annotations.category_id",
                )

    @staticmethod
    def _key(path: Path) -> str:
        return str(path.resolve())

    def image_paths(self) -> list[Path]:
        """The images the file annotates, in file order."""
        return [self.images_dir / image["file_name"] for image in self._coco.dataset["images"]]

    def settings(self) -> dict[str, object]:
        return {"backend": self.name, "coco_sha256": self._sha256}

    def predict(self, image_rgb: np.ndarray, *, image_path: Path | None = None) -> Instances:
        height, width = image_rgb.shape[:2]
        if image_path is None:
            raise ValueError("coco-gt needs the image path to look up its annotations")
        image_id = self._by_file.get(self._key(Path(image_path)))
        if image_id is None:
            return Instances.empty(height, width)
        entry = self._coco.imgs[image_id]
        if (entry["height"], entry["width"]) != (height, width):
            raise DatasetError(
                self.coco_file,
                f"image {entry['file_name']} is {width}x{height} but the file says "
                f"{entry['width']}x{entry['height']}",
                field="images.height/width",
            )
        masks: list[np.ndarray] = []
        labels: list[str] = []
        for ann in self._coco.imgToAnns.get(image_id, []):
            if ann.get("iscrowd", 0):
                continue
            try:
                mask = self._coco.annToMask(ann).astype(bool)
            except Exception as exc:  # pycocotools raises bare errors on bad segmentations
                raise DatasetError(
                    self.coco_file,
                    f"cannot decode the segmentation of annotation {ann.get('id')!r} "
                    f"({type(exc).__name__})",
                    field="annotations.segmentation",
                ) from exc
            masks.append(mask)
            labels.append(self._names[ann["category_id"]])
        if not masks:
            return Instances.empty(height, width)
        return Instances(
            masks=np.stack(masks),
            labels=labels,
            scores=np.ones(len(masks), dtype=np.float32),
        )
