"""Samplers: order of accuracy against the Gaussian closed form (reference-values.md R2), exact-ESF memorization
(R3), SDE/PC samplers reach the data distribution, snapshots, callbacks, reproducibility, bad input."""

import math

import pytest
import torch

import smoothscore as ss
from smoothscore.errors import ShapeError, SigmaError, UnknownNameError
from smoothscore.sampling import SampleResult, samplers

R2_TABLE = {18: (4.48e-2, 1.41e-1), 36: (9.97e-3, 7.09e-2), 72: (2.36e-3, 3.56e-2), 144: (5.73e-4, 1.78e-2)}


def rel_error(method, n):
    g = ss.GaussianScore(torch.zeros(1), torch.ones(1, 1), dtype="float64", device="cpu")
    s = ss.sigma_schedule("edm", n, 0.002, 80.0)  # n noise levels, n - 1 steps, ending at sigma_min
    x = ss.sample(g, torch.ones(1, 1, dtype=torch.float64), s, method=method).item()
    exact = g.flow(torch.ones(1, 1, dtype=torch.float64), 80.0, 0.002).item()
    return abs(x - exact) / abs(exact)


def test_exact_flow_ratio_R2():
    g = ss.GaussianScore(torch.zeros(1), torch.ones(1, 1), dtype="float64", device="cpu")
    assert g.flow(torch.ones(1, 1, dtype=torch.float64), 80.0, 0.002).item() == pytest.approx(1.2499048550e-2, rel=1e-9)


@pytest.mark.parametrize("n", sorted(R2_TABLE))
def test_heun_and_euler_errors_match_table_R2(n):
    heun_ref, euler_ref = R2_TABLE[n]
    assert rel_error("heun", n) == pytest.approx(heun_ref, rel=0.01)
    assert rel_error("euler", n) == pytest.approx(euler_ref, rel=0.01)


def test_solver_orders():
    h = [rel_error("heun", n) for n in sorted(R2_TABLE)]
    e = [rel_error("euler", n) for n in sorted(R2_TABLE)]
    for a, b in zip(h, h[1:]):
        assert 3.5 < a / b < 4.8  # second order
    for a, b in zip(e, e[1:]):
        assert 1.8 < a / b < 2.2  # first order


def test_heun_full_covariance_2d_matches_exact_flow():
    cov = torch.tensor([[2.0, 0.8], [0.8, 0.5]], dtype=torch.float64)
    g = ss.GaussianScore(torch.tensor([1.0, -2.0]), cov, dtype="float64", device="cpu")
    gen = torch.Generator().manual_seed(0)
    x_T = 40.0 * torch.randn(16, 2, generator=gen, dtype=torch.float64)
    s = ss.sigma_schedule("edm", 256, 0.01, 40.0)
    out = ss.sample(g, x_T, s, method="heun")
    exact = g.flow(x_T, 40.0, 0.01)
    assert (out - exact).norm(dim=1).max().item() < 2e-3 * exact.norm(dim=1).max().item()


def test_exact_esf_sampling_memorizes_R3():
    gen = torch.Generator().manual_seed(1)
    for d in (2, 16):
        train = torch.randn(6, d, generator=gen, dtype=torch.float64) * 2
        esf = ss.EmpiricalScore(train, dtype="float64", device="cpu")
        s = ss.sigma_schedule("edm", 80, 1e-3, 10.0)
        x = ss.sample(esf, 10.0 * torch.randn(200, d, generator=gen, dtype=torch.float64), s, method="heun")
        dist = torch.cdist(x, train)
        d12 = dist.topk(2, largest=False).values
        assert (d12[:, 0] / d12[:, 1] < 1 / 3).double().mean().item() == 1.0
        assert d12[:, 0].max().item() < 5e-3 * math.sqrt(d)  # within a few sigma_min sqrt(d)


@pytest.mark.parametrize("method", ["em", "pc"])
def test_stochastic_samplers_reach_gaussian_data(method):
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.8]], dtype=torch.float64)
    mean = torch.tensor([0.5, -1.0], dtype=torch.float64)
    g = ss.GaussianScore(mean, cov, dtype="float64", device="cpu")
    gen = torch.Generator().manual_seed(2)
    n = 20000
    s = ss.sigma_schedule("geometric", 200, 0.01, 20.0)
    x = ss.sample(
        g, mean + 20.0 * torch.randn(n, 2, generator=gen, dtype=torch.float64), s, method=method, generator=gen
    )
    # Monte-Carlo tolerance: std of the sample mean is ~ sqrt(1/n) = 0.007; covariance entries ~ 0.01
    assert torch.allclose(x.mean(0), mean, atol=0.04)
    assert torch.allclose(torch.cov(x.T), cov + 0.01**2 * torch.eye(2, dtype=torch.float64), atol=0.06)


def test_reproducible_with_seed_and_snapshots_and_callback():
    train = torch.randn(5, 3, generator=torch.Generator().manual_seed(3))
    esf = ss.EmpiricalScore(train, device="cpu")
    s = ss.sigma_schedule("edm", 20, 0.01, 5.0)
    x0 = 5 * torch.randn(8, 3, generator=torch.Generator().manual_seed(4))
    a = ss.sample(esf, x0, s, method="pc", generator=torch.Generator().manual_seed(9))
    b = ss.sample(esf, x0, s, method="pc", generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
    seen = []
    r = ss.sample(esf, x0, s, method="heun", snapshot_sigmas=[5.0, 1.0, 0.01], callback=seen.append)
    assert isinstance(r, SampleResult) and set(r.snapshots) == {5.0, 1.0, 0.01}
    assert torch.equal(r.snapshots[5.0], x0) and torch.equal(r.snapshots[0.01], r.x)
    assert len(seen) == 19 and seen[0]["sigma"] == pytest.approx(5.0) and "denoised" in seen[0]
    assert torch.equal(r.x, ss.sample(esf, x0, s, method="heun"))


def test_last_sigma_zero_lands_on_denoiser():
    train = torch.tensor([[-1.0], [1.0]], dtype=torch.float64)
    esf = ss.EmpiricalScore(train, dtype="float64", device="cpu")
    s = ss.sigma_schedule("edm", 30, 0.05, 5.0, append_zero=True)
    x = ss.sample(esf, 5 * torch.randn(50, 1, dtype=torch.float64), s, method="heun")
    assert ((x.abs() - 1).abs() < 1e-6).all()


def test_bad_input():
    esf = ss.EmpiricalScore(torch.randn(4, 2), device="cpu")
    x = torch.randn(3, 2)
    with pytest.raises(UnknownNameError):
        ss.sample(esf, x, [1.0, 0.1], method="nope")
    for bad in ([1.0], [0.1, 1.0], [1.0, float("nan")], [1.0, -0.5], [1.0, 0.0, 0.0]):
        with pytest.raises(SigmaError):
            ss.sample(esf, x, bad)
    with pytest.raises(ShapeError):
        ss.sample(esf, torch.zeros(0, 2), [1.0, 0.1])
    with pytest.raises(ss.SmoothScoreError):
        ss.sample(esf, torch.tensor([[float("nan"), 0.0]]), [1.0, 0.1])
    assert {"euler", "heun", "em", "pc"} <= set(samplers.names())
