"""Loss weights are explicit: each denoising loss names how sigma is drawn and its weight lambda(sigma) = sigma^2,
and gives exactly the numbers of the hand-written objectives (Paper B Eq. 8-9, Paper A's t-weighted DSM)."""

import math

import torch

from smoothscore.nets import build_model
from smoothscore.training import ConditionedDSM, TWeightedDSM, UnconditionedDSM, losses
from smoothscore.training.losses import SigmaSampler, UniformT, sigma_squared


def _setup(conditioning):
    torch.manual_seed(0)
    m = build_model("mlp", (3,), conditioning=conditioning, width=16).double()
    x0 = torch.randn(8, 3, dtype=torch.float64)
    return m, x0


def test_dsm_is_sigma_squared_weighted_denoising_score_matching():
    m, x0 = _setup("sigma")
    loss = ConditionedDSM(sigma_min=0.02, sigma_max=20.0, n_levels=None)
    assert loss.weight is sigma_squared and loss.scale == 0.5 and isinstance(loss.sigmas, SigmaSampler)
    noise = loss.draw(8, (3,), torch.Generator().manual_seed(1))
    s, e = noise["sigma"], noise["eps"]
    x = x0 + s[:, None] * e
    got = loss.compute(m, x0, None, noise)
    old = (0.5 * (s[:, None] * m(x, s) + e).pow(2).sum(1)).mean()  # 1/2 |sigma s + eps|^2
    assert torch.equal(got, old)
    # the weighted form it stands for: sigma^2 / 2 |s + (x - x0) / sigma^2|^2
    lit = (0.5 * s**2 * (m(x, s) + (x - x0) / s[:, None] ** 2).pow(2).sum(1)).mean()
    assert math.isclose(float(got), float(lit), rel_tol=1e-12)
    assert loss.sigma_range == (0.02, 20.0)


def test_unconditioned_dsm_same_numbers():
    m, x0 = _setup("none")
    loss = UnconditionedDSM(sigma_min=0.1, sigma_max=5.0, n_levels=10)
    noise = loss.draw(8, (3,), torch.Generator().manual_seed(2))
    s, e = noise["sigma"], noise["eps"]
    x = x0 + s[:, None] * e
    old = (0.5 * (s[:, None] * (m.net(x) / s[:, None]) + e).pow(2).sum(1)).mean()
    assert torch.equal(loss.compute(m, x0, None, noise), old)


def test_t_weighted_dsm_same_numbers_and_draws():
    m, x0 = _setup("sigma")
    loss = TWeightedDSM(t_min=1e-4, t_max=1.0)
    assert isinstance(loss.sigmas, UniformT) and loss.scale == 1.0
    g = torch.Generator().manual_seed(3)
    noise = loss.draw(8, (3,), g)
    g2 = torch.Generator().manual_seed(3)
    t = 1e-4 + (1.0 - 1e-4) * torch.rand(8, generator=g2, dtype=torch.float64)
    assert torch.equal(noise["sigma"], t.sqrt())
    assert torch.equal(noise["eps"], torch.randn((8, 3), generator=g2, dtype=torch.float64))
    s, e = noise["sigma"], noise["eps"]
    old = 2 * (0.5 * (s[:, None] * m(x0 + s[:, None] * e, s) + e).pow(2).sum(1)).mean()
    assert torch.equal(loss.compute(m, x0, None, noise), old)
    assert loss.sigma_range == (0.01, 1.0)
    assert losses.get("t_weighted")(t_min=0.01, t_max=4.0, distribution="log_uniform").sigma_range == (0.1, 2.0)


def test_temperature_loss_same_numbers_in_both_regimes():
    """Eq. 11 through the named weight: Eq. 9 above sigma_collapse, ``sigma^2/2 |s - score_T|^2`` below."""
    from smoothscore.scores.temperature import temperature_target
    from smoothscore.training import TemperatureKNNLoss

    m, x0 = _setup("none")
    train = torch.randn(6, 3, dtype=torch.float64)
    loss = TemperatureKNNLoss(train, k=3, sigma_collapse=1.0, sigma_min=0.1, sigma_max=5.0, n_levels=10)
    assert loss.weight is sigma_squared and loss.scale == 0.5
    idx = torch.arange(6)
    noise = loss.draw(6, (3,), torch.Generator().manual_seed(4))
    s, e = noise["sigma"], noise["eps"]
    assert bool((s <= 1.0).any()) and bool((s > 1.0).any())  # both regimes in the batch
    x = train + s[:, None] * e
    out = m.net(x) / s[:, None]
    r = s[:, None] * out + e
    low = s <= 1.0
    neigh = loss.knn.neighbors_of(idx[low]).to(x.dtype)
    tgt = temperature_target(x[low], neigh, s[low], (1.0 / s[low]).clamp_min(1.0), loss.variant)
    r[low] = s[low][:, None] * (out[low] - tgt)
    assert torch.equal(loss.compute(m, train, idx, noise), (0.5 * r.pow(2).sum(1)).mean())
