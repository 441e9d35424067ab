"""``torch.distributed`` process groups for runs started by ``torchrun`` (gloo on CPU, NCCL on CUDA), shared by the
trainer (data-parallel training), the sharded nearest-neighbour search (``search.neighbors``) and the CLI.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) :func:`dist_info` initialises the default group once;
a plain ``python`` run is one process (rank 0 of 1) and never touches ``torch.distributed``. The CLI wraps every
command in :func:`process_group`, which also tears the group down at the end.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist

from .errors import ConfigError


def backend() -> str:
    """``nccl`` when CUDA is available, else ``gloo``."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def _shutdown() -> None:
    """At exit, tear down a group :func:`dist_info` initialised and nobody destroyed (a script that calls ``train``
    under torchrun): collect garbage first so that no object (a DDP wrapper in a reference cycle, a field) keeps the
    ``ProcessGroup`` alive into interpreter shutdown, where gloo's worker threads aborted the process now and then
    ('terminate called without an active exception')."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()
        gc.collect()


def dist_info() -> tuple[int, int]:
    """(rank, world_size), initialising the process group from torchrun's environment when needed (and registering
    its teardown at exit)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if backend() == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend())
        atexit.register(_shutdown)
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


def shard_bounds(n: int, rank: int, world: int, *, check: bool = False) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of rank ``rank``'s contiguous slice of ``n`` rows (sizes differ by at most one).

    ``check=True`` raises :class:`~smoothscore.errors.ConfigError` unless ``0 <= rank < world`` are ints and every
    rank gets at least one row (``world <= n``)."""
    if check:
        if not (isinstance(world, int) and isinstance(rank, int) and world >= 1 and 0 <= rank < world):
            raise ConfigError(f"shard must be (rank, world) with 0 <= rank < world; got ({rank}, {world})")
        if world > n:
            raise ConfigError(f"cannot split {n} training points across {world} ranks")
    return rank * n // world, (rank + 1) * n // world


def all_gather(t: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``t`` (same shape and dtype on all ranks), in rank order, on ``t``'s device."""
    dev = comm_device()
    src = t.to(dev).contiguous()
    out = [torch.empty_like(src) for _ in range(dist.get_world_size())]
    dist.all_gather(out, src)
    return [o.to(t.device) for o in out]


#: ``group=`` default of the all-reduces: the default (world) group
WORLD = "world"


def _all_reduce(t: torch.Tensor, op, group) -> torch.Tensor:
    if group is None:  # no process group: the local value is the result
        return t
    src = t.to(comm_device()).clone()
    dist.all_reduce(src, op=op, group=None if group is WORLD else group)
    return src.to(t.device)


def all_reduce_sum(t: torch.Tensor, group=WORLD) -> torch.Tensor:
    """Sum of ``t`` over the ranks of ``group`` (the default group unless given), a new tensor on ``t``'s device;
    ``group=None`` means a single process: ``t`` itself is returned."""
    return _all_reduce(t, dist.ReduceOp.SUM, group)


def all_reduce_max(t: torch.Tensor, group=WORLD) -> torch.Tensor:
    """Elementwise maximum of ``t`` over the ranks of ``group`` (as :func:`all_reduce_sum`)."""
    return _all_reduce(t, dist.ReduceOp.MAX, group)


@contextmanager
def process_group() -> Iterator[tuple[int, int]]:
    """Initialise the group under torchrun (nothing otherwise), yield ``(rank, world)``, and destroy the group on
    exit if this context created it."""
    created = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized()
    rank, world = dist_info()
    ok = False
    try:
        yield rank, world
        ok = True
    finally:
        if created and dist.is_initialized():
            if ok:  # every rank reaches this point: let all finish their last collective before tearing down
                dist.barrier()
            _shutdown()


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
