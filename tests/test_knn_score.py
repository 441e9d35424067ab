"""KNNScore (Niedoba et al.): K = n is the ESF, the certificate bounds the true error, SNIS is consistent."""

import pytest
import torch

import smoothscore as ss
from smoothscore.errors import ConfigError


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(40, 2, 3, 3, generator=g, dtype=torch.float64)
    x = train[:6] + 0.8 * torch.randn(6, 2, 3, 3, generator=g, dtype=torch.float64)
    return train, x


def test_k_equals_n_is_esf(data):
    train, x = data
    for s in (0.1, 1.0, 10.0):
        knn = ss.KNNScore(train, len(train), dtype="float64", device="cpu")
        esf = ss.EmpiricalScore(train, dtype="float64", device="cpu")
        assert torch.allclose(knn.denoise(x, s), esf.denoise(x, s), atol=1e-12)
        assert knn.last_certificate == 0.0
        assert torch.allclose(knn.score(x, s), esf.score(x, s), atol=1e-9)


def test_certificate_bounds_error(data):
    train, x = data
    esf = ss.EmpiricalScore(train, dtype="float64", device="cpu")
    for k in (1, 3, 10, 30):
        for s in (0.3, 1.0, 3.0):
            f = ss.KNNScore(train, k, dtype="float64", device="cpu")
            err = (f.denoise(x, s) - esf.denoise(x, s)).flatten(1).norm(dim=1)
            assert bool((err <= f.last_bounds + 1e-12).all())
            assert f.last_certificate == pytest.approx(float(f.last_bounds.max()))
    # the bound is informative at small sigma: the tail weight vanishes
    f = ss.KNNScore(train, 5, dtype="float64", device="cpu")
    f.denoise(x, 0.05)
    assert f.last_certificate < 1e-6


def test_snis_is_consistent(data):
    train, x = data
    s = 1.5
    esf = ss.EmpiricalScore(train, dtype="float64", device="cpu")
    ref = esf.denoise(x, s)
    w = esf.weights(x, s)  # (N, n) exact posterior weights
    flat = train.reshape(len(train), -1)
    post_var = (w @ flat**2 - (w @ flat) ** 2).sum(1)  # trace of the posterior covariance
    r = 4000
    # K = n: the proposal is the posterior itself, the estimate an average of R posterior draws
    f = ss.KNNScore(train, len(train), estimator="snis", n_draws=r, seed=1, dtype="float64", device="cpu")
    err2 = ((f.denoise(x, s) - ref).flatten(1) ** 2).sum(1)
    assert bool((err2 < 9 * post_var / r).all())
    # K < n with real tail mass (sigma = 4: the 8-neighbour estimate is far off): the importance weights correct
    # for the uniform tail, and the error falls like 1 / sqrt(R) (measured 0.070 at R = 4000, 0.030 at R = 16000)
    ref4 = esf.denoise(x, 4.0)
    err_knn = (ss.KNNScore(train, 8, dtype="float64", device="cpu").denoise(x, 4.0) - ref4).flatten(1).norm(dim=1)
    errs = []
    for r in (1000, 16000):
        f = ss.KNNScore(train, 8, estimator="snis", n_draws=r, seed=1, dtype="float64", device="cpu")
        errs.append(float((f.denoise(x, 4.0) - ref4).flatten(1).norm(dim=1).mean()))
    assert errs[1] < 0.05 * float(err_knn.mean())
    assert errs[1] < 0.5 * errs[0]
    # same seed, same draws
    a = ss.KNNScore(train, 8, estimator="snis", n_draws=16, seed=4, device="cpu").denoise(x.float(), s)
    b = ss.KNNScore(train, 8, estimator="snis", n_draws=16, seed=4, device="cpu").denoise(x.float(), s)
    assert torch.equal(a, b)


def test_bad_input(data):
    train, _ = data
    with pytest.raises(ConfigError):
        ss.KNNScore(train, 0)
    with pytest.raises(ConfigError):
        ss.KNNScore(train, 3, estimator="exact")
