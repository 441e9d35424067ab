"""Exact-score engine at scale (issue 9): speed grid against baselines timed in the same run, peak memory of a
denoise call, and certified truncation vs the exact kernel. Prints markdown tables (docs/benchmarks.md).

Baselines per shape (queries N, training points M, dim d), all float32, one thread:
* GEMM pair: ``l = x @ y.T; l @ y`` — the two products any exact method must do (no softmax);
* naive: ``torch.cdist`` + ``softmax`` + product (O(N M) memory);
* SDPA form: ``scaled_dot_product_attention`` with ``1/sigma^2`` folded into the queries and ``-|y|^2/2`` as an
  extra key column (keys prepared outside the timing).
Times are CPU seconds of this process (``time.process_time``; one thread), the minimum over rounds in which the
variants are interleaved, so that the load of other jobs on a shared machine affects them alike.
The library is timed with one float sigma (its common-sigma form) and, at d <= 1,024, also with distinct per-query
sigmas (its augmented-key form). Set ``SMOOTHSCORE_BENCH_SMALL=1`` for a quick run (drops the 200,000-point
shape), ``SMOOTHSCORE_BENCH_ONLY=speed``, ``=truncation`` or ``=adaptive`` (truncated / exact on every row, real
images included; ``SMOOTHSCORE_BENCH_SETS=images`` for those rows alone) for one part,
``SMOOTHSCORE_BENCH_ROWS=0,0,0`` to repeat grid rows (indices into the grid; each repeat a separate measurement,
for the spread near 1.00).
"""

from __future__ import annotations

import math
import os
import sys
import time

import faiss
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from _common import time_interleaved  # noqa: E402

import smoothscore as ss  # noqa: E402
from smoothscore.scores._kernel import FLASH_MAX_DIM  # noqa: E402

GRID = [(1024, 1797, 64), (1024, 50_000, 64), (256, 50_000, 3072), (256, 200_000, 3072), (4096, 50_000, 256)]


def _status(key: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) / 1024


