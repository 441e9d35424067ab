"""ClosedFormSmoothedScore (Scarvelis et al.): s = 0 and s -> 0 give the ESF, the fixed draws make it a
deterministic function, and it matches an explicit loop over the draws of E_eps[D_ESF(x + s (1 + sigma) eps)]."""

import pytest
import torch

import smoothscore as ss
from smoothscore.errors import ConfigError


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(12, 1, 4, 4, generator=g, dtype=torch.float64)
    x = train[:5] + 0.5 * torch.randn(5, 1, 4, 4, generator=g, dtype=torch.float64)
    return train, x


def test_zero_and_small_smoothing_is_esf(data):
    train, x = data
    esf = ss.EmpiricalScore(train, dtype="float64", device="cpu")
    for s in (1.5, 4.0):
        assert torch.equal(
            ss.ClosedFormSmoothedScore(train, 0.0, dtype="float64", device="cpu").denoise(x, s), esf.denoise(x, s)
        )
        errs = [
            float(
                (ss.ClosedFormSmoothedScore(train, sm, dtype="float64", device="cpu").denoise(x, s) - esf.denoise(x, s))
                .abs()
                .max()
            )
            for sm in (1e-2, 1e-4, 1e-6)
        ]
        assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-5  # O(s): first-order in the perturbation
        assert errs[0] > 1e-4


def test_explicit_loop_and_determinism(data):
    train, x = data
    sig = torch.tensor([0.2, 0.5, 1.0, 2.0, 4.0], dtype=torch.float64)
    f = ss.ClosedFormSmoothedScore(train, 0.3, n_draws=5, seed=7, dtype="float64", device="cpu")
    esf = ss.EmpiricalScore(train, dtype="float64", device="cpu")
    ref = torch.zeros_like(x)
    for m in range(5):
        for i in range(x.shape[0]):
            q = x[i : i + 1] + 0.3 * (1 + sig[i]) * f.draws[m : m + 1]
            ref[i : i + 1] += esf.denoise(q, sig[i : i + 1]) / 5
    got = f.denoise(x, sig)
    assert torch.allclose(got, ref, atol=1e-12)
    assert torch.equal(got, f.denoise(x, sig))  # same draws on every call
    g = ss.ClosedFormSmoothedScore(train, 0.3, n_draws=5, seed=7, dtype="float64", device="cpu")
    assert torch.equal(got, g.denoise(x, sig))
    assert torch.allclose(f.score(x, sig), (got - x) / sig[:, None, None, None] ** 2, atol=1e-10)


def test_smoothing_moves_away_from_esf(data):
    train, x = data
    esf = ss.EmpiricalScore(train, dtype="float64", device="cpu").denoise(x, 0.2)
    sm = ss.ClosedFormSmoothedScore(train, 0.5, n_draws=32, dtype="float64", device="cpu").denoise(x, 0.2)
    assert float((sm - esf).abs().max()) > 0.01  # measured 0.031


def test_bad_input(data):
    train, _ = data
    with pytest.raises(ConfigError):
        ss.ClosedFormSmoothedScore(train, -1.0)
    with pytest.raises(ConfigError):
        ss.ClosedFormSmoothedScore(train, 0.1, n_draws=0)
