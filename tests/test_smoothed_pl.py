"""SmoothedPLScore: Paper A's two-point formulas, the adopted general-n form, embedding, continuity, bad input."""

import math

import numpy as np
import pytest
import torch

import smoothscore as ss
from smoothscore.errors import ConfigError, EmptyDataError, NonFiniteError, ShapeError, SigmaError


def two_point_spec(x, t, delta):
    """Paper A's two-point Smoothed PL-ESF written out literally (delta=None: PL-ESF)."""
    if delta is None:
        return (np.sign(x) - x) / t
    return np.where(x <= delta - 1, -(x + 1) / t, np.where(x >= 1 - delta, -(x - 1) / t, delta / (1 - delta) * x / t))


def general_n_loop(x, t, y, delta):
    """Independent scalar loop of the adopted general-n definition."""
    y = sorted(y)
    out = []
    for xi in x:
        near = min(y, key=lambda v: abs(v - xi))
        val = (near - xi) / t
        for a, b in zip(y[:-1], y[1:]):
            m, h = (a + b) / 2, (b - a) / 2
            if delta is not None and delta < h and a <= xi <= b and abs(xi - m) < h - delta:
                val = delta / (h - delta) * (xi - m) / t
        out.append(val)
    return np.array(out)


X = np.linspace(-2.5, 2.5, 1001)


@pytest.mark.parametrize("delta", [0.1, 0.5, 0.9])
def test_two_point_fixed_delta_matches_spec(delta):
    f = ss.SmoothedPLScore([-1.0, 1.0], delta=delta, dtype="float64", device="cpu")
    got = f.score(torch.tensor(X)[:, None], 0.3).numpy()[:, 0]
    np.testing.assert_allclose(got, two_point_spec(X, 0.09, delta), rtol=1e-12, atol=1e-9)


def test_kappa_gives_delta_kappa_sigma_and_per_sample_sigma():
    f = ss.SmoothedPLScore([1.0, -1.0], kappa=2.0, dtype="float64", device="cpu")
    sig = torch.tensor(np.linspace(0.05, 0.45, X.size))
    got = f.score(torch.tensor(X)[:, None], sig).numpy()[:, 0]
    want = np.array([two_point_spec(np.array([xi]), s**2, 2.0 * s)[0] for xi, s in zip(X, sig.numpy())])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-8)


def test_delta_one_and_none_give_pl_esf():
    x = torch.tensor(X[np.abs(X) > 1e-9])[:, None]
    pl = ss.SmoothedPLScore([-1.0, 1.0], dtype="float64", device="cpu").score(x, 0.2).numpy()[:, 0]
    np.testing.assert_allclose(pl, two_point_spec(x.numpy()[:, 0], 0.04, None), rtol=1e-12)
    for d in (1.0, 1.7):  # delta >= h keeps the PL-ESF
        f = ss.SmoothedPLScore([-1.0, 1.0], delta=d, dtype="float64", device="cpu").score(x, 0.2).numpy()[:, 0]
        np.testing.assert_allclose(f, pl, rtol=1e-12)


@pytest.mark.parametrize("delta", [None, 0.0, 0.05, 0.3, 0.8])
def test_general_n_matches_independent_loop(delta):
    y = [2.0, -1.5, 0.0, 0.4]  # unsorted, uneven spacing (half-gaps 0.75, 0.2, 0.8)
    f = ss.SmoothedPLScore(y, delta=delta, dtype="float64", device="cpu")
    xs = np.linspace(-3, 3.5, 1301) + 1e-4  # avoid exact midpoints (ties, measure zero)
    got = f.score(torch.tensor(xs)[:, None], 0.5).numpy()[:, 0]
    np.testing.assert_allclose(got, general_n_loop(xs, 0.25, y, delta), rtol=1e-12, atol=1e-9)
    assert torch.equal(f.points, torch.tensor(sorted(y), dtype=torch.float64))


