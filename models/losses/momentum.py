"""TBPS's losses (Han et al., "Text-Based Person Search with Limited Data", BMVC 2021).

* :func:`queue_info_nce`: cross-modal momentum contrast. Each image query ``v_i`` (from the
  trained encoder) is scored against its own caption's *key* ``t'_i`` (from the momentum text
  encoder) and against a queue of past text keys; each text query symmetrically against image
  keys. Queue entries of the same person as the query are not negatives and are left out (the
  public code filters them by the id queue). ``L = CE([v.t'+, v.Q_t] / T, 0) + CE([t.v'+,
  t.Q_v] / T, 0)``, features L2-normalised, ``T = 0.07``.
* :func:`global_align_loss`: a binomial-deviance alignment over the batch's cosine matrix,
  ``sum_pos log(1 + exp(-a_p (s - alpha))) + sum_neg log(1 + exp(a_n (s - beta)))``, times 2,
  over the batch size (the public code's values: alpha 0.6, beta 0.4, a_p 10, a_n 40): it pulls
  every same-person pair above 0.6 and pushes every other pair below 0.4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def queue_info_nce(query: Tensor, positive_key: Tensor, queue: Tensor, queue_pids: Tensor,
                   pids: Tensor, temperature: float = 0.07) -> Tensor:
    """One direction of the momentum contrast: ``query`` ``[n, d]`` vs its ``positive_key``
    ``[n, d]`` and the ``queue`` ``[K, d]`` of other-modality keys; entries whose
    ``queue_pids`` equal the query's pid are masked out (slots never filled hold pid -1 and
    random unit vectors, as in the public code). All features are expected L2-normalised."""
    positive = (query * positive_key).sum(dim=1, keepdim=True)
    negative = query @ queue.t()
    same_person = queue_pids.view(1, -1) == pids.view(-1, 1)
    negative = negative.masked_fill(same_person, float("-inf"))
    logits = torch.cat([positive, negative], dim=1).float() / temperature
    target = torch.zeros(len(query), dtype=torch.long, device=query.device)
    return F.cross_entropy(logits, target)


def global_align_loss(image: Tensor, text: Tensor, pids: Tensor, alpha: float = 0.6,
                      beta: float = 0.4, scale_pos: float = 10.0,
                      scale_neg: float = 40.0) -> Tensor:
    """The binomial-deviance alignment of the module docstring over ``[n, d]`` features."""
    cosine = F.normalize(image.float(), dim=1) @ F.normalize(text.float(), dim=1).t()
    same = pids.view(-1, 1) == pids.view(1, -1)
    loss_pos = F.softplus(-scale_pos * (cosine[same] - alpha)).sum()
    loss_neg = F.softplus(scale_neg * (cosine[~same] - beta)).sum()
    return 2.0 * (loss_pos + loss_neg) / len(pids)
