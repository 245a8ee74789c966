"""Dual-Path's instance loss (Zheng et al., TOMM 2020): one classifier shared by both modalities.

Dual-Path's premise is that every image/text group is a class of its own: a softmax classifier
over those classes is trained on the image features and on the text features with the SAME
weights ``W_share``, so both modalities must put a group's features on the same side of the
same decision boundaries before any cross-modal distance is learned. On Flickr30k and MSCOCO a
group is one image with its five captions. For person search the paper classifies identities
instead (CUHK-PEDES: 11,003 training persons, which is also what its released CUHK-PEDES code
does), because several images of one person share descriptions; this module follows that
choice: the labels are the person ids, and passing per-pair ids instead gives the "each pair is
a class" form with the same code.

It is :func:`models.losses.identity_loss` with the classifier fixed to be shared; each
modality's cross-entropy is averaged over the batch and returned separately, because Dual-Path
weights them separately (its CUHK-PEDES code: image 1, text 0.5 in stage II).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from models.losses.identity import identity_loss


def instance_loss(
    image: Tensor, text: Tensor, labels: Tensor, weight: Tensor, bias: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Cross-entropy of the shared classifier on both modalities.

    Args:
        image, text: ``[B, D]`` features (one row per training pair; the text of row ``i``
            describes the image of row ``i``, so both have the label ``labels[i]``).
        labels: ``[B]`` class of each pair (person ids for person search).
        weight: ``[C, D]`` the shared classifier's weights; bias: ``[C]`` or ``None``.

    Returns:
        (image loss, text loss), each the mean cross-entropy over the batch.
    """
    weight = weight.float()
    bias = None if bias is None else bias.float()
    image_logits = F.linear(image.float(), weight, bias)
    text_logits = F.linear(text.float(), weight, bias)
    return identity_loss(image_logits, labels=labels), identity_loss(text_logits, labels=labels)
