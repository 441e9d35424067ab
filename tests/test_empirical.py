"""Exact empirical score: reference values (R1), invariances, limits, autograd, errors."""

import math

import pytest
import torch

import smoothscore as ss
from smoothscore.errors import ConfigError, EmptyDataError, NonFiniteError, ShapeError, SigmaError


def brute_denoise(train, x, sigma, T=1.0, logw=None):
    """float64 brute force: explicit differences, torch.softmax."""
    y = train.reshape(train.shape[0], -1).double()
    q = x.reshape(x.shape[0], -1).double()
    s = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1)
    d2 = ((q[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    logits = -d2 / (2 * s**2 * T)
    if logw is not None:
        logits = logits + logw
    w = torch.softmax(logits, 1)
    return (w @ y).reshape(x.shape)


@pytest.mark.parametrize(
    "sigma,x,e,s", [(1.0, 0.5, 0.4621171573, -0.0378828427), (0.5, 0.5, 0.9640275801, 1.8561103203)]
)
def test_two_point_reference_values_R1(sigma, x, e, s):
    f = ss.EmpiricalScore(torch.tensor([-1.0, 1.0]), dtype="float64", device="cpu")
    assert f.denoise(torch.tensor([[x]]), sigma).item() == pytest.approx(e, abs=1e-10)
    assert f.score(torch.tensor([[x]]), sigma).item() == pytest.approx(s, abs=1e-10)
    assert f.denoise(torch.tensor([[x]]), sigma).item() == pytest.approx(math.tanh(x / sigma**2), abs=1e-14)


def test_vp_reference_value_R1():
    # VP enters through the scale: x = alpha (x0 + sigma' eps) with sigma' = sigma / alpha
    alpha, sigma, x = 0.8, 0.6, 0.5
    f = ss.EmpiricalScore(torch.tensor([-1.0, 1.0]), dtype="float64", device="cpu")
    e = f.denoise(torch.tensor([[x / alpha]]), sigma / alpha).item()
    assert e == pytest.approx(0.8044548003, abs=1e-10)
    assert (alpha * e - x) / sigma**2 == pytest.approx(0.3987884451, abs=1e-9)


def test_float64_matches_brute_force(gen):
    train = torch.randn(37, 3, 4, 4, generator=gen, dtype=torch.float64)
    x = torch.randn(11, 3, 4, 4, generator=gen, dtype=torch.float64) * 2
    sig = torch.rand(11, generator=gen, dtype=torch.float64) * 3 + 0.2
    f = ss.EmpiricalScore(train, dtype="float64", device="cpu")
    ref = brute_denoise(train, x, sig)
    got = f.denoise(x, sig)
    assert got.shape == x.shape
    assert torch.allclose(got, ref, rtol=1e-9, atol=1e-12)
    assert torch.allclose(f.score(x, sig), (ref - x) / sig.reshape(-1, 1, 1, 1) ** 2, rtol=1e-9, atol=1e-10)
    # temperature divides the logits
    fT = ss.EmpiricalScore(train, temperature=3.0, dtype="float64", device="cpu")
    assert torch.allclose(fT.denoise(x, sig), brute_denoise(train, x, sig, T=3.0), rtol=1e-9, atol=1e-12)


def test_permutation_chunking_duplication_invariance(gen):
    train = torch.randn(50, 6, generator=gen, dtype=torch.float64)
    x = torch.randn(9, 6, generator=gen, dtype=torch.float64)
    f = ss.EmpiricalScore(train, dtype="float64", device="cpu")
    base = f.score(x, 0.7)
    perm = ss.EmpiricalScore(train[torch.randperm(50, generator=gen)], dtype="float64", device="cpu")
    assert torch.allclose(perm.score(x, 0.7), base, rtol=1e-10, atol=1e-12)
    for block in (1, 7, 64, 10_000):
        ch = ss.EmpiricalScore(train, dtype="float64", device="cpu", block_elements=block)
        assert torch.allclose(ch.score(x, 0.7), base, rtol=1e-10, atol=1e-12)
    # duplicating every point leaves the ESF unchanged; duplicating one == doubling its weight
    dup = ss.EmpiricalScore(torch.cat([train, train]), dtype="float64", device="cpu")
    assert torch.allclose(dup.score(x, 0.7), base, rtol=1e-10, atol=1e-12)
    one = ss.EmpiricalScore(torch.cat([train, train[:1]]), dtype="float64", device="cpu")
    w = torch.ones(50, dtype=torch.float64)
    w[0] = 2
    wt = ss.EmpiricalScore(train, weights=w, dtype="float64", device="cpu")
    assert torch.allclose(one.score(x, 0.7), wt.score(x, 0.7), rtol=1e-10, atol=1e-12)


def test_translation_equivariance(gen):
    train = torch.randn(20, 5, generator=gen, dtype=torch.float64)
    x = torch.randn(8, 5, generator=gen, dtype=torch.float64)
    c = torch.randn(5, generator=gen, dtype=torch.float64) * 10
    a = ss.EmpiricalScore(train, dtype="float64", device="cpu").denoise(x, 0.4)
    b = ss.EmpiricalScore(train + c, dtype="float64", device="cpu").denoise(x + c, 0.4)
    assert torch.allclose(b - c, a, atol=1e-10)


def test_limits_sigma_to_zero_and_infinity(gen):
    train = torch.randn(30, 4, generator=gen, dtype=torch.float64)
    x = torch.randn(12, 4, generator=gen, dtype=torch.float64)
    f = ss.EmpiricalScore(train, dtype="float64", device="cpu")
    nn = train[torch.cdist(x, train).argmin(1)]
    assert torch.allclose(f.denoise(x, 1e-4), nn, atol=1e-12)
    assert torch.allclose(f.denoise(x, 1e5), train.mean(0).expand_as(x), atol=1e-6)


def test_per_query_sigma_equals_separate_calls(gen):
    train = torch.randn(15, 3, generator=gen)
    x = torch.randn(4, 3, generator=gen)
    sig = torch.tensor([0.1, 0.5, 1.0, 3.0])
    f = ss.EmpiricalScore(train, device="cpu")
    full = f.score(x, sig)
    for i in range(4):
        assert torch.allclose(full[i], f.score(x[i : i + 1], float(sig[i]))[0], rtol=1e-5, atol=1e-6)


def test_autograd_of_log_prob_equals_score(gen):
    train = torch.randn(25, 2, 3, generator=gen, dtype=torch.float64)
    x = torch.randn(6, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    sig = torch.tensor([0.3, 0.5, 0.8, 1.0, 2.0, 5.0], dtype=torch.float64)
    for T in (1.0, 4.0):
        f = ss.EmpiricalScore(train, temperature=T, dtype="float64", device="cpu")
        (g,) = torch.autograd.grad(f.log_prob(x, sig).sum(), x)
        assert torch.allclose(g, f.score(x.detach(), sig), rtol=1e-8, atol=1e-10)


def test_log_prob_is_normalised_in_1d():
    f = ss.EmpiricalScore(torch.tensor([-1.0, 0.3, 2.0]), dtype="float64", device="cpu")
    xs = torch.linspace(-30, 30, 120001, dtype=torch.float64)[:, None]
    for s in (0.2, 1.0, 3.0):
        mass = torch.trapezoid(f.log_prob(xs, s).exp(), xs[:, 0]).item()
        assert mass == pytest.approx(1.0, abs=1e-8)


def test_weights_rows_sum_to_one_and_match_brute(gen):
    train = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    f = ss.EmpiricalScore(train, dtype="float64", device="cpu")
    w = f.weights(x, 0.9)
    assert torch.allclose(w.sum(1), torch.ones(5, dtype=torch.float64))
    ref = torch.softmax(-(torch.cdist(x, train) ** 2) / (2 * 0.81), 1)
    assert torch.allclose(w, ref, atol=1e-12)


def test_callable_temperature_schedule(gen):
    train = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    x = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    sig = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64)
    f = ss.EmpiricalScore(train, temperature=lambda s: (2.0 / s).clamp(min=1), dtype="float64", device="cpu")
    T = (2.0 / sig).clamp(min=1)
    for i in range(3):
        ref = brute_denoise(train, x[i : i + 1], sig[i : i + 1], T=float(T[i]))
        assert torch.allclose(f.denoise(x[i : i + 1], sig[i : i + 1]), ref, atol=1e-12)


def test_bad_input_raises_specific_errors():
    with pytest.raises(EmptyDataError):
        ss.EmpiricalScore(torch.zeros(0, 3))
    with pytest.raises(NonFiniteError):
        ss.EmpiricalScore(torch.tensor([[0.0, float("nan")]]))
    f = ss.EmpiricalScore(torch.randn(5, 3), device="cpu")
    with pytest.raises(ShapeError):
        f.score(torch.randn(4, 2), 1.0)
    with pytest.raises(NonFiniteError):
        f.score(torch.tensor([[0.0, float("inf"), 1.0]]), 1.0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(SigmaError):
            f.score(torch.randn(2, 3), bad)
    with pytest.raises(ShapeError):
        f.score(torch.randn(2, 3), torch.ones(3))
    with pytest.raises(ConfigError):
        ss.EmpiricalScore(torch.randn(5, 3), temperature=0.0)
    with pytest.raises(ConfigError):
        ss.EmpiricalScore(torch.randn(5, 3), dtype="int8")
    with pytest.raises(ShapeError):
        ss.EmpiricalScore(torch.randn(5, 3), weights=torch.ones(4))
    assert issubclass(SigmaError, ss.SmoothScoreError)
