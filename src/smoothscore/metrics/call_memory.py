"""Memory of one call: the CUDA allocator's peak on a GPU; on CPU the bytes the torch allocator hands out during
the call (``torch.profiler`` with ``profile_memory``; CPU tensors bypass ``tracemalloc``) plus the ``tracemalloc``
peak of Python objects."""

from __future__ import annotations

import contextlib
import os
import sys
import tracemalloc

import torch

__all__ = ["call_memory"]


@contextlib.contextmanager
def _native_stderr_silenced():
    """Silence file descriptor 2 (the profiler's native library prints start/stop lines there on every use)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. captured): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def call_memory(fn, device) -> dict[str, float]:
    """Memory of one call ``fn()`` on ``device`` (this module's docstring: CUDA peak, or on CPU the torch allocations
    during the call plus the ``tracemalloc`` peak): ``peak_bytes`` and how it was measured."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize()
        return {"peak_bytes": float(torch.cuda.max_memory_allocated(device)), "how": "cuda"}
    from torch.profiler import ProfilerActivity, profile

    tracemalloc.start()
    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    alloc = sum(max(e.self_cpu_memory_usage, 0) for e in prof.key_averages())
    return {
        "peak_bytes": float(alloc + py_peak),
        "torch_bytes": float(alloc),
        "python_peak_bytes": float(py_peak),
        "how": "cpu: torch allocations per call + tracemalloc peak",
    }