def added_peak_mb(fn) -> float:
    """Rise of peak RSS (VmHWM, reset first; Linux) over the RSS before ``fn()``, in MB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return float("nan")
    r0 = _status("VmRSS")
    fn()
    return max(_status("VmHWM"), _status("VmRSS")) - r0


def speed_grid(small: bool) -> None:
    print(f"\n## Speed grid (float32, {torch.get_num_threads()} thread(s), CPU seconds, sigma = 0.5 x data scale)\n")
    print(
        "| (N, M, d) | GEMM pair CPU s | library CPU s | library / GEMM | naive / GEMM | SDPA / GEMM | library vs best "
        "baseline | per-query sigma vs best | call adds MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    rows = os.environ.get("SMOOTHSCORE_BENCH_ROWS")
    for N, M, d in [GRID[int(i)] for i in rows.split(",")] if rows else GRID:
        if small and M > 100_000:
            continue
        g = torch.Generator().manual_seed(0)
        y = torch.randn(M, d, generator=g)
        x = y[:N] + 0.5 * torch.randn(N, d, generator=g)
        sigma = 0.5 * math.sqrt(d) / 4
        reps = 2 if M * d > 50_000 * 3072 // 2 else 3 if N * M * d > 10**9 else 25  # ms-sized calls: more rounds
        field = ss.EmpiricalScore(y, device="cpu")
        c = y.mean(0)
        v = y - c
        inv = 1.0 / sigma**2
        kq = torch.cat([(x - c) * inv, torch.full((N, 1), -inv)], 1)[None, None]
        kk = torch.cat([v, 0.5 * (v * v).sum(1, keepdim=True)], 1)[None, None]
        vv = torch.cat([v, torch.zeros(M, 1)], 1)[None, None]
        # distinct per-query noise levels (same cost for the baselines): the library's augmented-key form at d <= 1,024
        s_vec = sigma * (1 + 1e-3 * torch.arange(N) / N)
        variants = {
            "gemm": lambda: (x @ y.T) @ y,
            "lib": lambda: field.denoise(x, sigma),
            "naive": lambda: torch.softmax(-(torch.cdist(x, y) ** 2) / (2 * sigma**2), 1) @ y,
            "sdpa": lambda: F.scaled_dot_product_attention(kq, kk, vv, scale=1.0),
        }
        if d <= FLASH_MAX_DIM:
            variants["lib_vec"] = lambda: field.denoise(x, s_vec)
        t = time_interleaved(variants, reps)
        t_gemm, t_lib, t_naive, t_sdpa = t["gemm"], t["lib"], t["naive"], t["sdpa"]
        mb = added_peak_mb(lambda: field.denoise(x, sigma))
        best = min(t_naive, t_sdpa)
        vec = f"{t['lib_vec'] / best:.2f}" if "lib_vec" in t else "same path (GEMM)"
        print(
            f"| ({N}, {M:,}, {d}) | {t_gemm:.3g} | {t_lib:.3g} | {t_lib / t_gemm:.2f} | {t_naive / t_gemm:.2f} | "
            f"{t_sdpa / t_gemm:.2f} | {t_lib / best:.2f} | {vec} | {mb:.0f} |",
            flush=True,
        )
        field = y = v = kk = vv = None  # free before the next shape


def truncation(small: bool) -> None:
    M = 50_000 if small else 200_000
    D, r, N = 256, 10, 256
    g = torch.Generator().manual_seed(1)
    basis = torch.linalg.qr(torch.randn(D, r, generator=g))[0].T
    y = torch.randn(M, r, generator=g) @ basis + 1e-3 * torch.randn(M, D, generator=g)
    x = y[:N] + 0.02 * torch.randn(N, D, generator=g)
    exact = ss.EmpiricalScore(y, device="cpu")
    fields = {
        kind: ss.EmpiricalScore(y, tolerance=1e-6, device="cpu", truncation_index=kind) for kind in ("ivf", "flat")
    }
    print(f"\n## Certified truncation: M = {M:,} points near a {r}-dim subspace of R^{D}, N = {N} queries\n")
    build = {}
    for kind, f in fields.items():
        t0 = time.process_time()
        f.denoise(x[:1], 0.02)
        build[kind] = time.process_time() - t0
    print(
        "| sigma | exact CPU s | IVF CPU s | IVF speed-up | flat CPU s | flat speed-up | certificate (IVF) | "
        "max error vs exact (float32) | truncated fraction | rounds | cells / query | rows scanned / query |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    ivf = fields["ivf"]
    for sigma in (0.01, 0.02, 0.05, 0.2, 1.0):
        fns = {"exact": lambda: exact.denoise(x, sigma)}
        fns.update({kind: (lambda f=f: f.denoise(x, sigma)) for kind, f in fields.items()})
        t = time_interleaved(fns, 3)
        err = float((ivf.denoise(x, sigma) - exact.denoise(x, sigma)).norm(dim=1).max())
        st = ivf._truncator.last_stats
        print(
            f"| {sigma} | {t['exact']:.3g} | {t['ivf']:.3g} | {t['exact'] / t['ivf']:.1f}x | {t['flat']:.3g} | "
            f"{t['exact'] / t['flat']:.1f}x | {ivf.last_certificate:.2g} | {err:.2g} | "
            f"{ivf.last_fraction_truncated:.2f} | {st['rounds']} | {st['cells']:.0f} | {st['points']:,.0f} |",
            flush=True,
        )
    index = ivf._truncator.index
    print(
        f"\none-time index build, CPU s: IVF {build['ivf']:.2f} (PCA rank {index.rank}, {index.nlist:,} k-means "
        f"cells), flat {build['flat']:.2f}"
    )


def _subspace(M, noise, N, q_noise, seed=1, D=256, r=10):
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(D, r, generator=g))[0].T
    y = torch.randn(M, r, generator=g) @ basis + noise * torch.randn(M, D, generator=g)
    return y, y[:N] + q_noise * torch.randn(N, D, generator=g)


def _images(name):
    """Real image sets that ship offline, in [-1, 1], flattened: digits 8x8 / 16x16 (sklearn), LFW faces 25x25
    (scikit-image's ``lfw_subset``, 200 faces)."""
    if name == "lfw":
        from skimage.data import lfw_subset

        return torch.as_tensor(lfw_subset(), dtype=torch.float32).reshape(200, -1) * 2 - 1
    return ss.data.load_digits(size=8 if name == "digits8" else 16).x.reshape(1797, -1)


def adaptive_rows(small: bool):
    """(name, train, queries (sigma -> x), sigmas): the docs' rows, the issue's 0.01-noise case, real images."""
    M = 50_000 if small else 200_000
    if os.environ.get("SMOOTHSCORE_BENCH_SETS") == "images":  # the real-image rows only
        yield from _image_rows()
        return
    y, x = _subspace(M, 1e-3, 256, 0.02)
    yield f"{M:,} near 10-dim of R^256, noise 1e-3", y, (lambda s, x=x: x), (0.01, 0.02, 0.05, 0.2, 1.0)
    y, x = _subspace(M, 1e-2, 512, 0.02, seed=2)
    yield f"{M:,} near 10-dim of R^256, noise 1e-2", y, (lambda s, x=x: x), (0.02, 1.0)
    yield from _image_rows()


def _image_rows():
    for name in ("digits8", "digits16", "lfw"):
        y = _images(name)
        g = torch.Generator().manual_seed(3)
        x0 = y[torch.randint(0, len(y), (2048,), generator=g)]
        eps = torch.randn(x0.shape, generator=g)
        yield (
            f"{name} ({len(y):,} x {y.shape[1]})",
            y,
            (lambda s, x0=x0, eps=eps: x0 + s * eps),
            (0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
        )


def adaptive(small: bool, repeats: int = 3) -> None:
    """Certified truncation, default policy ("auto": timed pilot, remembered verdict) and ``"always"``, against the
    exact kernel in the same run: ratio truncated / exact per row, median over ``repeats`` interleaved measurements
    (each the minimum of 3 rounds; repeated calls at one sigma, as a benchmark or a sampler's inner loop makes)."""
    import statistics

    print("\n## Certified truncation never slower than exact (tolerance=1e-6, float32)\n")
    print(
        "| set | sigma | exact CPU s | auto / exact (median) | auto / exact (all) | always / exact | auto path | "
        "auto truncated fraction | certificate | max error vs exact |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, y, queries, sigmas in adaptive_rows(small):
        exact = ss.EmpiricalScore(y, device="cpu")
        auto = ss.EmpiricalScore(y, tolerance=1e-6, device="cpu")
        always = ss.EmpiricalScore(y, tolerance=1e-6, device="cpu", truncation_policy="always")
        for f in (auto, always):
            f.denoise(queries(sigmas[0])[:1], sigmas[0])  # index build outside the timings
        for s in sigmas:
            x = queries(s)
            fns = {
                "exact": lambda: exact.denoise(x, s),
                "auto": lambda: auto.denoise(x, s),
                "always": lambda: always.denoise(x, s),
            }
            runs = [time_interleaved(fns, 3) for _ in range(repeats)]
            ratios = [t["auto"] / t["exact"] for t in runs]
            t_ex = statistics.median(t["exact"] for t in runs)
            r_always = statistics.median(t["always"] / t["exact"] for t in runs)
            err = float((auto.denoise(x, s) - exact.denoise(x, s)).norm(dim=1).max())
            print(
                f"| {name} | {s} | {t_ex:.3g} | {statistics.median(ratios):.2f} | "
                f"{', '.join(f'{r:.2f}' for r in ratios)} | {r_always:.2f} | {auto._truncator.last_decision} | "
                f"{auto.last_fraction_truncated:.2f} | {auto.last_certificate:.2g} | {err:.2g} |",
                flush=True,
            )
        exact = auto = always = None


def main() -> None:
    threads = int(os.environ.get("SMOOTHSCORE_BENCH_THREADS", "1"))
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)  # the truncation's candidate search
    small = os.environ.get("SMOOTHSCORE_BENCH_SMALL") == "1"
    only = os.environ.get("SMOOTHSCORE_BENCH_ONLY")
    if only in (None, "speed"):
        speed_grid(small)
    if only in (None, "truncation"):
        truncation(small)
    if only in (None, "adaptive"):
        adaptive(small)


if __name__ == "__main__":
    main()
