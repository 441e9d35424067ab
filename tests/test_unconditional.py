"""UnconditionalEmpiricalScore (Paper B, Eq. 5 and the unified mixture p_MN) against float64 brute force."""

import math

import numpy as np
import pytest
import torch

from smoothscore.errors import ConfigError, ShapeError, SigmaError
from smoothscore.scores.unconditional import UnconditionalEmpiricalScore, log_quadrature


def _data(m=7, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    train = torch.randn(m, d, generator=g, dtype=torch.float64)
    x = train[:4] + 0.3 * torch.randn(4, d, generator=g, dtype=torch.float64)
    x = torch.cat([x, 2.0 * torch.randn(3, d, generator=g, dtype=torch.float64)])
    return train, x


def brute_score(x, train, sigmas, T=1.0, logq=None):
    """sum_ij w_ij (mu_j - x)/sigma_i^2 with w ∝ (lambda_i q_i N(x; mu_j, sigma_i^2))^(1/T), lambda = sigma^2."""
    d = x.shape[1]
    x, train = x.numpy(), train.numpy()
    sigmas = np.asarray(sigmas, dtype=np.float64)
    out = np.zeros_like(x)
    logq = np.zeros(len(sigmas)) if logq is None else logq
    lam = 2 * np.log(sigmas) + logq - d * np.log(sigmas)
    for n in range(x.shape[0]):
        terms, coef = [], []
        for j in range(train.shape[0]):
            r2 = ((x[n] - train[j]) ** 2).sum()
            terms.append((lam - r2 / (2 * sigmas**2)) / T)  # all levels i of centre j
            coef.append(1.0 / sigmas**2)
        t = np.array(terms)  # (M, L)
        w = np.exp(t - t.max())
        w /= w.sum()
        out[n] = ((w * np.array(coef)).sum(1)[:, None] * (train - x[n])).sum(0)
    return out


@pytest.mark.parametrize("T", [1.0, 3.0])
def test_discrete_levels_match_brute_force(T):
    train, x = _data()
    sig = np.geomspace(0.05, 5.0, 9)
    f = UnconditionalEmpiricalScore(
        train, sigmas=sig, temperature=T, dtype="float64", device="cpu", block_elements=40
    )  # tiny blocks: exercises the chunking
    np.testing.assert_allclose(f.score(x).numpy(), brute_score(x, train, sig, T), rtol=1e-9, atol=1e-10)
    assert f.conditioned is False
    # sigma is ignored
    assert torch.equal(f.score(x, 0.3), f.score(x))


def test_continuous_range_matches_fine_trapezoid():
    train, x = _data(m=5, d=10, seed=1)
    f = UnconditionalEmpiricalScore(train, sigma_min=0.02, sigma_max=20.0, dtype="float64", device="cpu")
    s_fine = np.exp(np.linspace(math.log(0.02), math.log(20.0), 40001))
    h = np.log(s_fine[1]) - np.log(s_fine[0])
    logq = np.full(s_fine.size, math.log(h))
    logq[[0, -1]] += math.log(0.5)  # trapezoid in log sigma
    ref = brute_score(x[:3], train, s_fine, 1.0, logq)
    np.testing.assert_allclose(f.score(x[:3]).numpy(), ref, rtol=1e-6, atol=1e-8)


def test_quadrature_integrates_peak():
    # integral over log sigma of exp(f) with f = -(d-2) ln sigma - r^2/(2 sigma^2): closed form via Gamma function
    d, r2 = 66, 3.0
    sig, lq = log_quadrature(1e-3, 1e3, d)
    f = -(d - 2) * np.log(sig) - r2 / (2 * sig**2)
    num = np.logaddexp.reduce(f + lq)
    k = (d - 2) / 2  # int_0^inf s^{-2k} e^{-r2/(2 s^2)} ds/s = 0.5 Gamma(k) (r2/2)^{-k}
    exact = math.log(0.5) + math.lgamma(k) - k * math.log(r2 / 2)
    assert abs(num - exact) < 1e-7


@pytest.mark.parametrize("mode", ["exact", "optimal"])
def test_autograd_of_potential_is_score(mode):
    train, x = _data()
    f = UnconditionalEmpiricalScore(
        train, sigma_min=0.05, sigma_max=10.0, mode=mode, temperature=2.0, dtype="float64", device="cpu"
    )
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f.log_prob(xr).sum(), xr)
    np.testing.assert_allclose(g.numpy(), f.score(x).numpy(), rtol=1e-8, atol=1e-10)


def test_log_prob_normalised_against_brute_force():
    train, x = _data(m=4, d=4)
    sig = np.array([0.3, 1.0, 2.0])
    f = UnconditionalEmpiricalScore(train, sigmas=sig, dtype="float64", device="cpu")
    lam = sig**2 / (sig**2).sum()
    ref = []
    for xn in x.numpy():
        p = 0.0
        for mu in train.numpy():
            r2 = ((xn - mu) ** 2).sum()
            p += (lam * (2 * math.pi * sig**2) ** (-2) * np.exp(-r2 / (2 * sig**2))).sum() / 4
        ref.append(math.log(p))
    np.testing.assert_allclose(f.log_prob(x).numpy(), ref, rtol=1e-10)


