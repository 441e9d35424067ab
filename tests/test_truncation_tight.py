"""Certificates that are *tight* (issue 18): near-worst-case data where the truncated result's true error is within
10x of ``last_certificate`` and far above float64 rounding, so a certificate that is too small (a dropped-mass count
``k/n`` for ``(n-k)/n``, the kept instead of the dropped ``pi``, the unconditional bound without ``log(n - k)``) fails
``err <= certificate`` and one that is vacuous fails ``certificate <= 10 err``.

The data: K - 1 = 31 points near ``A = e_1`` and 1969 near ``B = -1.05 e_1``, queries at the origin. The flat index
keeps the rows of A (distances ~1) and the nearest row of B, so ``tau`` is the distance of the dropped rows to the
rounding of their jitter and the bound ``(n - K)/n exp(-tau / 2 sigma^2)`` is their true mass; their mean is on the far
side, so ``|m - m_K| = eps |m_drop - m_K|`` nearly reaches the bound ``delta (R + |m_K - c|)``. sigma is small enough
that ``eps`` is ~1e-2 (the bound is linear in the dropped count there: a count 61x too small shows)."""

import math

import torch

import smoothscore as ss
from smoothscore.data.arrays import PointSet
from smoothscore.search.lower_bound_index import make_index

N, K = 2000, 32


def two_clusters(D=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.zeros(D, dtype=torch.float64), torch.zeros(D, dtype=torch.float64)
    a[0], b[0] = 1.0, -1.05
    y = torch.cat(
        [
            a + 1e-3 * torch.randn(K - 1, D, generator=g, dtype=torch.float64),
            b + 1e-3 * torch.randn(N - K + 1, D, generator=g, dtype=torch.float64),
        ]
    )
    return y, 1e-3 * torch.randn(5, D, generator=g, dtype=torch.float64)


def _tight(err, cert):
    assert err > 1e-3  # far above float64 rounding
    assert err <= cert <= 10 * err, (err, cert)


def test_esf_certificate_is_tight_uniform_and_weighted():
    y, x = two_clusters()
    for w in (None, torch.full((N,), 3.0, dtype=torch.float64)):  # weights: the dropped pi is 1968/2000 of the mass
        ex = ss.EmpiricalScore(y, weights=w, dtype="float64", device="cpu")
        tr = ss.EmpiricalScore(y, weights=w, tolerance=10.0, dtype="float64", device="cpu", truncation_index="flat")
        for sigma in (0.07, 0.08):
            err = float((tr.denoise(x, sigma) - ex.denoise(x, sigma)).norm(dim=1).max())
            assert tr.last_fraction_truncated == 1.0
            _tight(err, tr.last_certificate)  # measured: cert / err = 3.75 (sigma 0.07), 3.19 (0.08)


def test_unconditional_certificate_is_tight():
    y, x = two_clusters()
    kw = dict(sigma_min=0.2, sigma_max=0.3, dtype="float64", device="cpu")
    ex = ss.UnconditionalEmpiricalScore(y, **kw)
    tr = ss.UnconditionalEmpiricalScore(y, tolerance=1e3, truncation_index="flat", truncation_policy="always", **kw)
    err = float((tr.score(x) - ex.score(x)).norm(dim=1).max())
    assert tr.last_fraction_truncated == 1.0
    _tight(err, tr.last_certificate)  # measured: cert / err = 3.25


def test_flat_index_margin_covers_float32_ties():
    # every row twice and queries far away (|u|^2 ~ 1e4): the K-th and (K+1)-th rows are at the same exact distance,
    # FAISS's float32 |a|^2 + |b|^2 - 2 a.b rounds it up for about half of the queries; tau must still be below
    # every dropped row's exact float64 distance, and within the stated margin 1e-5 (|u|^2 + R^2) of it
    g = torch.Generator().manual_seed(3)
    base = torch.randn(300, 8, generator=g, dtype=torch.float64)
    y = torch.cat([base, base])
    pts = PointSet(y, dtype=torch.float64, device=torch.device("cpu"))
    u = 100.0 * torch.nn.functional.normalize(torch.randn(64, 8, generator=g, dtype=torch.float64), dim=1)
    idx, tau, _ = make_index(pts, "flat").search(u, 33)  # odd k: the 33rd row's twin is dropped
    d2 = torch.cdist(u, pts.rows(torch.arange(len(y)), torch.float64)) ** 2
    dropped = torch.ones_like(d2, dtype=torch.bool).scatter_(1, idx, False)
    nearest_dropped = torch.where(dropped, d2, math.inf).min(1).values
    assert bool((nearest_dropped >= tau).all())
    assert bool((nearest_dropped - tau <= 2e-5 * ((u * u).sum(1) + pts.radius**2)).all())


def test_callable_temperature_not_served_when_the_nearest_row_may_be_dropped():
    # rank-2 lower bounds (the residual carries < 1e-4 of the variance): 40 decoys share the query's plane position
    # but have the opposite residual (lower bound ~1e-4, true distance^2 ~ 4 rho^2), the true nearest row is 0.04 away
    # in the plane. The kept set is the decoys, its nearest distance exceeds tau, so T(sigma_nn) cannot be certified:
    # the query must go to the exact kernel however large the tolerance (a T from a decoy is wrong)
    g = torch.Generator().manual_seed(0)
    D, rho = 6, 0.03
    plane = torch.zeros(2000, D, dtype=torch.float64)
    plane[:, :2] = torch.randn(2000, 2, generator=g, dtype=torch.float64)
    plane[:, 2:] = 1e-5 * torch.randn(2000, D - 2, generator=g, dtype=torch.float64)
    q = torch.zeros(1, D, dtype=torch.float64)
    q[0, 2] = rho
    decoys = torch.zeros(40, D, dtype=torch.float64)
    decoys[:, :2] = 0.01 * torch.randn(40, 2, generator=g, dtype=torch.float64)
    decoys[:, 2] = -rho
    near = q.clone()
    near[0, 0] = 0.04
    y = torch.cat([plane, decoys, near])
    kw = dict(sigma_min=0.01, sigma_max=0.5, temperature=lambda s: 1.0 + 2.0 * s, dtype="float64", device="cpu")
    ex = ss.UnconditionalEmpiricalScore(y, **kw)
    tr = ss.UnconditionalEmpiricalScore(y, tolerance=1e12, truncation_index="flat", truncation_policy="always", **kw)
    assert make_index(tr.points, "flat").rank == 2
    got = tr.score(q)
    assert tr.last_fraction_truncated == 0.0 and tr.last_certificate == 0.0
    torch.testing.assert_close(got, ex.score(q), rtol=1e-12, atol=1e-12)
