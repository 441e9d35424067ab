"""LS / ELS throughput (Kamb & Ganguli score machines, ``smoothscore.scores.local``) against the exact ESF of the
same training set timed in the same run (the baseline), at a CPU-feasible size; with CUDA also at the issue's scale,
50,000 training images of 3x32x32 (CIFAR-10 shaped, random data: the cost does not depend on the values).

Prints markdown tables: wall seconds per denoiser call (median), CPU seconds per call (process time, all threads) and
query images per second; ratios vs the ESF timed in the same run are what to compare.
"""

from __future__ import annotations

import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import print_table, time_it  # noqa: E402

import smoothscore as ss  # noqa: E402


def _rows(train, x, ks, device, repeats, block):
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def timed(field):
        def call():
            field.denoise(x, 0.5)
            sync()

        c0 = time.process_time()
        sec = time_it(call, repeats=repeats, warmup=1)
        return sec, (time.process_time() - c0) / (repeats + 1)

    sec, cpu = timed(ss.EmpiricalScore(train, device=device))
    rows = {"ESF (baseline)": {"seconds": sec, "notes": f"CPU {cpu:.3g} s/call"}}
    for k in ks:
        for name, field in (
            (f"LS k={k}", ss.LocalEmpiricalScore(train, k, device=device, block_elements=block)),
            (f"ELS k={k} (zeros)", ss.EquivariantLocalScore(train, k, device=device, block_elements=block)),
        ):
            sec, cpu = timed(field)
            rows[name] = {"seconds": sec, "notes": f"CPU {cpu:.3g} s/call; {x.shape[0] / sec:.3g} query images/s"}
    return rows


def main() -> None:
    torch.manual_seed(0)
    # CPU-feasible: 1,000 training images of 1x16x16 (digits-sized), 8 queries
    train = torch.rand(1000, 1, 16, 16) * 2 - 1
    x = train[:8] + 0.5 * torch.randn(8, 1, 16, 16)
    rows = _rows(train, x, (3, 7), "cpu", repeats=3, block=1 << 22)
    print_table(
        f"LS / ELS denoiser, n=1000 training images 1x16x16, 8 queries, CPU, {torch.get_num_threads()} threads",
        rows,
        "ESF (baseline)",
    )
    print(f"\npeak RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if not torch.cuda.is_available():
        print("\nCUDA not available: the 50,000 x 3x32x32 measurement was not run.")
        return
    train = torch.rand(50_000, 3, 32, 32, device="cuda") * 2 - 1
    x = train[:4] + 0.5 * torch.randn(4, 3, 32, 32, device="cuda")
    torch.cuda.reset_peak_memory_stats()
    rows = _rows(train, x, (3, 9), "cuda", repeats=2, block=1 << 26)
    print_table(
        f"LS / ELS denoiser, n=50,000 training images 3x32x32, 4 queries, {torch.cuda.get_device_name()}",
        rows,
        "ESF (baseline)",
    )
    print(f"\npeak CUDA memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (block_elements = 2^26)")


if __name__ == "__main__":
    main()