def test_n2_general_reduces_to_two_point_after_shift_and_scale():
    # points {3, 7}: m = 5, h = 2. Scaling x -> (x - 5)/2, t -> t/4, delta -> delta/2 maps to +-1.
    f = ss.SmoothedPLScore([3.0, 7.0], delta=0.6, dtype="float64", device="cpu")
    xs = 5 + 2 * X
    got = f.score(torch.tensor(xs)[:, None], 0.4).numpy()[:, 0]
    want = two_point_spec(X, 0.16 / 4, 0.3) / 2
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("kappa", [0.5, 2.0])
def test_smoothed_score_is_continuous(kappa):
    f = ss.SmoothedPLScore([-1.0, 0.5, 2.0], kappa=kappa, dtype="float64", device="cpu")
    xs = torch.linspace(-2.0, 3.0, 200001, dtype=torch.float64)[:, None]
    s = f.score(xs, 0.2)[:, 0]
    # Lipschitz with constant max(1, delta/(h-delta)) / t: adjacent jumps bounded by that times the spacing
    dx = float(xs[1, 0] - xs[0, 0])
    lip = max(1.0, max(kappa * 0.2 / (h - kappa * 0.2) for h in (0.75, 0.75))) / 0.04
    assert float((s[1:] - s[:-1]).abs().max()) <= lip * dx * (1 + 1e-6)
    # the PL-ESF, by contrast, jumps at the midpoints
    pl = ss.SmoothedPLScore([-1.0, 0.5, 2.0], dtype="float64", device="cpu").score(xs, 0.2)[:, 0]
    assert float((pl[1:] - pl[:-1]).abs().max()) > 0.5 / 0.04


def test_embedding_normal_part_is_exact():
    g = torch.Generator().manual_seed(0)
    d = torch.tensor([1.0, -2.0, 2.0], dtype=torch.float64)
    e = d / d.norm()
    f = ss.SmoothedPLScore([-1.0, 0.2, 1.0], kappa=1.5, direction=3 * d, dtype="float64", device="cpu")
    f1 = ss.SmoothedPLScore([-1.0, 0.2, 1.0], kappa=1.5, dtype="float64", device="cpu")
    x = torch.randn(500, 3, generator=g, dtype=torch.float64)
    sig = 0.1 + torch.rand(500, generator=g, dtype=torch.float64)
    u = x @ e
    perp = x - u[:, None] * e
    want = f1.score(u[:, None], sig)[:, 0][:, None] * e - perp / sig[:, None] ** 2
    torch.testing.assert_close(f.score(x, sig), want, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(f.denoise(x, sig), x + sig[:, None] ** 2 * f.score(x, sig), rtol=1e-12, atol=1e-12)
    assert f.data_shape == (3,)


def test_float32_default_and_float64_agree():
    x = torch.linspace(-2, 2, 101)[:, None]
    a = ss.SmoothedPLScore([-1.0, 1.0], kappa=1.0, device="cpu").score(x, 0.3)
    b = ss.SmoothedPLScore([-1.0, 1.0], kappa=1.0, dtype="float64", device="cpu").score(x.double(), 0.3)
    assert a.dtype == torch.float32 and b.dtype == torch.float64
    torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-4)


def test_bad_input():
    with pytest.raises(ConfigError):
        ss.SmoothedPLScore([-1.0, 1.0], kappa=-0.1)
    with pytest.raises(ConfigError):
        ss.SmoothedPLScore([-1.0, 1.0], delta=-0.1)
    with pytest.raises(ConfigError):
        ss.SmoothedPLScore([-1.0, 1.0], kappa=1.0, delta=0.1)
    with pytest.raises(ConfigError):
        ss.SmoothedPLScore([-1.0, 1.0, -1.0], kappa=1.0)
    with pytest.raises(ConfigError):
        ss.SmoothedPLScore([-1.0, 1.0], kappa=1.0, direction=[0.0, 0.0])
    with pytest.raises(EmptyDataError):
        ss.SmoothedPLScore([], kappa=1.0)
    with pytest.raises(NonFiniteError):
        ss.SmoothedPLScore([0.0, math.nan], kappa=1.0)
    with pytest.raises(ShapeError):
        ss.SmoothedPLScore([[0.0, 1.0], [1.0, 2.0]], kappa=1.0)
    f = ss.SmoothedPLScore([-1.0, 1.0], kappa=1.0, direction=[1.0, 0.0])
    with pytest.raises(ShapeError):
        f.score(torch.zeros(4, 3), 0.1)
    with pytest.raises(SigmaError):
        f.score(torch.zeros(4, 2), 0.0)
