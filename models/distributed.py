"""Gathering a batch's features across processes, so that a distributed run is the experiment
of one process over the global batch.

A contrastive loss compares every sample with the rest of its batch. Under DDP each process
sees only its share of the global batch; without gathering, each loss sees ``B / W`` negatives
instead of ``B``. :func:`gather` concatenates every process's tensor along dim 0 in rank order
(the other processes' slots without gradient, this process's own slot with it). Every process
then computes the loss of the whole global batch. Parameters used after the gather (a logit
scale, MGCC's fusion weights) get the full gradient on every process; parameters before it
(the encoders) get the part through this process's samples, and the own slot's gradient is
scaled by ``W`` so that DDP's average over the ``W`` processes is the sum of the parts. Both
are then exactly the one-process gradient (tested to 1e-5 in
``tests/models/test_distributed.py``). The collectives all run in the forward pass, in one
order on every process (autograd collectives would run in the backward pass, in an order that
can differ between processes whose captions were padded differently).

Per-sample losses (identity classification, masked-word prediction) stay local: the mean of
the processes' local means is the global mean.

Without a process group every function returns its input, so models call them always.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def world_size() -> int:
    """The number of processes of the current process group (1 without one)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def gather(tensor: Tensor, *, pad_dim: int | None = None, pad_value: float = 0) -> Tensor:
    """Every process's ``tensor`` concatenated along dim 0 in rank order, with gradient.

    ``pad_dim``: a dimension whose size may differ between processes (a caption batch is
    padded to its longest caption): each tensor is padded with ``pad_value`` to the largest
    size first (a padded word slot is masked out by the mask gathered alongside).
    """
    if world_size() == 1:
        return tensor
    if pad_dim is not None:
        size = torch.tensor([tensor.shape[pad_dim]], device=tensor.device)
        dist.all_reduce(size, op=dist.ReduceOp.MAX)
        missing = int(size.item()) - tensor.shape[pad_dim]
        if missing:
            shape = list(tensor.shape)
            shape[pad_dim] = missing
            filler = torch.full(shape, pad_value, dtype=tensor.dtype, device=tensor.device)
            tensor = torch.cat([tensor, filler], dim=pad_dim)
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.detach().contiguous())
    # this process's slot keeps its gradient, scaled by W (see the module docstring)
    parts[dist.get_rank()] = _ScaleGrad.apply(tensor, float(world_size()))
    return torch.cat(parts, dim=0)


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; the gradient times ``factor`` backward."""

    @staticmethod
    def forward(ctx, tensor: Tensor, factor: float) -> Tensor:  # type: ignore[override]
        ctx.factor = factor
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return grad * ctx.factor, None


def shared_generator(device: torch.device | str) -> torch.Generator:
    """A random generator in one state on every process, for draws made over the gathered
    batch (LGUR's semi-hard negatives): every process must draw the same, or each would
    compute a different global loss. Seeded by one draw of the global random stream (a
    seeded run stays reproducible), rank 0's draw broadcast to all."""
    seed = torch.randint(0, 2 ** 62, (1,), dtype=torch.long)
    if world_size() > 1:
        if dist.get_backend() == "nccl":  # NCCL moves CUDA tensors only
            seed = seed.cuda()
        dist.broadcast(seed, src=0)
    return torch.Generator(device=device).manual_seed(int(seed.item()))


def same_on_every_process(tensor: Tensor) -> Tensor:
    """Rank 0's ``tensor`` on every process (a random draw over the gathered batch, such as
    SSAN's weak partners, must be one draw, not one per process); itself without a group."""
    if world_size() == 1:
        return tensor
    tensor = tensor.contiguous()
    dist.broadcast(tensor, src=0)
    return tensor


def own_rows(count: int, device: torch.device | None = None) -> slice:
    """The rows of this process's ``count`` samples in a tensor made by :func:`gather`
    (``slice(0, count)`` without a group): for a loss that stays on the process's own share
    of a gathered comparison, such as the ITM hard negatives of RaSa and APTM."""
    if world_size() == 1:
        return slice(0, count)
    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([count], dtype=torch.long, device=device))
    start = int(sum(int(size) for size in sizes[:dist.get_rank()]))
    return slice(start, start + count)
