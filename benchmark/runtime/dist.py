"""The little DDP the harness needs: init from torchrun's variables, rank/world, gather.

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) everything is a no-op on rank 0 of a
world of 1, so the same code path serves one process and many.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_from_env(device: str) -> World:
    """Join the process group that ``torchrun`` describes (env://), if any.

    NCCL on CUDA, gloo on the CPU. Each process uses GPU ``LOCAL_RANK``.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return World(rank=rank, size=size, local_rank=local_rank)


def current() -> World:
    """The world of an already initialised process group (or the trivial one)."""
    if dist.is_available() and dist.is_initialized():
        return World(rank=dist.get_rank(), size=dist.get_world_size(),
                     local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    return World()


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (a one-element list without DDP)."""
    world = current()
    if not world.distributed:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if current().distributed:
        dist.barrier()


def all_reduce_mean(value: float) -> float:
    """The mean of a float over ranks (used for logged losses)."""
    world = current()
    if not world.distributed:
        return value
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / world.size
