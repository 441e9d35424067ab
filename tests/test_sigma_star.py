"""The adaptive sigma* sampler (Paper B, Sec. 4.1) on the exact unconditional score."""

import pytest
import torch

from smoothscore.data import load_digits
from smoothscore.errors import ConfigError
from smoothscore.sampling import sample
from smoothscore.sampling.sigma_star import sample_sigma_star
from smoothscore.scores.unconditional import UnconditionalEmpiricalScore
from smoothscore.search import NeighborIndex


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread avoids thread hand-off stalls on a loaded 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_sigma_star_sampler_converges_onto_data():
    train = load_digits(n=30, size=16, seed=0).x
    field = UnconditionalEmpiricalScore(train, sigmas=torch.logspace(-2, 1.3, 40), device="cpu")
    g = torch.Generator().manual_seed(0)
    x0 = 5.0 * torch.randn(8, *train.shape[1:], generator=g)
    d0 = NeighborIndex(train).search(x0, 1)[0][:, 0]
    seen = []
    out = sample(
        field,
        x0,
        [20.0, 0.01],
        method="sigma_star",
        train=train,
        alpha=0.5,
        n_steps=40,
        callback=lambda info: seen.append(info["sigma"]),
    )
    dist = NeighborIndex(train).search(out, 1)[0][:, 0]
    # every sample ends at its nearest training image up to the smallest level sigma_min (started ~80 away)
    assert float(dist.max()) < 0.01 * 16 * 0.2 and float(d0.min()) > 50  # below sigma_min: ~sigma_min sqrt(d)/8
    assert len(seen) == 40 and seen[-1] < seen[0]


def test_sigma_star_helper_and_guard():
    train = torch.randn(5, 16)
    idx = NeighborIndex(train)
    s = sample_sigma_star(train[:2] + 0.0, idx)
    assert float(s.abs().max()) == 0.0
    field = UnconditionalEmpiricalScore(train, mode="optimal", device="cpu")
    out = sample(field, train[:2].clone(), [1.0, 0.1], method="sigma_star", index=idx, n_steps=3)
    assert torch.equal(out, train[:2])  # sigma* = 0: the sample stays put, no NaN
    with pytest.raises(ConfigError):
        sample(field, train[:2].clone(), [1.0, 0.1], method="sigma_star")
    with pytest.raises(ConfigError):
        sample(field, train[:2].clone(), [1.0, 0.1], method="sigma_star", train=train, alpha=0.0)


def test_zhou_ode_overshoot_smoke(tmp_path):
    import json

    from smoothscore.runner import run_experiment

    run_experiment(
        "zhou-ode-overshoot",
        "quick",
        tmp_path,
        overrides={
            "n_train": 30,
            "n_test": 8,
            "n_samples": 3,
            "steps": 6,
            "sigma_star_steps": 12,
            "quad_points": 1,
            "net_steps": 5,
        },
    )
    r = json.loads((tmp_path / "zhou-ode-overshoot" / "results.json").read_text())
    assert r["status"] == "ok"
    claims = {c["id"]: c for c in r["claims"]}
    assert len(claims) == 8 and all(isinstance(c["value"], float) for c in claims.values())
    assert "pc-sigma-scaled-near-data[late start]" in claims  # the authors' F*/sigma_sched under PC
    assert claims["ode-overshoots"]["passed"] is True  # the overshoot is large even on a tiny run
    assert claims["sigma-star-near-data[late start]"]["passed"] is True
    assert (tmp_path / "zhou-ode-overshoot" / "trajectory_distance.png").exists()


def test_sigma_star_sampler_acts_per_sample():
    # zhou-small-data reuses the first rows of a full sigma* run as a run on fewer samples: that needs the sampler
    # (deterministic without noise) to treat every sample on its own, with no batch statistics
    train = load_digits(n=20, size=16, seed=0).x
    field = UnconditionalEmpiricalScore(train, sigmas=torch.logspace(-2, 1.3, 20), device="cpu")
    x0 = 5.0 * torch.randn(6, *train.shape[1:], generator=torch.Generator().manual_seed(1))
    full = sample(field, x0, [20.0, 0.01], method="sigma_star", train=train, alpha=0.5, n_steps=10)
    part = sample(field, x0[:3], [20.0, 0.01], method="sigma_star", train=train, alpha=0.5, n_steps=10)
    torch.testing.assert_close(part, full[:3], rtol=1e-5, atol=1e-6)
