"""Cross-modal projection losses of Zhang & Lu, "Deep Cross-Modal Projection Learning for
Image-Text Matching", ECCV 2018.

Notation: a batch of ``n`` matched pairs, image features ``x_i``, text features ``z_i``, person
ids ``y_i``; ``z_bar = z / |z|``.

* CMPM (cross-modal projection matching): the image is projected onto each normalised text,
  ``x_i . z_bar_j``; ``p_ij = softmax_j(x_i . z_bar_j)`` is compared with the true matching
  distribution ``q_ij = [y_i == y_j] / sum_k [y_i == y_k]`` by
  ``L_i2t = 1/n sum_i sum_j p_ij log(p_ij / (q_ij + eps))``; ``L_t2i`` swaps the roles, and
  ``CMPM = L_i2t + L_t2i``. The projection is not a cosine: the image norm acts as a learnt,
  per-sample temperature (no separate temperature exists).
* CMPC (cross-modal projection classification): the image projected onto its own matched text,
  ``x_hat_i = (x_i . z_bar_i) z_bar_i``, is classified by a norm-softmax classifier without bias
  (columns of ``W`` normalised): ``L_ipt = -1/n sum_i log softmax(W_bar^T x_hat_i)[y_i]``;
  ``L_tpi`` classifies ``z_hat_i = (z_i . x_bar_i) x_bar_i`` with the same ``W``; and
  ``CMPC = L_ipt + L_tpi``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _match_distribution(pids: Tensor) -> Tensor:
    same = (pids.view(-1, 1) == pids.view(1, -1)).float()
    return same / same.sum(dim=1, keepdim=True)


def _projection_matching(a: Tensor, b: Tensor, q: Tensor, epsilon: float) -> Tensor:
    """``1/n sum_i KL(p_i || q_i)`` with ``p_i = softmax_j(a_i . b_bar_j)``."""
    logits = a @ F.normalize(b, dim=1).t()
    p = logits.softmax(dim=1)
    kl = p * (logits.log_softmax(dim=1) - torch.log(q + epsilon))
    return kl.sum(dim=1).mean()


def cmpm_loss(image: Tensor, text: Tensor, pids: Tensor, epsilon: float = 1e-8,
              match_norm: str = "l1") -> Tensor:
    """CMPM, both directions: ``L_i2t + L_t2i`` (see the module docstring).

    Args:
        image, text: ``[n, D]`` features of matched pairs (row i with row i), unnormalised.
        pids: ``[n]`` person ids; every same-id pair is a match.
        epsilon: keeps ``log(q + eps)`` finite where ``q`` is 0 (the paper's epsilon).
        match_norm: how the true matching distribution is normalised: ``"l1"`` (the paper,
            ``q_ij = 1 / n_i``) or ``"l2"`` (``q_ij = 1 / sqrt(n_i)``: SAF's and CFine's code,
            ``labels_mask / labels_mask.norm(dim=1)``). The two agree when every id appears
            once in the batch.
    """
    if match_norm not in ("l1", "l2"):
        raise ValueError(f"match_norm must be 'l1' or 'l2', got {match_norm!r}")
    image, text = image.float(), text.float()
    q = _match_distribution(pids)
    if match_norm == "l2":
        q = q.sqrt()  # same_ij / n_i -> same_ij / sqrt(n_i)
    return (_projection_matching(image, text, q, epsilon)
            + _projection_matching(text, image, q, epsilon))


def cmpc_loss(image: Tensor, text: Tensor, pids: Tensor, weight: Tensor) -> Tensor:
    """CMPC, both directions: ``L_ipt + L_tpi`` (see the module docstring).

    Args:
        image, text: ``[n, D]`` features of matched pairs.
        pids: ``[n]`` class indices in ``[0, C)``.
        weight: ``[D, C]`` the shared classifier; its columns are normalised here.
    """
    image, text = image.float(), text.float()
    w_bar = F.normalize(weight.float(), dim=0)
    text_dir, image_dir = F.normalize(text, dim=1), F.normalize(image, dim=1)
    image_on_text = (image * text_dir).sum(dim=1, keepdim=True) * text_dir
    text_on_image = (text * image_dir).sum(dim=1, keepdim=True) * image_dir
    return (F.cross_entropy(image_on_text @ w_bar, pids)
            + F.cross_entropy(text_on_image @ w_bar, pids))
