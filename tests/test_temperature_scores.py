"""Temperature-smoothed exact scores (Paper B, Sec. 4.2, Eq. 10) against float64 brute force."""

import math

import numpy as np
import pytest
import torch

from smoothscore.errors import ConfigError, ShapeError
from smoothscore.scores.empirical import EmpiricalScore
from smoothscore.scores.temperature import KNNTemperatureScore, sigma_schedule_temperature, temperature_smoothed
from smoothscore.scores.unconditional import UnconditionalEmpiricalScore


def _data(m=9, d=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    train = torch.randn(m, d, generator=g, dtype=torch.float64)
    x = train[:5] + 0.4 * torch.randn(5, d, generator=g, dtype=torch.float64)
    return train, x


def eq10_brute(x, centres, T):
    """sum_j softmax_j(f_j / T) (-(x - mu_j) / sigma_j*^2), f_j = -(d-2) ln sigma_j* - r_j^2/(2 sigma_j*^2)."""
    d = x.shape[0]
    r2 = np.array([((x - c) ** 2).sum() for c in centres])
    s2 = r2 / (d - 2)
    f = -(d - 2) * 0.5 * np.log(s2) - r2 / (2 * s2)
    w = np.exp((f - f.max()) / T)
    w /= w.sum()
    return sum(wj * (-(x - c) / s2j) for wj, c, s2j in zip(w, centres, s2))


@pytest.mark.parametrize("T", [1.0, 7.0])
def test_knn_form_matches_brute_force_on_given_neighbours(T):
    train, x = _data()
    idx = torch.tensor([[0, 3, 4], [1, 2, 8], [2, 5, 6], [3, 0, 1], [4, 7, 8]])
    f = KNNTemperatureScore(train, T, k=3, dtype="float64", device="cpu")
    out = f.score(x, 0.5, neighbors=idx).numpy()
    for n in range(5):
        ref = eq10_brute(x[n].numpy(), train[idx[n]].numpy(), T)
        np.testing.assert_allclose(out[n], ref, rtol=1e-10, atol=1e-12)


def test_knn_form_with_all_neighbours_equals_unconditional_optimal():
    # K = M (neighbours of the query) reproduces the optimal-level unconditional score at the same T
    train, x = _data()
    for T in (1.0, 5.0):
        knn = KNNTemperatureScore(train, T, k=len(train), dtype="float64", device="cpu").score(x, 1.0)
        opt = UnconditionalEmpiricalScore(train, mode="optimal", temperature=T, dtype="float64", device="cpu").score(x)
        np.testing.assert_allclose(knn.numpy(), opt.numpy(), rtol=1e-9, atol=1e-12)


def test_schedule_and_factory():
    T = sigma_schedule_temperature(5.0)
    np.testing.assert_allclose(T(torch.tensor([0.1, 5.0, 50.0])).numpy(), [50.0, 1.0, 1.0])
    train, x = _data()
    cond = temperature_smoothed(train, 10.0, dtype="float64", device="cpu")
    # conditioned form: logits divided by T == ESF at sigma * sqrt(T) for the weights
    w = cond.weights(x, 0.5)
    w_ref = EmpiricalScore(train, dtype="float64", device="cpu").weights(x, 0.5 * math.sqrt(10.0))
    np.testing.assert_allclose(w.numpy(), w_ref.numpy(), rtol=1e-10)
    unc = temperature_smoothed(train, T, conditioned=False, dtype="float64", device="cpu")
    assert unc.conditioned is False and bool(torch.isfinite(unc.score(x)).all())
    # larger T spreads the weights of the unconditional form
    w1 = temperature_smoothed(train, 1.0, conditioned=False, dtype="float64", device="cpu").weights(x)
    w50 = temperature_smoothed(train, 50.0, conditioned=False, dtype="float64", device="cpu").weights(x)
    assert bool((w50.max(1).values < w1.max(1).values).all())


def test_variant_scheduled_and_errors():
    train, x = _data()
    f = KNNTemperatureScore(train, 2.0, k=4, variant="scheduled", dtype="float64", device="cpu")
    s = f.score(x, 0.3)
    # scheduled variant: components -(x - mu_j)/sigma^2, weights softmax(-(d/(2T)) log(r^2/d))
    idx = f.neighbors(x)
    d = x.shape[1]
    diff = x[:, None] - train[idx]
    r2 = (diff**2).sum(-1)
    w = torch.softmax(-(d / 4.0) * torch.log(r2 / d), 1)
    np.testing.assert_allclose(s.numpy(), (-(w[..., None] * diff).sum(1) / 0.09).numpy(), rtol=1e-9)
    with pytest.raises(ConfigError):
        KNNTemperatureScore(train, 1.0, variant="other")
    with pytest.raises(ConfigError):
        sigma_schedule_temperature(0.0)
    with pytest.raises(ConfigError):
        temperature_smoothed(train, 2.0, k_neighbors=3)
    with pytest.raises(ShapeError):
        KNNTemperatureScore(train, 1.0, device="cpu").score(x, 0.3, neighbors=torch.zeros(2, 3, dtype=torch.long))
