"""Float32 islands inside mixed precision.

Under ``torch.autocast`` matrix products run in bf16/fp16. The similarity reductions of the
retrieval losses must not: MGCC's attention-based fusion divides cosines by ``tau = 0.01``
before a softmax, and bf16 keeps about 3 significant digits, so a cosine of 0.8 seen as 0.797
moves a logit by 0.3. Every similarity and loss reduction therefore runs inside
:func:`full_precision`, with its inputs cast to float32.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor


def full_precision(like: Tensor) -> contextlib.AbstractContextManager:
    """A context where autocast is off for ``like``'s device type (float32 maths)."""
    return torch.autocast(like.device.type, enabled=False)
