"""Bootstrap intervals over samples (smoothscore.metrics.bootstrap) against closed forms."""

import math

import numpy as np
import pytest
import torch

from smoothscore.errors import ConfigError
from smoothscore.metrics import memorization_fraction
from smoothscore.metrics.bootstrap import (
    frechet_interval,
    mean_interval,
    median_interval,
    memorized_fraction_interval,
    nn_distance_interval,
)


def test_mean_interval_matches_binomial_normal_approximation():
    p, n = 0.3, 2000
    x = (torch.rand(n, generator=torch.Generator().manual_seed(0)) < p).double()
    lo, hi = mean_interval(x, n_boot=2000)
    phat = float(x.mean())
    half = 1.6449 * math.sqrt(phat * (1 - phat) / n)  # normal 90% two-sided half width
    assert lo < phat < hi
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.12)
    assert mean_interval(x, n_boot=2000) == [lo, hi]  # fixed generator: same interval every time
    assert mean_interval(torch.full((50,), 0.25)) == [0.25, 0.25]


def test_median_and_sample_level_intervals():
    d = torch.arange(1.0, 102.0)  # median 51
    lo, hi = median_interval(d)
    assert lo <= 51 <= hi and hi - lo < 20
    train = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    samples = torch.cat([train + 0.01, torch.tensor([[5.0, 5.0]] * 3)])  # half copies, half far from all
    assert memorization_fraction(samples, train) == 0.5
    lo, hi = memorized_fraction_interval(samples, train)
    assert 0 <= lo < 0.5 < hi <= 1
    lo, hi = nn_distance_interval(train + 0.5, train)
    assert lo == pytest.approx(math.sqrt(0.5)) and hi == pytest.approx(math.sqrt(0.5))


def test_frechet_interval_contains_the_closed_form():
    g = torch.Generator().manual_seed(1)
    mu = torch.tensor([3.0, 0.0])
    a = torch.randn(1500, 2, generator=g, dtype=torch.float64) + mu
    b = torch.randn(1500, 2, generator=g, dtype=torch.float64)
    lo, hi = frechet_interval(a, b, n_boot=100)
    assert lo < 9.0 < hi and hi - lo < 2.0  # FD(N(mu, I), N(0, I)) = |mu|^2 = 9
    with pytest.raises(ConfigError):
        mean_interval(np.array([]))
