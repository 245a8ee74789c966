"""The identity (ID) loss: classify each modality's feature into the training person ids.

IRRA, SSAN and most T-ReID models since 2017 add it to align the two modalities per identity;
Dual-Path's "instance loss" is the same cross-entropy with one class per training image (its
class indices are image indices instead of person ids).

:func:`identity_loss` takes one classifier's logits per modality: a shared classifier (one
linear layer applied to both modalities, IRRA and Dual-Path) or one per modality, as a method
chooses; the loss is the cross-entropy of each modality, averaged over the modalities given.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def identity_loss(*logits: Tensor, labels: Tensor) -> Tensor:
    """Mean over modalities of the batch-mean cross-entropy of ``logits[k]`` (``[n, C]``) with
    ``labels`` (``[n]`` in ``[0, C)``), e.g. ``identity_loss(image_logits, text_logits,
    labels=pids)``."""
    if not logits:
        raise ValueError("identity_loss needs the logits of at least one modality")
    total = sum(F.cross_entropy(x.float(), labels) for x in logits)
    return total / len(logits)
