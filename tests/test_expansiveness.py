"""Expansiveness (Paper B, Sec. 3.2): gamma_ex on configurations with known answers; power-iteration spectral norm
against the dense Jacobian."""

import pytest
import torch

from smoothscore.errors import ConfigError, ShapeError
from smoothscore.metrics.expansiveness import (
    closest_pairs,
    expansiveness_profile,
    gamma_ex,
    mirror_pair,
    score_step,
    spectral_norm,
    two_point_esf_gamma,
)
from smoothscore.scores.base import FunctionScore
from smoothscore.scores.empirical import EmpiricalScore
from smoothscore.scores.unconditional import UnconditionalEmpiricalScore


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread avoids thread hand-off stalls on a loaded 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_mirror_pair_geometry(gen):
    mu0, mu1 = (
        torch.randn(3, 10, generator=gen, dtype=torch.float64),
        torch.randn(3, 10, generator=gen, dtype=torch.float64),
    )
    for ratio in (0.3, 0.8, 2.0):
        x, y = mirror_pair(mu0, mu1, ratio, perp=0.3, generator=gen)
        dx0, dx1 = (x - mu0).norm(dim=1), (x - mu1).norm(dim=1)
        torch.testing.assert_close(dx0 / dx1, torch.full((3,), ratio, dtype=torch.float64))
        torch.testing.assert_close((y - mu0).norm(dim=1), dx1)  # distances swapped
        torch.testing.assert_close((y - mu1).norm(dim=1), dx0)
    with pytest.raises(ConfigError):
        mirror_pair(mu0, mu0, 0.5, 1.0)
    with pytest.raises(ShapeError):
        mirror_pair(mu0, mu1[:, :4], 0.5, 1.0)


def test_gamma_ex_linear_field_exact(gen):
    # s(x) = -A x: the step is linear, gamma_ex = |(I - eta A)(y - x)| / |y - x| exactly
    A = torch.diag(torch.tensor([0.5, 2.0, 4.0, 1.0], dtype=torch.float64))
    field = FunctionScore(lambda x, s: -x @ A.T, dtype="float64", device="cpu")
    x, y = torch.randn(5, 4, generator=gen, dtype=torch.float64), torch.randn(5, 4, generator=gen, dtype=torch.float64)
    eta = 0.7
    M = torch.eye(4, dtype=torch.float64) - eta * A
    expect = ((y - x) @ M.T).norm(dim=1) / (y - x).norm(dim=1)
    torch.testing.assert_close(gamma_ex(score_step(field, 1.0, eta), x, y), expect)
    # isotropic: |1 - eta a|
    iso = FunctionScore(lambda x, s: -3.0 * x, dtype="float64", device="cpu")
    torch.testing.assert_close(gamma_ex(score_step(iso, 1.0, 0.5), x, y), torch.full((5,), 0.5, dtype=torch.float64))
    with pytest.raises(ShapeError):
        gamma_ex(score_step(iso, 1.0, 0.5), x, y[:2])


def test_gamma_ex_two_point_esf_exact_and_large(gen):
    d = 64
    mu = torch.randn(2, d, generator=gen, dtype=torch.float64)
    esf = EmpiricalScore(mu, dtype="float64", device="cpu")
    sigma, eta = 0.4, 0.4**2 * 0.5
    x, y = mirror_pair(mu[:1].repeat(4, 1), mu[1:].repeat(4, 1), 0.9, perp=sigma * d**0.5, generator=gen)
    g = gamma_ex(score_step(esf, sigma, eta), x, y)
    torch.testing.assert_close(g, two_point_esf_gamma(x, y, mu[:1].repeat(4, 1), mu[1:].repeat(4, 1), sigma, eta))
    assert float(g.min()) > 5.0  # near-tie pair at small sigma is blown apart (expansive)


def test_spectral_norm_vs_dense_jacobian(gen):
    d = 6
    train = torch.randn(5, d, generator=gen, dtype=torch.float64)
    # near midpoints of training pairs: a clear spectral gap (top two singular values >= 17% apart)
    x = 0.5 * (train[:3] + train[1:4]) + 0.1 * torch.randn(3, d, generator=gen, dtype=torch.float64)
    fields = [
        (EmpiricalScore(train, dtype="float64", device="cpu"), 0.7),
        (UnconditionalEmpiricalScore(train, sigma_min=0.1, sigma_max=5.0, dtype="float64", device="cpu"), 0.7),
        (UnconditionalEmpiricalScore(train, mode="optimal", temperature=3.0, dtype="float64", device="cpu"), 0.7),
    ]
    eta = 0.2
    for field, sigma in fields:
        est = spectral_norm(field, x, sigma, eta, n_iter=200, tol=1e-7, generator=gen)
        for n in range(3):
            J = torch.autograd.functional.jacobian(
                lambda z: field.score(z[None], torch.tensor([sigma], dtype=torch.float64))[0], x[n]
            )
            ref = torch.linalg.matrix_norm(torch.eye(d, dtype=torch.float64) + eta * J, ord=2)
            assert float(est[n]) == pytest.approx(float(ref), rel=1e-6)


def test_expansiveness_profile_linear_field(gen):
    # s(x) = -a x: gamma_ex = |1 - eta a| and ||I + eta J|| = |1 - eta a| exactly, at every sigma
    train = torch.randn(12, 9, generator=gen, dtype=torch.float64)
    field = FunctionScore(lambda x, s: -2.0 * x, dtype="float64", device="cpu")
    prof = expansiveness_profile(
        field, train, [0.1, 0.3], eta_factor=1.0, ratio=0.9, n_queries=4, iters=5, generator=gen
    )
    for s, g, sn in zip(prof["sigma"], prof["gamma_ex"], prof["spectral_norm"]):
        assert g == pytest.approx(abs(1 - 2.0 * s * s), rel=1e-9)
        assert sn == pytest.approx(abs(1 - 2.0 * s * s), rel=1e-9)
    mu0, mu1 = closest_pairs(train, 3)
    gaps = (mu0 - mu1).norm(dim=1)
    allgap = torch.cdist(train, train) + torch.eye(12, dtype=torch.float64) * 1e9
    assert float(gaps[0]) == pytest.approx(float(allgap.min()))


def test_spectral_norm_on_switching_surface_two_point_esf(gen):
    # two centres, x equidistant (mirror_pair with ratio 1): w = (1/2, 1/2), Cov_w = D D^T / 4, so along D
    # I + eta J has eigenvalue 1 - eta/sigma^2 + eta |D|^2 / (4 sigma^4); every other direction 1 - eta/sigma^2
    d = 32
    mu = torch.randn(2, d, generator=gen, dtype=torch.float64)
    esf = EmpiricalScore(mu, dtype="float64", device="cpu")
    gap2 = float(((mu[0] - mu[1]) ** 2).sum())
    for sigma in (0.3, 1.0):
        eta = 0.5 * sigma**2
        x, y = mirror_pair(mu[:1].repeat(3, 1), mu[1:].repeat(3, 1), 1.0, perp=sigma * d**0.5, generator=gen)
        torch.testing.assert_close(x, y)
        expect = abs(1 - eta / sigma**2 + eta * gap2 / (4 * sigma**4))
        est = spectral_norm(esf, x, sigma, eta, n_iter=100, tol=1e-9, generator=gen)
        torch.testing.assert_close(est, torch.full((3,), expect, dtype=torch.float64), rtol=1e-6, atol=0)
