"""torch.distributed set-up for torchrun (NCCL on GPUs, gloo on CPU); a no-op for a single process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed() -> DistInfo:
    """Join the process group torchrun describes in the environment; single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank)
    return info


def all_reduce_mean_(tensors: list[torch.Tensor], info: DistInfo) -> None:
    """Average tensors (gradients) across ranks in place."""
    if not info.enabled:
        return
    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t.div_(info.world_size)


def _sum_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """A small tensor summed over ranks (on the GPU for NCCL, which reduces only CUDA tensors)."""
    if torch.cuda.is_available() and dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_step_state(loss: float, stop: bool, info: DistInfo) -> tuple[float, bool]:
    """One all-reduce for a step's shared state: the mean loss (non-finite everywhere if on one rank) and
    whether any rank was asked to stop (SIGTERM reaches the ranks of a pod at slightly different times)."""
    if not info.enabled:
        return loss, stop
    t = _sum_over_ranks(torch.tensor([loss, 1.0 if stop else 0.0], dtype=torch.float64))
    return float(t[0].item()) / info.world_size, bool(t[1].item() > 0)


def all_reduce_sum_counts(counts: list[int], info: DistInfo) -> list[int]:
    """Counters (cache hits, fallbacks) summed over ranks: each rank only counts its own share of a batch."""
    if not info.enabled:
        return list(counts)
    return [int(x) for x in _sum_over_ranks(torch.tensor(counts, dtype=torch.int64)).tolist()]

