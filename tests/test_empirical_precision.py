"""Precision contract of the exact ESF (issue 2, item 3).

* float64 matches a brute-force float64 reference to 1e-9 relative.
* float32 keeps the denoiser within 1e-4 x (data range) of a float64 brute-force reference computed on the *same*
  (float32) inputs, for queries ``y + sigma * eps`` at every sigma and d up to 3072, also when data and queries are
  shifted by 1e3 x the data range (centred GEMM form).
* Near a tie between two training points at small sigma float32 is inaccurate (measured below), float64 is not.
"""

import pytest
import torch

import smoothscore as ss

RANGE = 2.0  # data in [-1, 1]


def brute64(train, x, sigma):
    y, q = train.double(), x.double()
    d2 = torch.cdist(q, y, compute_mode="donot_use_mm_for_euclid_dist") ** 2
    w = torch.softmax(-d2 / (2 * sigma.double()[:, None] ** 2), 1)
    return w @ y


def naive_gemm32(train, x, sigma):
    """The uncentred GEMM form |x|^2 - 2 x.y + |y|^2 in float32 (what the library avoids)."""
    d2 = (x * x).sum(1, keepdim=True) - 2 * x @ train.T + (train * train).sum(1)
    w = torch.softmax(-d2 / (2 * sigma[:, None] ** 2), 1)
    return w @ train


def worst_error(d, offset, method=None, n_sigma=14, seed=0):
    g = torch.Generator().manual_seed(seed)
    train = torch.rand(120, d, generator=g) * RANGE - 1 + offset
    idx = torch.randint(0, 120, (32,), generator=g)
    f = ss.EmpiricalScore(train, device="cpu")
    worst = 0.0
    for s in torch.logspace(-3, 2, n_sigma):
        x = train[idx] + s * torch.randn(32, d, generator=g)
        sv = torch.full((32,), float(s))
        got = f.denoise(x, sv) if method is None else method(train, x, sv)
        worst = max(worst, (got.double() - brute64(train, x, sv)).abs().max().item() / RANGE)
    return worst


@pytest.mark.parametrize("d", [2, 64, 784, 3072])
@pytest.mark.parametrize("offset", [0.0, 1e3 * RANGE])
def test_float32_denoiser_within_1e4_of_range(d, offset):
    assert worst_error(d, offset) < 1e-4


def test_naive_gemm_fails_far_from_origin():
    # the contract above is not vacuous: without centring, float32 GEMM distances cancel catastrophically
    assert worst_error(64, 1e3 * RANGE, method=naive_gemm32) > 1e-2


def test_float64_matches_brute_force_1e9_relative():
    g = torch.Generator().manual_seed(3)
    train = (torch.rand(80, 256, generator=g, dtype=torch.float64) * 2 - 1) + 500.0
    f = ss.EmpiricalScore(train, dtype="float64", device="cpu")
    for s in (1e-3, 0.05, 0.5, 5.0, 50.0):
        x = train[:16] + s * torch.randn(16, 256, generator=g, dtype=torch.float64)
        sv = torch.full((16,), s, dtype=torch.float64)
        ref = brute64(train, x, sv)
        rel = ((f.denoise(x, sv) - ref).norm(dim=1) / ref.norm(dim=1)).max().item()
        assert rel < 1e-9


def near_tie_errors(dtype):
    """Two points at -1, +1 in R^16 (padded), queries within +-3 sigma^2 of the midpoint at sigma = sqrt(1e-5)
    (Paper A's t_min)."""
    g = torch.Generator().manual_seed(5)
    train = torch.zeros(2, 16, dtype=torch.float64)
    train[0, 0], train[1, 0] = -1.0, 1.0
    train = train + 0.37  # off-origin, generic values
    sigma = 1e-5**0.5
    x = train.mean(0, keepdim=True).repeat(64, 1)
    x[:, 0] += torch.linspace(-3, 3, 64, dtype=torch.float64) * sigma**2
    x[:, 1:] += 0.1 * torch.randn(64, 15, generator=g, dtype=torch.float64)
    x = x.to(dtype)  # both methods see the same inputs
    f = ss.EmpiricalScore(train.to(dtype), dtype=dtype, device="cpu")
    got = f.denoise(x, sigma)
    ref = brute64(train.to(dtype), x, torch.full((64,), sigma))
    return (got.double() - ref).abs().max().item() / RANGE


def test_near_tie_float32_error_is_measured_and_float64_is_exact():
    err32 = near_tie_errors(torch.float32)
    err64 = near_tie_errors(torch.float64)
    # measured (seed 5): float32 ~1e-3 of the range, above the 1e-4 contract that holds away from ties: the
    # softmax is a steep function of logit differences O(dx |y1 - y2| / sigma^2), and float32 rounding of the
    # inputs alone moves them. Documented in scores/empirical.py; float64 (one word) is accurate.
    assert 1e-4 < err32 < 0.5
    assert err64 < 1e-7
