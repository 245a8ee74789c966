"""RDE's losses (Qin et al., CVPR 2024): triplet alignment loss and consensus division.

* :func:`tal_per_sample`: the triplet alignment loss (TAL) of every pair of a batch. A pair's
  positive term is the mean similarity to its same-person partners weighted by a softmax of
  their similarities at temperature ``tau`` (a soft "hardest positive"); its negative term is
  ``tau * log sum exp(s / tau)`` over the other people (a smooth "hardest negative"). With a
  margin and a hinge, in both directions (texts -> images and images -> texts).
* :func:`gmm_clean_probability`: a two-component 1-D Gaussian mixture fitted by EM on per-sample
  losses (min-max normalised); the posterior of the low-mean component is the probability that
  a pair is clean (small loss = the model agrees with it).
* :func:`consensus_division`: the two embedding branches (BGE and TSE) vote; a pair both call
  clean is kept, one both call noisy is dropped, a split vote is kept with probability 1/2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def tal_per_sample(scores: Tensor, pids: Tensor, tau: float = 0.015,
                   margin: float = 0.1) -> Tensor:
    """TAL of every pair: ``[B]`` = text->image term + image->text term.

    Args:
        scores: ``[B, B]`` cosine similarities, rows texts, columns images (pair ``i`` on the
            diagonal).
        pids: ``[B]`` person ids; every same-id pair is a positive.
        tau: temperature of the soft positive weights and of the smooth maximum over negatives
            (RDE: 0.015).
        margin: the hinge margin (RDE: 0.1).
    """
    scores = scores.float()
    positive = (pids.view(-1, 1) == pids.view(1, -1)).float()
    negative = 1.0 - positive

    def one_direction(s: Tensor) -> Tensor:
        with torch.no_grad():
            weights = (s / tau).exp() * positive
            weights = weights / weights.sum(dim=1, keepdim=True)
        pos = (weights * s).sum(dim=1)
        # log of a sum of exps over negatives, computed stably; a row with no negative gives
        # -inf inside the hinge, i.e. zero loss, as the released code's clamp does
        masked = (s / tau).masked_fill(negative == 0, float("-inf"))
        neg = tau * torch.logsumexp(masked, dim=1)
        return (margin + neg - pos).clamp(min=0)

    return one_direction(scores) + one_direction(scores.t())


def _normal_pdf(x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    return torch.exp(-0.5 * (x - mean) ** 2 / var) / torch.sqrt(2 * torch.pi * var)


def gmm_clean_probability(losses: Tensor, iterations: int = 10,
                          reg_covar: float = 5e-4) -> Tensor:
    """Posterior of the low-loss component of a 2-component Gaussian mixture, ``[N]``.

    The losses are min-max normalised first (as RDE does); EM starts from the lower and upper
    quartiles. ``iterations`` and ``reg_covar`` are RDE's settings for clean-ish data (10,
    5e-4). Equal losses (nothing to divide) give probability 1 everywhere.
    """
    x = losses.detach().float().flatten()
    spread = x.max() - x.min()
    if x.numel() < 2 or spread <= 0:
        return torch.ones_like(x)
    x = (x - x.min()) / spread
    means = torch.quantile(x, torch.tensor([0.25, 0.75], device=x.device))
    var = torch.full((2,), float(x.var()) + reg_covar, device=x.device)
    weight = torch.full((2,), 0.5, device=x.device)
    for _ in range(iterations):
        likelihood = weight * _normal_pdf(x.unsqueeze(1), means, var)  # [N, 2]
        resp = likelihood / likelihood.sum(dim=1, keepdim=True).clamp_min(1e-12)
        total = resp.sum(dim=0).clamp_min(1e-12)
        means = (resp * x.unsqueeze(1)).sum(dim=0) / total
        var = (resp * (x.unsqueeze(1) - means) ** 2).sum(dim=0) / total + reg_covar
        weight = total / total.sum()
    likelihood = weight * _normal_pdf(x.unsqueeze(1), means, var)
    resp = likelihood / likelihood.sum(dim=1, keepdim=True).clamp_min(1e-12)
    return resp[:, int(means.argmin())]


def consensus_division(clean_a: Tensor, clean_b: Tensor,
                       generator: torch.Generator | None = None) -> Tensor:
    """RDE's consensus: ``[N]`` float labels, 1 = train on the pair, 0 = drop it.

    Args:
        clean_a, clean_b: ``[N]`` booleans, each branch's verdict (probability > 0.5).
    """
    votes = clean_a.long() + clean_b.long()
    coin = torch.randint(0, 2, votes.shape, generator=generator, device=votes.device)
    votes = torch.where(votes == 1, votes + coin, votes)
    return (votes > 1).float()


def cosine_scores(text: Tensor, image: Tensor) -> Tensor:
    """``[B, B]`` cosine similarities, rows texts, columns images."""
    return F.normalize(text.float(), dim=-1) @ F.normalize(image.float(), dim=-1).t()
