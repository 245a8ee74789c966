"""Detector weights read as data: detectron2's ``.pkl`` and ``.pth`` files without running code.

detectron2's own checkpointer opens a ``.pkl`` model-zoo file with ``pickle.load``, which runs
whatever the file says. Here a ``.pkl`` is read by :class:`ArrayUnpickler`, which allows the
few NumPy globals an array needs and nothing else (the same NumPy names PyTorch documents as
safe for its weights-only loader), and any other file with ``torch.load(weights_only=True)``.
:func:`data_only_checkpointer` is detectron2's ``DetectionCheckpointer`` with that reader in
place of its ``_load_file``; the conversion of legacy (Caffe2) names is left to detectron2.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from ogor.extract.base import ExtractionError
from toreid.unpickling import refused_global

#: The NumPy names an array's pickle needs (both NumPy 1 and NumPy 2 module paths).
_ARRAY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes in protocol-2 pickles (pure; torch's allowlist has it too)
}


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler of plain containers and NumPy arrays: any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ARRAY_GLOBALS:
            return super().find_class(module, name)
        if module == "numpy.dtypes" or (module == "numpy" and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def read_pickled_arrays(path: str | Path) -> Any:
    """Unpickle ``path`` allowing only containers, numbers, strings and NumPy arrays."""
    with open(path, "rb") as handle:
        return ArrayUnpickler(handle, encoding="latin1").load()


def read_detector_weights(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict detectron2's ``_load_file`` would return, read as data only.

    Raises:
        ExtractionError: one line naming the file, when it holds anything but weights.
    """
    import torch

    path = str(path)
    try:
        if path.endswith(".pkl"):
            data = read_pickled_arrays(path)
            if not isinstance(data, dict):
                raise ExtractionError(f"{path}: not a detectron2 weights file (no dict inside)")
            if "model" in data and "__author__" in data:
                return data
            blobs = data.get("blobs", data)
            blobs = {k: v for k, v in blobs.items() if not str(k).endswith("_momentum")}
            return {"model": blobs, "__author__": "Caffe2", "matching_heuristics": True}
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ExtractionError(
            f"{path}: refused: holds Python objects other than weights ({refused_global(exc)}); "
            "it was not unpickled, since unpickling can run code") from None
    if not isinstance(loaded, dict):
        raise ExtractionError(f"{path}: not a weights file (holds a {type(loaded).__name__})")
    return loaded if "model" in loaded else {"model": loaded}


def data_only_checkpointer(model: Any) -> Any:
    """detectron2's ``DetectionCheckpointer`` reading files with :func:`read_detector_weights`."""
    from detectron2.checkpoint import DetectionCheckpointer

    class DataOnlyCheckpointer(DetectionCheckpointer):
        def _load_file(self, filename: str) -> dict[str, Any]:
            return read_detector_weights(filename)

    return DataOnlyCheckpointer(model)
