"""Certified neighbour truncation (issue 9, item 3): the truncated result is within ``last_certificate`` of the exact
one (float64 brute force), for the ESF (denoise, score, log_prob; weights, temperature) and the unconditional p_MN
score (exact and optimal level), and a sampler over the whole sigma range switches between truncated and exact on
its own while matching the exact run within the certificate-derived tolerance — each with the flat and the IVF
candidate index. The indexes' own contract (every row not returned is at squared distance >= tau) is checked
against all rows, on low-rank and full-rank data, whatever cells the IVF visits."""

import math

import pytest
import torch

import smoothscore as ss
from smoothscore.data.arrays import PointSet
from smoothscore.errors import ConfigError
from smoothscore.sampling import sample
from smoothscore.search.lower_bound_index import IVF_MAX_RANK, IVF_MIN_POINTS, make_index, resolve_kind

RND = 1e-10  # float64 rounding of the references (cdist uses the GEMM form) at data scale ~3
KINDS = ["dense", "flat", "ivf"]


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


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tol", [1e-3, 1e-9])
def test_esf_truncated_within_certificate(tol, kind):
    y, g = low_dim()
    x = y[:40] + 0.03 * torch.randn(40, y.shape[1], generator=g, dtype=torch.float64)
    tr = ss.EmpiricalScore(
        y, tolerance=tol, dtype="float64", device="cpu", truncation_index=kind, truncation_policy="always"
    )
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


@pytest.mark.parametrize("kind", KINDS)
def test_esf_truncation_with_weights_and_temperature(kind):
    y, g = low_dim(n=2000, seed=1)
    w = torch.rand(len(y), generator=g, dtype=torch.float64)
    x = y[:30] + 0.05 * torch.randn(30, y.shape[1], generator=g, dtype=torch.float64)
    kw = dict(dtype="float64", device="cpu", truncation_index=kind, truncation_policy="always")
    tr = ss.EmpiricalScore(y, temperature=2.0, tolerance=1e-6, weights=w, **kw)
    ref, _ = brute_denoise(y, x, 0.05, T=2.0, w=w)
    err = (tr.denoise(x, 0.05) - ref).norm(dim=1).max()
    assert tr.last_fraction_truncated == 1.0 and err <= tr.last_certificate + RND


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode, D", [("exact", 16), ("optimal", 64)])
def test_unconditional_truncated_within_certificate(mode, D, kind):
    # optimal level: weights ~ r^-(d-2), a polynomial tail; d = 64 makes it steep enough to truncate
    y, g = low_dim(n=2000, D=D, seed=2)
    x = y[:30] + 0.01 * torch.randn(30, y.shape[1], generator=g, dtype=torch.float64)
    kw = dict(sigma_min=0.005, sigma_max=5.0, mode=mode, dtype="float64", device="cpu")
    ex = ss.UnconditionalEmpiricalScore(y, **kw)
    tr = ss.UnconditionalEmpiricalScore(y, tolerance=1e-6, truncation_index=kind, truncation_policy="always", **kw)
    err = (tr.score(x) - ex.score(x)).norm(dim=1).max()
    assert tr.last_fraction_truncated > 0.5 and tr.last_certificate <= 1e-6
    assert err <= tr.last_certificate + 1e-9 * ex.score(x).norm(dim=1).max()
    err_lp = (tr.log_prob(x) - ex.log_prob(x)).abs().max()
    assert err_lp <= tr.last_certificate + 1e-12 * ex.log_prob(x).abs().max()
    far = x + 3.0  # far from the data: the heavy tail forces the exact kernel
    tr.score(far)
    assert tr.last_fraction_truncated < 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_unconditional_callable_temperature_truncated_within_certificate(kind):
    # T(sigma_nn) needs the true nearest point among the kept ones (certified only where r2min <= tau)
    y, g = low_dim(n=2000, D=16, seed=9)
    x = y[:30] + 0.01 * torch.randn(30, y.shape[1], generator=g, dtype=torch.float64)
    kw = dict(sigma_min=0.005, sigma_max=5.0, temperature=lambda s: 1.0 + 0.3 * torch.exp(-s / 0.01), dtype="float64")
    ex = ss.UnconditionalEmpiricalScore(y, device="cpu", **kw)
    tr = ss.UnconditionalEmpiricalScore(
        y, tolerance=1e-6, device="cpu", truncation_index=kind, truncation_policy="always", **kw
    )
    err = (tr.score(x) - ex.score(x)).norm(dim=1).max()
    assert tr.last_fraction_truncated > 0.5 and tr.last_certificate <= 1e-6
    assert err <= tr.last_certificate + 1e-9 * ex.score(x).norm(dim=1).max()


