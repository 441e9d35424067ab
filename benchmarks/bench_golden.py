"""Certified truncation vs GoldDiff's golden subset (uncertified), in one run, on sklearn digits (1,797 real
images, 8x8): seconds per denoiser call and the largest error against the float64 exact field, at the sigmas of
GoldDiff's DDIM-10 grid. Rows: the exact ESF (baseline), ``EmpiricalScore(tolerance=1e-4)`` (certified: its
``last_certificate`` bounds the error), the golden subset on the ESF, the exact PCA-locality field and the golden
subset on it (ratios vs the exact field of the same kind, timed in the same run).

    PYTHONPATH=src python benchmarks/bench_golden.py
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import time_it  # noqa: E402

import smoothscore as ss  # noqa: E402
from smoothscore.data.digits import load_digits  # noqa: E402
from smoothscore.sampling.ddim import ddim_sigmas  # noqa: E402
from smoothscore.scores.golden_subset import GoldenSubset  # noqa: E402
from smoothscore.scores.pca_locality import PCALocalityScore  # noqa: E402


def main() -> None:
    torch.manual_seed(0)
    train = load_digits(size=8).x
    n = len(train)
    k_min, k_max = n // 20, n // 10
    q = train[torch.randperm(n)[:64]]
    print(
        f"\n## Certified truncation vs golden subset, digits n={n} (1x8x8), 64 queries, {torch.get_num_threads()} thr\n"
    )
    print("| sigma | variant | seconds | ratio vs exact | max abs error vs float64 exact | certified |")
    print("|---|---|---|---|---|---|")
    sig_grid = ddim_sigmas(10)[:-1].tolist()
    for sigma in (sig_grid[-1], sig_grid[-3], sig_grid[5], sig_grid[0]):
        x = q + sigma * torch.randn_like(q)
        kinds = {
            "ESF": (
                ss.EmpiricalScore(train, dtype="float64", device="cpu"),
                {
                    "exact": ss.EmpiricalScore(train, device="cpu"),
                    "truncated tol=1e-4": ss.EmpiricalScore(train, tolerance=1e-4, device="cpu"),
                    "golden subset": PCALocalityScore(
                        train, mask="ones", golden=GoldenSubset(k_min, k_max), device="cpu"
                    ),
                },
            ),
            "PCA-locality": (
                PCALocalityScore(train, dtype="float64", device="cpu"),
                {
                    "exact": PCALocalityScore(train, device="cpu"),
                    "golden subset": PCALocalityScore(train, golden=GoldenSubset(k_min, k_max), device="cpu"),
                },
            ),
        }
        for kind, (ref_field, fields) in kinds.items():
            ref = ref_field.denoise(x.double(), sigma)
            base = None
            for name, f in fields.items():
                sec = time_it(lambda f=f: f.denoise(x, sigma), repeats=3, warmup=1)
                base = base or sec
                err = float((f.denoise(x, sigma).double() - ref).abs().max())
                cert = getattr(f, "last_certificate", None) if "truncated" in name else None
                cert_s = (
                    "no (approximate)" if "golden" in name else (f"bound {cert:.2g}" if cert is not None else "exact")
                )
                print(f"| {sigma:.3g} | {kind} {name} | {sec:.4g} | {sec / base:.2f} | {err:.2e} | {cert_s} |")


if __name__ == "__main__":
    main()