def test_optimal_level_closed_form_and_temperature():
    train, x = _data()
    d = train.shape[1]
    for T in (1.0, 4.0):
        f = UnconditionalEmpiricalScore(train, mode="optimal", temperature=T, dtype="float64", device="cpu")
        diff = x[:, None] - train[None]
        r2 = (diff**2).sum(-1)
        w = torch.softmax(-(d - 2) * 0.5 * torch.log(r2) / T, 1)
        ref = -(w[..., None] * diff * (d - 2) / r2[..., None]).sum(1)
        np.testing.assert_allclose(f.score(x).numpy(), ref.numpy(), rtol=1e-9)
    # higher temperature spreads the weights (lower max weight)
    w1 = UnconditionalEmpiricalScore(train, mode="optimal", device="cpu", dtype="float64").weights(x)
    w9 = UnconditionalEmpiricalScore(train, mode="optimal", temperature=9.0, device="cpu", dtype="float64").weights(x)
    assert bool((w9.max(1).values < w1.max(1).values).all())


def test_optimal_approximates_exact_in_high_dimension():
    # sigma-domination: in d = 400 the optimal level carries the mixture; the two scores agree closely
    g = torch.Generator().manual_seed(3)
    train = torch.randn(6, 400, generator=g, dtype=torch.float64)
    x = train[:3] + 0.05 * torch.randn(3, 400, generator=g, dtype=torch.float64)
    ex = UnconditionalEmpiricalScore(train, sigma_min=1e-3, sigma_max=100.0, dtype="float64", device="cpu").score(x)
    op = UnconditionalEmpiricalScore(train, mode="optimal", dtype="float64", device="cpu").score(x)
    rel = ((ex - op).norm(dim=1) / ex.norm(dim=1)).max()
    assert float(rel) < 0.01


def test_neighbour_restriction_and_guard():
    train, x = _data()
    full = UnconditionalEmpiricalScore(train, mode="optimal", dtype="float64", device="cpu")
    k_all = UnconditionalEmpiricalScore(
        train, mode="optimal", k_neighbors=train.shape[0] - 1, dtype="float64", device="cpu"
    )
    # dropping the farthest centre changes the score by at most its (tiny) weight share
    assert torch.allclose(full.score(x[:4]), k_all.score(x[:4]), rtol=1e-3, atol=1e-6)
    one = UnconditionalEmpiricalScore(train, mode="optimal", k_neighbors=1, dtype="float64", device="cpu")
    s = one.score(train[:2].clone())  # exactly on a training point: sigma* = 0 guarded
    assert bool(torch.isfinite(s).all()) and float(s.abs().max()) == 0.0
    # callable temperature of the query's own level
    ft = UnconditionalEmpiricalScore(
        train, mode="optimal", temperature=lambda s: (5.0 / s).clamp(min=1.0), dtype="float64", device="cpu"
    )
    assert bool(torch.isfinite(ft.score(x)).all())
    assert torch.allclose(ft.sigma_star(x), (x[:, None] - train[None]).norm(dim=-1).min(1).values / 12**0.5)


def test_bad_input():
    train, x = _data()
    with pytest.raises(ConfigError):
        UnconditionalEmpiricalScore(train, mode="nope")
    with pytest.raises(ConfigError):
        UnconditionalEmpiricalScore(train, temperature=0.0)
    with pytest.raises(ConfigError):
        UnconditionalEmpiricalScore(train, weighting="cubic")
    with pytest.raises(SigmaError):
        UnconditionalEmpiricalScore(train, sigmas=[1.0, -1.0])
    with pytest.raises(ConfigError):
        UnconditionalEmpiricalScore(train, sigma_min=2.0, sigma_max=1.0)
    with pytest.raises(ShapeError):
        UnconditionalEmpiricalScore(train, device="cpu").score(torch.zeros(2, 5))


def test_float32_default_and_top_level_name():
    import smoothscore as ss

    train, x = _data()
    f = ss.UnconditionalEmpiricalScore(train.float(), device="cpu")
    out = f.score(x.float())
    assert out.dtype == torch.float32 and out.shape == x.shape


@pytest.mark.parametrize("mode", ["exact", "optimal"])
def test_neighbour_restricted_equals_brute_force_over_k_nearest(mode):
    train, x = _data()
    k = 3
    sig = np.geomspace(0.1, 4.0, 7)
    f = UnconditionalEmpiricalScore(
        train, sigmas=sig, mode=mode, temperature=2.0, k_neighbors=k, dtype="float64", device="cpu"
    )
    out = f.score(x).numpy()
    for n in range(x.shape[0]):
        near = (train - x[n]).norm(dim=1).argsort()[:k]
        sub = UnconditionalEmpiricalScore(
            train[near], sigmas=sig, mode=mode, temperature=2.0, dtype="float64", device="cpu"
        )
        np.testing.assert_allclose(out[n], sub.score(x[n : n + 1]).numpy()[0], rtol=1e-10, atol=1e-12)
    if mode == "exact":  # and against the float64 brute-force sum over those k centres
        near0 = (train - x[0]).norm(dim=1).argsort()[:k]
        np.testing.assert_allclose(out[0], brute_score(x[:1], train[near0], sig, 2.0)[0], rtol=1e-9, atol=1e-10)
