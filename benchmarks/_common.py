"""Shared timing helpers for the benchmarks: median of repeats, ratio against a baseline timed in the same run."""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable


def time_it(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time in seconds over ``repeats`` calls (after ``warmup`` calls)."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def time_interleaved(fns: dict[str, Callable[[], object]], rounds: int = 3) -> dict[str, float]:
    """Minimum CPU time (``time.process_time``: this process only, so other jobs' load counts less; meant for
    one-thread runs) per variant over ``rounds`` rounds that run every variant once, after one warm-up each."""
    for fn in fns.values():
        fn()
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.process_time()
            fn()
            best[k] = min(best[k], time.process_time() - t0)
    return best


def peak_memory_mb(fn: Callable[[], object]) -> float:
    """Peak Python-heap + tensor memory (CPU tensors are tracked by tracemalloc in recent torch builds only
    partially; the benchmarks report it as indicative) in MB."""
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def print_table(title: str, rows: dict[str, dict[str, float]], baseline: str) -> None:
    base = rows[baseline]["seconds"]
    print(f"\n## {title}\n")
    print("| variant | seconds | ratio vs " + baseline + " | notes |")
    print("|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['seconds']:.4g} | {r['seconds'] / base:.2f} | {r.get('notes', '')} |")
