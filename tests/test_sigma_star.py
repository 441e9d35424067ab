"""The adaptive sigma* sampler (Paper B, Sec. 4.1) on the exact unconditional score."""
import pytest
import torch

from smoothscore.data import load_digits
from smoothscore.errors import ConfigError
from smoothscore.metrics import NeighborIndex
from smoothscore.sampling import sample
from smoothscore.sampling.sigma_star import sample_sigma_star
from smoothscore.scores.unconditional import UnconditionalEmpiricalScore


def test_sigma_star_sampler_converges_onto_data():
    train = load_digits(n=30, size=16, seed=0).x
    field = UnconditionalEmpiricalScore(train, sigmas=torch.logspace(-2, 1.3, 100), device="cpu")
    g = torch.Generator().manual_seed(0)
    x0 = 5.0 * torch.randn(8, *train.shape[1:], generator=g)
    d0 = NeighborIndex(train).search(x0, 1)[0][:, 0]
    seen = []
    out = sample(field, x0, [20.0, 0.01], method="sigma_star", train=train, alpha=0.5, n_steps=40,
                 callback=lambda info: seen.append(info["sigma"]))
    dist = NeighborIndex(train).search(out, 1)[0][:, 0]
    # every sample ends at its nearest training image up to the smallest level sigma_min (started ~80 away)
    assert float(dist.max()) < 0.01 * 16 * 0.2 and float(d0.min()) > 50   # below sigma_min: ~sigma_min sqrt(d)/8
    assert len(seen) == 40 and seen[-1] < seen[0]


def test_sigma_star_helper_and_guard():
    train = torch.randn(5, 16)
    idx = NeighborIndex(train)
    s = sample_sigma_star(train[:2] + 0.0, idx)
    assert float(s.abs().max()) == 0.0
    field = UnconditionalEmpiricalScore(train, mode="optimal", device="cpu")
    out = sample(field, train[:2].clone(), [1.0, 0.1], method="sigma_star", index=idx, n_steps=3)
    assert torch.equal(out, train[:2])                     # sigma* = 0: the sample stays put, no NaN
    with pytest.raises(ConfigError):
        sample(field, train[:2].clone(), [1.0, 0.1], method="sigma_star")
    with pytest.raises(ConfigError):
        sample(field, train[:2].clone(), [1.0, 0.1], method="sigma_star", train=train, alpha=0.0)