@pytest.mark.parametrize("kind", KINDS)
def test_sampler_switches_between_truncated_and_exact_and_matches(kind):
    y, g = low_dim(n=3000, D=16, seed=3)
    sigmas = ss.noise.geometric_schedule(25, 0.01, 20.0)
    x0 = 20.0 * torch.randn(16, y.shape[1], generator=g, dtype=torch.float64) + 2.0
    ex = ss.EmpiricalScore(y, dtype="float64", device="cpu")
    tr = ss.EmpiricalScore(
        y, tolerance=1e-8, dtype="float64", device="cpu", truncation_index=kind, truncation_policy="always"
    )
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


def full_rank(n=3000, D=12, seed=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, D, generator=g, dtype=torch.float64) + 1.0, g


@pytest.mark.parametrize("data", ["low-rank", "full-rank"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_index_certificate_covers_every_row(data, kind, dtype):
    # the search contract checked against all rows: every row not returned has |u - v|^2 >= tau (float64 brute
    # force on the rows as stored), for any reach (IVF: unvisited cells bounded by their radius / interval), and
    # tau <= tau_k; the returned rows are the k smallest lower bounds among those certified
    y, g = low_dim(n=3000, D=24, r=3, noise=1e-2, seed=4) if data == "low-rank" else full_rank()
    pts = PointSet(y, dtype=dtype, device=torch.device("cpu"))
    index = make_index(pts, kind, n_probe=2)
    assert index.kind == kind
    u = pts.rows(torch.arange(0, 3000, 60), torch.float64)
    u = u + 0.05 * torch.randn(u.shape, generator=g, dtype=torch.float64)
    d2 = torch.cdist(u, pts.rows(torch.arange(3000), torch.float64)) ** 2
    positive = 0
    for k in (8, 64):
        for reach in (None, 0.0, 0.5, 4.0, math.inf):
            r = None if reach is None else torch.full((len(u),), reach, dtype=torch.float64)
            idx, tau, tau_k = index.search(u, k, r)
            dropped = torch.ones_like(d2, dtype=torch.bool).scatter_(1, idx, False)
            assert bool((torch.where(dropped, d2, math.inf).min(1).values >= tau).all())
            assert bool((tau <= tau_k).all()) and idx.shape == (len(u), k) and int(idx.min()) >= 0
            assert len(set(idx[0].tolist())) == k  # k distinct rows
            positive += int((tau > 0).sum())
    assert positive > 0.3 * 2 * 5 * len(u)  # not a vacuous certificate


@pytest.mark.parametrize("kind", KINDS)
def test_truncation_permutation_invariant(kind):
    # the IVF cells depend on the row order; the result does not, beyond the two certificates
    y, g = low_dim(n=3000, seed=6)
    x = y[:25] + 0.03 * torch.randn(25, y.shape[1], generator=g, dtype=torch.float64)
    perm = torch.randperm(len(y), generator=g)
    kw = dict(tolerance=1e-7, dtype="float64", device="cpu", truncation_index=kind, truncation_policy="always")
    a, b = ss.EmpiricalScore(y, **kw), ss.EmpiricalScore(y[perm], **kw)
    for sigma in (0.02, 0.1):  # all truncated / some truncated
        da, db = a.denoise(x, sigma), b.denoise(x, sigma)
        assert sigma > 0.05 or a.last_fraction_truncated == b.last_fraction_truncated == 1.0
        assert (da - db).norm(dim=1).max() <= a.last_certificate + b.last_certificate + RND


def test_ivf_visits_cells_incrementally_and_falls_back_to_exact():
    y, g = low_dim(n=4000, D=32, r=3, noise=1e-3, seed=7)
    x = y[:32] + 0.02 * torch.randn(32, y.shape[1], generator=g, dtype=torch.float64)
    tr = ss.EmpiricalScore(
        y, tolerance=1e-8, dtype="float64", device="cpu", truncation_index="ivf", truncation_policy="always"
    )
    ref, _ = brute_denoise(y, x, 0.02)
    err = (tr.denoise(x, 0.02) - ref).norm(dim=1).max()
    st, index = tr._truncator.last_stats, tr._truncator.index
    assert tr.last_fraction_truncated == 1.0 and err <= tr.last_certificate + RND <= 1e-8 + RND
    # round 1: the n_probe nearest cells (no cell bound); round 2: the cells below the bisected reach — fewer rows
    # scanned over both rounds than a flat search, and every cell bound in force (tau > 0)
    assert st["rounds"] >= 2 and 0 < st["points"] < 0.5 * len(y) and index.nlist > 100
    assert index.last_cells < index.nlist / 4
    # large sigma: nothing certifiable, the exact kernel runs (certificate 0), after at most two short rounds
    ref, _ = brute_denoise(y, x, 5.0)
    err = (tr.denoise(x, 5.0) - ref).norm(dim=1).max()
    assert tr.last_fraction_truncated == 0.0 and tr.last_certificate == 0.0 and err <= RND
    assert tr._truncator.last_stats["rounds"] <= 2


def test_truncation_index_keyword():
    with pytest.raises(ConfigError, match="truncation_index"):
        ss.EmpiricalScore(torch.zeros(10, 2), tolerance=1e-6, truncation_index="hnsw")
    with pytest.raises(ConfigError, match="policy"):
        ss.EmpiricalScore(torch.zeros(10, 2), tolerance=1e-6, truncation_policy="never")
    with pytest.raises(ConfigError, match="truncation_index"):
        ss.UnconditionalEmpiricalScore(torch.zeros(10, 2), tolerance=1e-6, truncation_index="hnsw")
    assert resolve_kind("auto", IVF_MIN_POINTS - 1, 3) == "dense" and resolve_kind("auto", IVF_MIN_POINTS, 3) == "ivf"
    assert resolve_kind("auto", IVF_MIN_POINTS, IVF_MAX_RANK + 1) == "flat"  # high intrinsic dimension: flat
    assert resolve_kind("ivf", 10, 64) == "ivf" and resolve_kind("flat", 10**7, 3) == "flat"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run benchmarks/gpu_check.sh)")
@pytest.mark.parametrize("kind", KINDS)
def test_truncation_on_gpu_within_certificate(kind):
    # rows and kernel on the GPU, the FAISS search on the CPU: the float64 result is within the certificate
    y, g = low_dim(n=3000, seed=10)
    x = y[:32] + 0.03 * torch.randn(32, y.shape[1], generator=g, dtype=torch.float64)
    tr = ss.EmpiricalScore(
        y, tolerance=1e-8, dtype="float64", device="cuda", truncation_index=kind, truncation_policy="always"
    )
    ref, _ = brute_denoise(y, x, 0.02)
    err = (tr.denoise(x.cuda(), 0.02).cpu() - ref).norm(dim=1).max()
    assert tr.last_fraction_truncated == 1.0 and err <= tr.last_certificate + RND
