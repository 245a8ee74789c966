"""Naming what a weights-only load refused, in a few words instead of torch's dozen lines.

Shared by every reader of weight files (``benchmark.records.checkpoints``, ``models.encoders``,
``ogor.extract``); pure string handling, so the core package stays free of torch.
"""

from __future__ import annotations


def refused_global(error: BaseException) -> str:
    """What torch's weights-only unpickler refused, e.g. ``refused global io.open``.

    Its message is a dozen lines of advice (including "load with weights_only=False", which
    is exactly what must not be done with a stranger's file); the refused name is what matters.
    """
    text = str(error)
    for marker in ("Unsupported global: GLOBAL ", "refused global "):
        start = text.find(marker)
        if start >= 0:
            name = text[start + len(marker):].split()[0].rstrip(".,:;")
            return f"refused global {name}"
    for marker in ("Unsupported operand", "Unsupported class"):
        start = text.find(marker)
        if start >= 0:
            return text[start:].splitlines()[0].strip()[:100]
    return type(error).__name__


def numpy_data_globals() -> list:
    """NumPy's numeric scalars and dtypes, for a weights-only load (data, never code).

    A release's checkpoint is whatever its authors' code wrote: TBPS-CLIP's ``main.py`` saves
    its optimiser state with ``numpy.float64`` learning rates (from its numpy cosine schedule),
    which the weights-only unpickler refuses by default. A numeric scalar is rebuilt from its
    dtype and raw bytes, so allowing exactly these names cannot run code; object dtypes, arrays
    and every other NumPy global stay refused.
    """
    import numpy as np
    from numpy._core.multiarray import scalar

    numeric = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
               np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128)
    return [scalar, np.dtype, *(type(np.dtype(kind)) for kind in numeric)]
