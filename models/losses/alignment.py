"""ViTAA's alignment loss (Wang et al., ECCV 2020): a two-margin logistic loss on cosines.

For every pair of an image feature ``v_i`` and a text feature ``t_j`` with cosine ``s_ij``:

* same person: ``log(1 + exp(-scale_pos * (s_ij - alpha)))`` (pulls the cosine above ``alpha``);
* different persons: ``log(1 + exp(scale_neg * (s_ij - beta)))`` (pushes it below ``beta``).

ViTAA's code sums these over each image's row and each text's column of the batch and divides
by the batch size (so every pair counts twice), with ``alpha = 0.6``, ``beta = 0.4``,
``scale_pos = 10``, ``scale_neg = 40``: the same constants here. The same loss aligns the global
features and, per attribute, the image part features with the caption's attribute phrases
(pairs where either side lacks the attribute are left out with ``valid``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def alignment_loss(image: Tensor, text: Tensor, pids: Tensor, *, valid: Tensor | None = None,
                   alpha: float = 0.6, beta: float = 0.4, scale_pos: float = 10.0,
                   scale_neg: float = 40.0) -> Tensor:
    """ViTAA's alignment loss of ``image [B, D]`` and ``text [B, D]`` (row ``i`` of both from
    sample ``i``, person ``pids[i]``); ``valid [B, B]`` bool keeps only some pairs."""
    cosine = F.normalize(image.float(), dim=-1) @ F.normalize(text.float(), dim=-1).t()
    same = pids[:, None] == pids[None, :]
    per_pair = F.softplus(-scale_pos * (cosine - alpha)).where(
        same, F.softplus(scale_neg * (cosine - beta)))
    if valid is not None:
        per_pair = per_pair * valid
    return 2.0 * per_pair.sum() / image.shape[0]


def normalized_identity_loss(image: Tensor, text: Tensor, pids: Tensor, weight: Tensor,
                             scale: float = 28.0) -> Tensor:
    """ViTAA's instance loss: cross-entropy of both modalities over identities with cosine
    logits ``scale * cos(x, W_k)`` against a shared classifier ``weight [D, K]``."""
    classes = F.normalize(weight.float(), dim=0)
    image_logits = scale * F.normalize(image.float(), dim=-1) @ classes
    text_logits = scale * F.normalize(text.float(), dim=-1) @ classes
    return F.cross_entropy(image_logits, pids) + F.cross_entropy(text_logits, pids)
