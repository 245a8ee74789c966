"""A detectron2 model-zoo Mask R-CNN (COCO or LVIS v1) as a detector backend.

detectron2 is optional: it is not on the package registry, so users build it from its source.
It is imported only when this backend is built, and its absence is a one-line error that says
how to install it.

The default config is the LVIS v1 Mask R-CNN, because LVIS names the three paper classes COCO
lacks (post, stone, card: pole / milestone / signboard and their kin); ``coco`` picks the COCO
model, which is better on the twelve classes both share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ogor.extract.base import ExtractionError, Instances, first_line, resolve_device

#: Short names for the two model-zoo configs this project documents.
CONFIG_ALIASES: dict[str, str] = {
    "coco": "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
    "lvis": "LVISv1-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
}
DEFAULT_CONFIG = "lvis"

INSTALL_HINT = (
    "detectron2 is not installed; install it from source: "
    "pip install wheel 'setuptools<81' && "
    "pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git'"
    " (or use --backend torchvision)"
)


def import_detectron2():
    """Import detectron2 or raise the one-line install hint."""
    try:
        import detectron2  # noqa: F401
        from detectron2 import model_zoo  # noqa: F401
    except ImportError as exc:
        raise ExtractionError(INSTALL_HINT) from exc
    import detectron2

    return detectron2


def resolve_config(config: str | None) -> tuple[str, Path, bool]:
    """Turn ``--config`` into (name for provenance, YAML file, whether it is a zoo config).

    Accepts an alias (``coco``, ``lvis``), a model-zoo name
    (``COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml``) or a local YAML file.
    """
    from detectron2 import model_zoo

    name = CONFIG_ALIASES.get(config or DEFAULT_CONFIG, config or DEFAULT_CONFIG)
    local = Path(name)
    if local.suffix in (".yaml", ".yml") and local.is_file():
        return str(local), local, False
    try:
        return name, Path(model_zoo.get_config_file(name)), True
    except RuntimeError as exc:
        aliases = ", ".join(f"{k} ({v})" for k, v in CONFIG_ALIASES.items())
        raise ExtractionError(
            f"--config '{config}': neither a YAML file nor a detectron2 model-zoo config; "
            f"try {aliases}"
        ) from exc


class Detectron2MaskRCNN:
    """A detectron2 Mask R-CNN.

    Args:
        config: alias, model-zoo config name or YAML file (default: LVIS v1 R50-FPN).
        weights: a checkpoint file (``.pth`` state dict or detectron2 ``.pkl``); ``None``
            downloads the model-zoo checkpoint of a zoo config (needs a network).
        device: ``cpu`` or ``cuda[:N]``.
        min_score: the test-time score threshold of the ROI heads.
        min_size, max_size: test-time resize bounds (``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST``);
            ``None`` keeps the config's.
        max_detections: most instances per image (``TEST.DETECTIONS_PER_IMAGE``).
        proposals: region proposals per image (``MODEL.RPN.POST_NMS_TOPK_TEST``).
    """

    name = "detectron2"

    def __init__(
        self,
        *,
        config: str | None = None,
        weights: str | Path | None = None,
        device: str = "cpu",
        min_score: float = 0.05,
        min_size: int | None = None,
        max_size: int | None = None,
        max_detections: int | None = None,
        proposals: int | None = None,
    ) -> None:
        import_detectron2()
        import torch
        from detectron2.config import get_cfg
        from detectron2.data import MetadataCatalog
        from detectron2.data import transforms as T
        from detectron2.modeling import build_model

        self.device = resolve_device(device)
        self.config_name, config_file, from_zoo = resolve_config(config)
        cfg = get_cfg()
        cfg.merge_from_file(str(config_file))
        if weights is not None:
            path = Path(weights)
            if not path.is_file():
                raise ExtractionError(f"{path}: weights file not found (--weights)")
            cfg.MODEL.WEIGHTS = str(path)
        elif from_zoo:
            from detectron2 import model_zoo

            cfg.MODEL.WEIGHTS = model_zoo.get_checkpoint_url(self.config_name)
        else:
            raise ExtractionError(f"{config_file}: a local config needs --weights FILE")
        if not cfg.MODEL.MASK_ON:
            raise ExtractionError(
                f"{config_file}: MODEL.MASK_ON is false; extract-oil needs a Mask R-CNN config"
            )
        cfg.MODEL.DEVICE = self.device
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = float(min_score)
        if min_size is not None:
            cfg.INPUT.MIN_SIZE_TEST = int(min_size)
        if max_size is not None:
            cfg.INPUT.MAX_SIZE_TEST = int(max_size)
        if max_detections is not None:
            cfg.TEST.DETECTIONS_PER_IMAGE = int(max_detections)
        if proposals is not None:
            cfg.MODEL.RPN.POST_NMS_TOPK_TEST = int(proposals)
        cfg.freeze()
        self.cfg = cfg

        dataset = cfg.DATASETS.TEST[0] if len(cfg.DATASETS.TEST) else ""
        self.categories = list(MetadataCatalog.get(dataset).get("thing_classes", []))
        if len(self.categories) != cfg.MODEL.ROI_HEADS.NUM_CLASSES:
            raise ExtractionError(
                f"{config_file}: {cfg.MODEL.ROI_HEADS.NUM_CLASSES} classes but dataset "
                f"'{dataset}' names {len(self.categories)}; cannot label detections"
            )
        self.label_space = "lvis" if dataset.startswith("lvis") else "coco"
        self.detector = f"detectron2:{self.config_name}"

        model = build_model(cfg)
        from ogor.extract.safe_weights import data_only_checkpointer

        try:  # weights read as data only (never unpickled): see ogor.extract.safe_weights
            data_only_checkpointer(model).load(cfg.MODEL.WEIGHTS)
        except ExtractionError:
            raise
        except Exception as exc:  # download failures, unreadable files: all user-fixable
            raise ExtractionError(
                f"{cfg.MODEL.WEIGHTS}: cannot load detectron2 weights "
                f"({type(exc).__name__}: {first_line(exc)}); pass --weights FILE"
            ) from exc
        self.model = model.eval()
        self.resize = T.ResizeShortestEdge(
            [cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST
        )
        self._torch = torch

    def settings(self) -> dict[str, object]:
        return {
            "backend": self.name,
            "config": self.config_name,
            "weights": self.cfg.MODEL.WEIGHTS,
            "min_size": self.cfg.INPUT.MIN_SIZE_TEST,
            "max_size": self.cfg.INPUT.MAX_SIZE_TEST,
            "max_detections": self.cfg.TEST.DETECTIONS_PER_IMAGE,
            "proposals": self.cfg.MODEL.RPN.POST_NMS_TOPK_TEST,
        }

    def predict(self, image_rgb: np.ndarray, *, image_path: Path | None = None) -> Instances:
        torch = self._torch
        height, width = image_rgb.shape[:2]
        image = image_rgb if self.cfg.INPUT.FORMAT == "RGB" else image_rgb[:, :, ::-1]
        resized = self.resize.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(
            np.ascontiguousarray(resized.transpose(2, 0, 1)), dtype=torch.float32
        )
        with torch.inference_mode():
            output = self.model([{"image": tensor, "height": height, "width": width}])[0]
        found = output["instances"].to("cpu")
        if len(found) == 0:
            return Instances.empty(height, width)
        return Instances(
            masks=found.pred_masks.numpy().astype(bool),
            labels=[self.categories[int(i)] for i in found.pred_classes],
            scores=found.scores.float().numpy(),
        )
