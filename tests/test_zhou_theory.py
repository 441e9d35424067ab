"""Paper B domination ratios and shell geometry against exact weights and closed forms."""

import math

import numpy as np
import pytest
import torch

from smoothscore.errors import ConfigError
from smoothscore.scores.empirical import EmpiricalScore
from smoothscore.scores.unconditional import UnconditionalEmpiricalScore
from smoothscore.theory import dominance as dom


def test_mu_domination_matches_esf_weights():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(2, 64, generator=g, dtype=torch.float64)
    x = train[0] + 0.8 * torch.randn(5, 64, generator=g, dtype=torch.float64)
    for sigma in (0.5, 1.0, 3.0):
        w = EmpiricalScore(train, dtype="float64", device="cpu").weights(x, sigma)
        pred = dom.mu_domination_ratio(x, train[0], train[1], sigma)
        np.testing.assert_allclose((w[:, 0] / w[:, 1]).numpy(), pred.numpy(), rtol=1e-8)


def test_sigma_star_maximises_level_weight():
    g = torch.Generator().manual_seed(1)
    d = 100
    x, mu = torch.randn(d, generator=g, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
    s_star = float(dom.sigma_star(x, mu))
    grid = torch.exp(torch.linspace(math.log(s_star) - 1, math.log(s_star) + 1, 20001, dtype=torch.float64))
    f = dom.level_log_weight(float((x * x).sum()), grid, d)
    assert abs(float(grid[f.argmax()]) / s_star - 1) < 1e-3
    assert float(dom.sigma_star(x, mu, "d")) == pytest.approx(float(x.norm()) / 10)
    with pytest.raises(ConfigError):
        dom.sigma_star(x, mu, "bad")


def test_gamma_sigma_closed_form_vs_exact_weights():
    # paper's example: alpha = 1/3 and (d-2) h^2 = 18 gives e^6
    assert dom.gamma_sigma(20, 1.0, 1 / 3) == pytest.approx(math.exp(6))
    d, r = 256, 4.0
    s_star = r / math.sqrt(d - 2)
    h, alpha = 0.02, 1 / 3
    lo, hi = s_star * math.exp(-alpha * h), s_star * math.exp((1 - alpha) * h)
    # exact weights from the p_MN score class over these two levels
    f = UnconditionalEmpiricalScore(
        torch.zeros(1, d, dtype=torch.float64), sigmas=[lo, hi], dtype="float64", device="cpu"
    )
    exact = dom.gamma_sigma_exact(r, lo, hi, d)
    assert dom.gamma_sigma(d, h, alpha) == pytest.approx(exact, rel=0.05)
    # the exact ratio from the class's level logits
    logits = f._c - r * r * 0.5 * f._inv2
    assert float(torch.exp(logits[0] - logits[1])) == pytest.approx(exact, rel=1e-10)
    with pytest.raises(ConfigError):
        dom.gamma_sigma(d, h, 1.5)


def test_shell_radius_and_thickness_monte_carlo():
    g = torch.Generator().manual_seed(2)
    d, sigma = 256, 0.7
    r = (sigma * torch.randn(20000, d, generator=g, dtype=torch.float64)).norm(dim=1)
    assert float(r.mean()) == pytest.approx(dom.shell_radius(sigma, d, exact=True), rel=2e-3)
    assert float(r.mean()) == pytest.approx(dom.shell_radius(sigma, d), rel=5e-3)
    assert float(r.std()) == pytest.approx(dom.shell_thickness(sigma, d, exact=True), rel=0.03)
    assert float(r.std()) == pytest.approx(dom.shell_thickness(sigma, d), rel=0.03)


def test_top_weights_sorted():
    w = torch.tensor([[0.1, 0.7, 0.2]])
    assert torch.equal(dom.top_weights(w, 2), torch.tensor([[0.7, 0.2]]))
