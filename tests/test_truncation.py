"""Certified neighbour truncation (issue 9, item 3): the truncated result is within ``last_certificate`` of the exact
one (float64 brute force), for the ESF (denoise, score, log_prob; weights, temperature) and the unconditional p_MN
score (exact and optimal level), and a sampler over the whole sigma range switches between truncated and exact on
its own while matching the exact run within the certificate-derived tolerance."""

import math

import pytest
import torch

import smoothscore as ss
from smoothscore.sampling import sample

RND = 1e-10  # float64 rounding of the references (cdist uses the GEMM form) at data scale ~3


def low_dim(n=4000, D=32, r=3, noise=1e-3, seed=0):
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(D, r, generator=g, dtype=torch.float64))[0].T
    y = torch.randn(n, r, generator=g, dtype=torch.float64) @ basis + noise * torch.randn(
        n, D, generator=g, dtype=torch.float64
    )
    return y + 2.0, g


def brute_denoise(y, x, sigma, T=1.0, w=None):
    logit = -(torch.cdist(x, y) ** 2) / (2 * sigma**2 * T)
    if w is not None:
        logit = logit + torch.log(w / w.sum())
    return torch.softmax(logit, 1) @ y, torch.logsumexp(logit, 1)


@pytest.mark.parametrize("tol", [1e-3, 1e-9])
def test_esf_truncated_within_certificate(tol):
    y, g = low_dim()
    x = y[:40] + 0.03 * torch.randn(40, y.shape[1], generator=g, dtype=torch.float64)
    tr = ss.EmpiricalScore(y, tolerance=tol, dtype="float64", device="cpu")
    used = set()
    for sigma in (0.02, 0.1, 0.3, 3.0):
        ref, ref_lse = brute_denoise(y, x, sigma)
        err = (tr.denoise(x, sigma) - ref).norm(dim=1).max()
        assert tr.last_certificate <= tol and err <= tr.last_certificate + RND  # + float64 rounding
        used.add(tr.last_fraction_truncated > 0)
        err_s = (tr.score(x, sigma) - (ref - x) / sigma**2).norm(dim=1).max()
        assert err_s <= tr.last_certificate + RND / sigma**2
        ref_lp = ref_lse - math.log(len(y)) - 0.5 * y.shape[1] * math.log(2 * math.pi * sigma**2)
        err_lp = (tr.log_prob(x, sigma) - ref_lp).abs().max()
        assert err_lp <= tr.last_certificate + RND / sigma**2  # + rounding of the reference distances / sigma^2
    assert used == {True, False}  # truncated at small sigma, exact fallback at large sigma


def test_esf_truncation_with_weights_and_temperature():
    y, g = low_dim(n=2000, seed=1)
    w = torch.rand(len(y), generator=g, dtype=torch.float64)
    x = y[:30] + 0.05 * torch.randn(30, y.shape[1], generator=g, dtype=torch.float64)
    tr = ss.EmpiricalScore(y, temperature=2.0, tolerance=1e-6, weights=w, dtype="float64", device="cpu")
    ref, _ = brute_denoise(y, x, 0.05, T=2.0, w=w)
    err = (tr.denoise(x, 0.05) - ref).norm(dim=1).max()
    assert tr.last_fraction_truncated == 1.0 and err <= tr.last_certificate + RND


@pytest.mark.parametrize("mode, D", [("exact", 16), ("optimal", 64)])
def test_unconditional_truncated_within_certificate(mode, D):
    # optimal level: weights ~ r^-(d-2), a polynomial tail; d = 64 makes it steep enough to truncate
    y, g = low_dim(n=2000, D=D, seed=2)
    x = y[:30] + 0.01 * torch.randn(30, y.shape[1], generator=g, dtype=torch.float64)
    kw = dict(sigma_min=0.005, sigma_max=5.0, mode=mode, dtype="float64", device="cpu")
    ex = ss.UnconditionalEmpiricalScore(y, **kw)
    tr = ss.UnconditionalEmpiricalScore(y, tolerance=1e-6, **kw)
    err = (tr.score(x) - ex.score(x)).norm(dim=1).max()
    assert tr.last_fraction_truncated > 0.5 and tr.last_certificate <= 1e-6
    assert err <= tr.last_certificate + 1e-9 * ex.score(x).norm(dim=1).max()
    err_lp = (tr.log_prob(x) - ex.log_prob(x)).abs().max()
    assert err_lp <= tr.last_certificate + 1e-12 * ex.log_prob(x).abs().max()
    far = x + 3.0  # far from the data: the heavy tail forces the exact kernel
    tr.score(far)
    assert tr.last_fraction_truncated < 1.0


def test_sampler_switches_between_truncated_and_exact_and_matches():
    y, g = low_dim(n=3000, D=16, seed=3)
    sigmas = ss.noise.geometric_schedule(25, 0.01, 20.0)
    x0 = 20.0 * torch.randn(16, y.shape[1], generator=g, dtype=torch.float64) + 2.0
    ex = ss.EmpiricalScore(y, dtype="float64", device="cpu")
    tr = ss.EmpiricalScore(y, tolerance=1e-8, dtype="float64", device="cpu")
    log = []
    a = sample(ex, x0, sigmas, method="euler")
    b = sample(
        tr,
        x0,
        sigmas,
        method="euler",
        callback=lambda st: log.append(
            (st["sigma"], st["sigma_next"], tr.last_fraction_truncated, tr.last_certificate)
        ),
    )
    fracs = [f for *_, f, _ in log]
    assert fracs[0] == 0.0 and fracs[-1] == 1.0  # exact at large sigma, truncated at small sigma, on its own
    # Euler: x_{i+1} = x_i - (s_{i+1} - s_i) s_i score, so each step moves by at most |ds| s cert_i
    budget = sum(abs(sn - s) * s * c for s, sn, _, c in log)
    assert (a - b).norm(dim=1).max() <= budget + 1e-9
