"""Contrastive losses over a batch of matched pairs: InfoNCE and similarity distribution matching.

* :func:`info_nce`: InfoNCE in both directions over a square batch of matched pairs (CLIP, MGCC).
* :func:`sdm_loss`: IRRA's similarity distribution matching (same-id pairs are all positives).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from models.precision import full_precision


def info_nce(logits: Tensor, reduction: str = "sum") -> Tensor:
    """InfoNCE in both directions (paper Eq. 13-15) for a square batch of matched pairs.

    Args:
        logits: ``[B, B]`` scaled similarities, rows texts, columns images; pair ``i`` is the
            positive of row and column ``i``.
        reduction: "sum" adds the two directions as the paper's Eq. 15 does; "mean" averages
            them as MGCC's released code does.
    """
    target = torch.arange(logits.shape[0], device=logits.device)
    with full_precision(logits):
        text_to_image = F.cross_entropy(logits.float(), target)
        image_to_text = F.cross_entropy(logits.float().t(), target)
    total = text_to_image + image_to_text
    return total if reduction == "sum" else total / 2


def sdm_loss(image_global: Tensor, text_global: Tensor, pids: Tensor, tau: float = 0.02,
             epsilon: float = 1e-8) -> Tensor:
    """Similarity distribution matching, both directions, averaged over the batch.

    Args:
        image_global, text_global: ``[B, D]`` features of matched pairs (row i with row i).
        pids: ``[B]`` person ids; every same-id pair counts as a match.
        tau: softmax temperature; the logits are ``cos / tau``.
        epsilon: added to the label distribution inside the log so that zeros stay finite.
    """
    with full_precision(image_global):
        return _sdm(image_global.float(), text_global.float(), pids, tau, epsilon)


def _sdm(image_global: Tensor, text_global: Tensor, pids: Tensor, tau: float,
         epsilon: float) -> Tensor:
    image = F.normalize(image_global.float(), dim=-1)
    text = F.normalize(text_global.float(), dim=-1)
    same = (pids.view(-1, 1) == pids.view(1, -1)).float()
    labels = same / same.sum(dim=1, keepdim=True)
    image_to_text = image @ text.t() / tau
    text_to_image = image_to_text.t()

    def one_direction(logits: Tensor) -> Tensor:
        prob = logits.softmax(dim=1)
        kl = prob * (logits.log_softmax(dim=1) - torch.log(labels + epsilon))
        return kl.sum(dim=1).mean()

    return one_direction(image_to_text) + one_direction(text_to_image)
