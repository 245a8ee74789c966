"""TBPS-CLIP's losses (Cao et al., AAAI 2024, "An Empirical Study of CLIP for Text-based Person
Search", section "Training objectives"): N-ITC, R-ITC, C-ITC and the image self-supervision.

All take L2-normalised features of a batch of matched pairs (row ``i`` of the images with row
``i`` of the texts) and the person ids; ``scale`` is CLIP's learnable logit scale.

* :func:`nitc_loss`: normalised image-text contrastive loss: cross-entropy against a target that
  mixes the same-id label distribution with the model's own (detached) softmax,
  ``alpha * softmax(s_detached) + (1 - alpha) * labels``, averaged over both directions.
* :func:`ritc_loss`: relaxed (reverse) ITC: ``KL(prediction || labels + eps)``, which, unlike the
  forward KL, does not force the prediction to cover every same-id sample.
* :func:`citc_loss`: cyclic ITC: the image-image and text-text similarity matrices should agree
  (in-modal), and so should image->text and text->image (cross-modal), squared differences of
  scaled similarities divided by ``scale ** 2``.
* :func:`simclr_loss`: SimCLR's NT-Xent between two augmented views of the images, through a
  projection MLP, at temperature 0.1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def same_id_targets(pids: Tensor) -> Tensor:
    """``[B, B]`` rows summing to 1 over the samples of the row's person."""
    same = (pids.view(-1, 1) == pids.view(1, -1)).float()
    return same / same.sum(dim=1, keepdim=True)


def nitc_loss(image: Tensor, text: Tensor, pids: Tensor, scale: Tensor,
              alpha: float = 0.5) -> Tensor:
    """N-ITC with soft targets; ``alpha`` is TBPS-CLIP's ``softlabel_ratio`` (0.5)."""
    targets = same_id_targets(pids)
    i2t = scale * image @ text.t()
    t2i = scale * text @ image.t()
    with torch.no_grad():
        i2t_target = alpha * i2t.detach().softmax(dim=1) + (1 - alpha) * targets
        t2i_target = alpha * t2i.detach().softmax(dim=1) + (1 - alpha) * targets
    loss_i2t = -(F.log_softmax(i2t, dim=1) * i2t_target).sum(dim=1).mean()
    loss_t2i = -(F.log_softmax(t2i, dim=1) * t2i_target).sum(dim=1).mean()
    return (loss_i2t + loss_t2i) / 2


def ritc_loss(image: Tensor, text: Tensor, pids: Tensor, scale: Tensor,
              eps: float = 1e-2) -> Tensor:
    """R-ITC: mean over both directions of ``sum p * (log p - log(labels + eps))`` per row."""
    target_log = (same_id_targets(pids) + eps).log()

    def reverse_kl(logits: Tensor) -> Tensor:
        log_p = F.log_softmax(logits, dim=1)
        return (log_p.exp() * (log_p - target_log)).sum(dim=1).mean()

    return 0.5 * (reverse_kl(scale * image @ text.t()) + reverse_kl(scale * text @ image.t()))


def citc_loss(image: Tensor, text: Tensor, scale: Tensor, in_modal: float = 0.25,
              cross_modal: float = 0.25) -> Tensor:
    """C-ITC: ``in_modal * mean((S_ii - S_tt)^2) + cross_modal * mean((S_it - S_ti)^2)``,
    each divided by ``scale ** 2`` (so the loss is one of cosines)."""
    image_image = scale * image @ image.t()
    text_text = scale * text @ text.t()
    image_text = scale * image @ text.t()
    in_term = (image_image - text_text).square().mean() / (scale * scale)
    cross_term = (image_text - image_text.t()).square().mean() / (scale * scale)
    return in_modal * in_term + cross_modal * cross_term


def simclr_loss(view_a: Tensor, view_b: Tensor, temperature: float = 0.1) -> Tensor:
    """NT-Xent between two views ``[B, D]`` (normalised here); self-similarities excluded."""
    a = F.normalize(view_a.float(), dim=-1)
    b = F.normalize(view_b.float(), dim=-1)
    labels = torch.arange(a.shape[0], device=a.device)
    self_mask = torch.eye(a.shape[0], device=a.device, dtype=torch.bool)
    sim_aa = (a @ a.t() / temperature).masked_fill(self_mask, float("-inf"))
    sim_bb = (b @ b.t() / temperature).masked_fill(self_mask, float("-inf"))
    sim_ab = a @ b.t() / temperature
    loss_a = F.cross_entropy(torch.cat([sim_ab, sim_aa], dim=1), labels)
    loss_b = F.cross_entropy(torch.cat([sim_ab.t(), sim_bb], dim=1), labels)
    return (loss_a + loss_b) / 2
