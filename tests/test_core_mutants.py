"""Tests written for mutants that survived the sampled mutation run (docs/mutation.md; issue 18): each asserts a
number against an independent value."""

import torch

import smoothscore as ss
from smoothscore.data.arrays import PointSet
from smoothscore.scores._kernel import gaussian_stats


def test_gemm_kernel_gradient_in_sigma_over_several_chunks():
    # a differentiable inverse variance with plain queries: the streamed chunks must not reuse one scratch buffer
    # (autograd keeps every chunk for P V's backward); checked against a central finite difference in float64
    g = torch.Generator().manual_seed(0)
    y = torch.randn(600, 4, generator=g, dtype=torch.float64) + 5.0  # centred by the set: chunks are fresh copies
    pts = PointSet(y, dtype=torch.float64, device=torch.device("cpu"), chunk_bytes=64 * 4 * 8)  # 64-row chunks
    u = (y[:5] + 0.3 * torch.randn(5, 4, generator=g, dtype=torch.float64)) - pts.center
    inv = torch.full((5,), 2.0, dtype=torch.float64, requires_grad=True)

    def f(iv):
        lse, mean = gaussian_stats(u, iv, pts, method="gemm")
        return (mean.sum(1) + lse).sum()

    f(inv).backward()
    h = 1e-6
    fd = (f(torch.full((5,), 2.0 + h, dtype=torch.float64)) - f(torch.full((5,), 2.0 - h, dtype=torch.float64))) / (
        2 * h
    )
    assert abs(float(inv.grad.sum()) - float(fd)) <= 1e-6 * max(1.0, abs(float(fd)))


def test_knn_score_diameter_bound_is_twice_the_radius_about_the_mean():
    y = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    field = ss.KNNScore(y, k=2)
    # mean 4/3: the farthest point is 5/3 away, the bound 10/3 >= the true diameter 3
    assert abs(field.diameter_bound - 10 / 3) <= 1e-12


def test_closest_pairs_hand_values():
    from smoothscore.metrics.expansiveness import closest_pairs

    y = torch.tensor([[0.0], [0.1], [1.0], [1.3], [3.0], [3.6], [10.0]], dtype=torch.float64)
    mu0, mu1 = closest_pairs(y, 2)  # gaps 0.1 (0, 0.1) and 0.3 (1, 1.3), each pair once
    pairs = sorted(tuple(sorted((float(a), float(b)))) for a, b in zip(mu0[:, 0], mu1[:, 0]))
    assert pairs == [(0.0, 0.1), (1.0, 1.3)]
    assert len(closest_pairs(y, 3)[0]) == 3


def test_sigma_star_sampler_refuses_negative_noise():
    import pytest

    from smoothscore.errors import ConfigError
    from smoothscore.sampling import sample

    train = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    field = ss.UnconditionalEmpiricalScore(train, mode="optimal", device="cpu")
    with pytest.raises(ConfigError, match="noise non-negative"):
        sample(field, train[:2].clone(), [1.0, 0.1], method="sigma_star", train=train, noise=-0.5)
