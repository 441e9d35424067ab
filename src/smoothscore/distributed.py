"""``torch.distributed`` process groups for runs started by ``torchrun`` (gloo on CPU, NCCL on CUDA), shared by the
trainer (data-parallel training), the sharded nearest-neighbour search (``metrics.neighbors``) and the CLI.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) :func:`dist_info` initialises the default group once;
a plain ``python`` run is one process (rank 0 of 1) and never touches ``torch.distributed``. The CLI wraps every
command in :func:`process_group`, which also tears the group down at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist


def backend() -> str:
    """``nccl`` when CUDA is available, else ``gloo``."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def dist_info() -> tuple[int, int]:
    """(rank, world_size), initialising the process group from torchrun's environment when needed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if backend() == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend())
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """True on rank 0 (and in a single-process run): the process that writes outputs."""
    return not dist.is_initialized() or dist.get_rank() == 0


def comm_device() -> torch.device:
    """Where tensors must live for collectives of the current group (NCCL: this process's GPU)."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of rank ``rank``'s contiguous slice of ``n`` rows (sizes differ by at most one)."""
    return rank * n // world, (rank + 1) * n // world


def all_gather(t: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``t`` (same shape and dtype on all ranks), in rank order, on ``t``'s device."""
    dev = comm_device()
    src = t.to(dev).contiguous()
    out = [torch.empty_like(src) for _ in range(dist.get_world_size())]
    dist.all_gather(out, src)
    return [o.to(t.device) for o in out]


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over the ranks (a new tensor on ``t``'s device)."""
    src = t.to(comm_device()).clone()
    dist.all_reduce(src)
    return src.to(t.device)


@contextmanager
def process_group() -> Iterator[tuple[int, int]]:
    """Initialise the group under torchrun (nothing otherwise), yield ``(rank, world)``, and destroy the group on
    exit if this context created it."""
    created = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized()
    rank, world = dist_info()
    try:
        yield rank, world
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


@contextmanager
def rank_output_dir(out: str | Path) -> Iterator[Path]:
    """``out`` on rank 0; on other ranks a scratch folder removed on exit, so that code which writes as it goes
    (experiments) runs unchanged on every rank while only rank 0's outputs are kept."""
    if is_main_process():
        yield Path(out)
        return
    tmp = Path(tempfile.mkdtemp(prefix=f"smoothscore-rank{dist.get_rank()}-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
