"""torchvision ``maskrcnn_resnet50_fpn_v2`` (COCO) as a detector backend.

Weights are looked for in this order, so the backend works offline from a local file and online
for users with a network:

1. ``weights=FILE`` (``--weights``): a state dict saved with ``torch.save``.
2. The standard model-zoo cache, ``<torch.hub.get_dir()>/checkpoints/<file of the COCO_V1 url>``
   (``$TORCH_HOME/hub/checkpoints/maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth``).
3. A download through torchvision's weights enum, which fills that cache.

When all three fail the error says where to put the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from ogor.extract.base import ExtractionError, Instances, first_line, resolve_device

ARCHITECTURE = "maskrcnn_resnet50_fpn_v2"


def default_weights_file() -> Path:
    """Where torchvision keeps the COCO weights of this model once downloaded."""
    import torch
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights

    url = MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def coco_categories() -> list[str]:
    """The 91 COCO category names in model output order (``__background__`` and ``N/A`` too).

    They ship in the weights enum's metadata, so they are known offline.
    """
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights

    return list(MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.meta["categories"])


def load_state_dict(weights: str | Path | None) -> tuple[dict, str]:
    """Find and load the weights; return them and a description of where they came from."""
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise ExtractionError(f"{path}: weights file not found (--weights)")
        return _load_file(path), str(path)
    cached = default_weights_file()
    if cached.is_file():
        return _load_file(cached), str(cached)
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights

    try:
        state = MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.get_state_dict(
            progress=False, check_hash=True
        )
    except Exception as exc:  # any network failure: URLError, timeout, proxy, hash mismatch
        raise ExtractionError(
            f"no weights for {ARCHITECTURE}: {cached} is missing and downloading "
            f"{MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.url} failed "
            f"({type(exc).__name__}); put that file there or pass --weights FILE"
        ) from exc
    if not isinstance(state, dict):  # pragma: no cover - torchvision always returns a dict
        raise ExtractionError(f"{cached}: downloaded weights are not a state dict")
    return state, "torchvision model zoo (COCO_V1)"


def _load_file(path: Path) -> dict:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ExtractionError(
            f"{path}: cannot read weights ({type(exc).__name__}: {first_line(exc)})"
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a training checkpoint that wraps the state dict
    if not isinstance(state, dict):
        raise ExtractionError(f"{path}: weights file does not hold a state dict")
    return state


class TorchvisionMaskRCNN:
    """COCO Mask R-CNN from torchvision.

    Args:
        weights: a state-dict file; ``None`` uses the model-zoo cache or a download.
        device: ``cpu`` or ``cuda[:N]``.
        min_score: detections below this score are dropped inside the model already
            (the pipeline filters again with the same threshold).
        min_size, max_size: the model's resize bounds; smaller is faster and coarser.
        mask_threshold: probability above which a mask pixel belongs to the instance.
        max_detections: most instances kept per image (after NMS).
        proposals: region proposals classified per image; the v2 box head runs four
            convolutions on each, so on a CPU this is the main cost after the backbone.
    """

    name = "torchvision"
    label_space = "coco"
    detector = f"torchvision:{ARCHITECTURE}"

    def __init__(
        self,
        *,
        weights: str | Path | None = None,
        device: str = "cpu",
        min_score: float = 0.05,
        min_size: int = 800,
        max_size: int = 1333,
        mask_threshold: float = 0.5,
        max_detections: int = 100,
        proposals: int = 1000,
    ) -> None:
        import torch
        from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

        self.device = resolve_device(device)
        self.min_score = float(min_score)
        self.min_size = int(min_size)
        self.max_size = int(max_size)
        self.mask_threshold = float(mask_threshold)
        self.max_detections = int(max_detections)
        self.proposals = int(proposals)
        self.categories = coco_categories()
        state, self.weights_source = load_state_dict(weights)
        model = maskrcnn_resnet50_fpn_v2(
            weights=None,
            weights_backbone=None,
            num_classes=len(self.categories),
            min_size=self.min_size,
            max_size=self.max_size,
            box_score_thresh=self.min_score,
            box_detections_per_img=self.max_detections,
            rpn_post_nms_top_n_test=self.proposals,
        )
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ExtractionError(
                f"{self.weights_source}: not {ARCHITECTURE} COCO weights ({first_line(exc)})"
            ) from exc
        self.model = model.eval().to(self.device)
        self._torch = torch

    def settings(self) -> dict[str, object]:
        return {
            "backend": self.name,
            "weights": self.weights_source,
            "min_size": self.min_size,
            "max_size": self.max_size,
            "mask_threshold": self.mask_threshold,
            "max_detections": self.max_detections,
            "proposals": self.proposals,
        }

    def predict(self, image_rgb: np.ndarray, *, image_path: Path | None = None) -> Instances:
        torch = self._torch
        height, width = image_rgb.shape[:2]
        tensor = torch.from_numpy(np.ascontiguousarray(image_rgb)).permute(2, 0, 1)
        tensor = tensor.to(self.device, dtype=torch.float32).div_(255.0)
        with torch.inference_mode():
            output = self.model([tensor])[0]
        if len(output["labels"]) == 0:
            return Instances.empty(height, width)
        masks = (output["masks"][:, 0] > self.mask_threshold).cpu().numpy()
        labels = [self.categories[int(i)] for i in output["labels"].cpu()]
        scores = output["scores"].float().cpu().numpy()
        return Instances(masks=masks, labels=labels, scores=scores)
