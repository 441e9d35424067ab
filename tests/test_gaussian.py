import math

import pytest
import torch

import smoothscore as ss
from smoothscore.errors import ConfigError, ShapeError


def test_full_cov_against_brute_force():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    cov = a @ a.T + 0.1 * torch.eye(3, dtype=torch.float64)
    mean = torch.randn(3, generator=gen, dtype=torch.float64)
    g = ss.GaussianScore(mean, cov, dtype="float64", device="cpu")
    x = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    for s in (0.1, 1.0, 3.0):
        tot = cov + s * s * torch.eye(3, dtype=torch.float64)
        ref_score = -torch.linalg.solve(tot, (x - mean).T).T
        assert torch.allclose(g.score(x, s), ref_score, atol=1e-10)
        ref_lp = torch.distributions.MultivariateNormal(mean, tot).log_prob(x)
        assert torch.allclose(g.log_prob(x, s), ref_lp, atol=1e-10)


def test_autograd_log_prob_equals_score_and_low_rank_limit():
    u = torch.tensor([[1.0], [1.0]], dtype=torch.float64) / math.sqrt(2)
    g = ss.GaussianScore(torch.zeros(2), eigvals=torch.tensor([2.0]), basis=u, dtype="float64", device="cpu")
    full = ss.GaussianScore(torch.zeros(2), 2.0 * u @ u.T, dtype="float64", device="cpu")
    x = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    (gr,) = torch.autograd.grad(g.log_prob(x, 0.5).sum(), x)
    assert torch.allclose(gr, g.score(x.detach(), 0.5), atol=1e-10)
    assert torch.allclose(g.score(x.detach(), 0.5), full.score(x.detach(), 0.5), atol=1e-8)
    assert torch.allclose(g.log_prob(x.detach(), 0.5), full.log_prob(x.detach(), 0.5), atol=1e-8)


def test_flow_solves_the_pf_ode_and_samples():
    g = ss.GaussianScore(torch.tensor([1.0, 2.0]), torch.diag(torch.tensor([4.0, 0.25])), dtype="float64", device="cpu")
    x = torch.randn(4, 2, dtype=torch.float64)
    # d/dsigma flow(x, T, sigma) == -sigma * score(flow, sigma)
    s, h = 0.7, 1e-6
    num = (g.flow(x, 3.0, s + h) - g.flow(x, 3.0, s - h)) / (2 * h)
    assert torch.allclose(num, -s * g.score(g.flow(x, 3.0, s), s), atol=1e-6)
    d = g.sample_data(50000, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(d.mean(0), g.mean, atol=0.03) and torch.allclose(
        d.var(0), torch.tensor([4.0, 0.25], dtype=torch.float64), rtol=0.03
    )


def test_bad_input():
    with pytest.raises(ShapeError):
        ss.GaussianScore(torch.zeros(2), torch.eye(3))
    with pytest.raises(ConfigError):
        ss.GaussianScore(torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ConfigError):
        ss.GaussianScore(torch.zeros(2), -torch.eye(2))
    with pytest.raises(ConfigError):
        ss.GaussianScore(torch.zeros(2))
