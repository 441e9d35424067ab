"""The per-call fast paths of the exact-score kernel (issue 9, item 2): the common-sigma flash form (scale + mask)
and the per-query form (augmented keys) agree with each other and with a float64 brute force; the augmented keys
of a small set are built once per dtype and reused (identical results with and without the cache, separate per
dtype and per weight vector, not kept for a set larger than one chunk); the cheaper input checks reject exactly
what they rejected before."""

import math

import pytest
import torch
from torch.autograd import forward_ad

import smoothscore as ss
from smoothscore.data.arrays import PointSet
from smoothscore.errors import NonFiniteError, SigmaError
from smoothscore.scores import _kernel

CPU = torch.device("cpu")


def brute(y, x, inv, logw=None):
    """Float64 softmax mean ``sum_j w_j y_j``, ``w = softmax_j(log pi_j - |x - y_j|^2 inv / 2)``, by hand."""
    y64, x64, inv64 = y.double(), x.double(), inv.double()
    logit = -((x64[:, None] - y64[None]) ** 2).sum(2) * inv64[:, None] / 2
    logit = logit + (-math.log(len(y)) if logw is None else logw.double())
    return torch.softmax(logit, 1) @ y64


def data(seed=0, n=400, d=12, offset=10.0):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(n, d, generator=g) * 2 - 1 + offset  # far from the origin: the set is centred
    x = y[:37] + 0.3 * torch.randn(37, d, generator=g)
    return y, x, g


@pytest.mark.parametrize("weighted", [False, True])
def test_common_sigma_and_per_query_forms_match_brute_force(weighted, monkeypatch):
    y, x, g = data()
    w = torch.rand(len(y), generator=g) + 0.1 if weighted else None
    logw = None if w is None else torch.log(w / w.sum())
    for dtype, tol in ((torch.float32, 1e-4), (torch.float64, 1e-10)):
        p = PointSet(y, dtype=dtype, device=CPU)
        u = x.to(dtype) - p.center_c
        for s in (0.05, 0.4, 3.0):
            inv = torch.full((len(x),), 1 / s**2, dtype=dtype)
            ref = brute(y, x, inv, logw)
            _, fast = _kernel.gaussian_stats(u, inv, p, logw=logw, method="flash")  # scale + mask form
            with monkeypatch.context() as m:
                m.setattr(_kernel, "_uniform", lambda inv: None)  # force the augmented-key form
                _, aug = _kernel.gaussian_stats(u, inv, p, logw=logw, method="flash")
            _, gemm = _kernel.gaussian_stats(u, inv, p, logw=logw, method="gemm")
            for mean in (fast, aug, gemm):
                assert ((mean + p.center_c).double() - ref).abs().max() < tol
        # distinct per-query sigmas take the augmented-key form and still match
        inv = 1 / (torch.rand(len(x), generator=g, dtype=torch.float64) + 0.1).to(dtype) ** 2
        _, mean = _kernel.gaussian_stats(u, inv, p, logw=logw, method="flash")
        assert ((mean + p.center_c).double() - brute(y, x, inv, logw)).abs().max() < tol


def test_small_set_keys_built_once_reused_and_identical_to_streaming():
    y, x, g = data(1)
    inv = 1 / (torch.rand(len(x), generator=g) + 0.2) ** 2  # per-query: the augmented-key form
    p = PointSet(y, dtype=torch.float32, device=CPU)
    u = x - p.center_c
    assert not p._keys
    _, first = _kernel.gaussian_stats(u, inv, p, method="flash")
    ((lw, k1),) = p._keys.values()
    assert lw is None and k1.shape == (len(y), y.shape[1] + 1)
    _, second = _kernel.gaussian_stats(u, inv, p, method="flash")
    assert next(iter(p._keys.values()))[1].data_ptr() == k1.data_ptr()  # reused, not rebuilt
    assert torch.equal(first, second)
    fresh = PointSet(y, dtype=torch.float32, device=CPU)
    assert torch.equal(_kernel.gaussian_stats(u, inv, fresh, method="flash")[1], first)
    # a set larger than the byte budget (here: tiny chunks) is streamed and nothing is kept
    streamed = PointSet(y, dtype=torch.float32, device=CPU, chunk_bytes=4 * 12 * 50)
    _, mean = _kernel.gaussian_stats(u, inv, streamed, method="flash")
    assert not streamed._keys and streamed.chunk_rows == 50
    assert (mean - first).abs().max() < 1e-5


def test_key_cache_is_separate_per_dtype_and_weights_and_float64_is_unaffected():
    y, x, g = data(2)
    inv64 = 1 / (torch.rand(len(x), generator=g, dtype=torch.float64) + 0.2) ** 2
    p = PointSet(y, dtype=torch.float32, device=CPU)
    _kernel.gaussian_stats(x - p.center_c, inv64.float(), p, method="flash")  # float32 keys cached first
    k32 = p._keys[(torch.float32, 1)][1].clone()
    _kernel.gaussian_stats(x.double() - p.center, inv64, p, method="flash")
    assert set(p._keys) == {(torch.float32, 1), (torch.float64, 1)}
    k64 = p._keys[(torch.float64, 1)][1]
    assert k64.dtype == torch.float64 and torch.equal(k64[:, :-1], y.double() - p.center)  # not float32-rounded
    assert torch.equal(p._keys[(torch.float32, 1)][1], k32)  # the float32 entry is untouched
    # a float64 field keeps its 1e-10 contract through the cached keys, and another weight vector rebuilds them
    q = PointSet(y, dtype=torch.float64, device=CPU)
    u64 = x.double() - q.center
    w1, w2 = torch.rand(len(y), generator=g, dtype=torch.float64), torch.rand(len(y), generator=g, dtype=torch.float64)
    for _ in range(2):
        for w in (w1, w2):
            logw = torch.log(w / w.sum())
            _, m = _kernel.gaussian_stats(u64, inv64, q, logw=logw, method="flash")
            assert ((m + q.center) - brute(y, x, inv64, logw)).abs().max() < 1e-10


def test_cheaper_checks_reject_what_they_did_and_accept_overflowing_sums():
    f = ss.EmpiricalScore(torch.randn(20, 3), device="cpu")
    x = torch.randn(5, 3)
    for bad in (0.0, -1.0, math.nan, math.inf, 1e-50, 1e39):  # 1e-50 and 1e39 round to 0 and inf in float32
        with pytest.raises(SigmaError):
            f.denoise(x, bad)
    assert torch.isfinite(f.denoise(x, 1e-3)).all() and torch.isfinite(f.denoise(x, 1e4)).all()
    big = torch.full((4, 3), 3e38)  # finite, but its sum overflows to inf: the exact check accepts it
    assert f.denoise(big, 1.0).shape == (4, 3)
    for v in (math.nan, math.inf):
        xb = x.clone()
        xb[2, 1] = v
        with pytest.raises(NonFiniteError):
            f.denoise(xb, 0.5)


def test_forward_mode_dual_queries_take_the_differentiable_path():
    y, x, g = data(3, n=50, d=4, offset=0.0)
    f = ss.EmpiricalScore(y, dtype="float64", device="cpu")
    x, t = x.double(), torch.randn(x.shape, generator=g, dtype=torch.float64)
    with forward_ad.dual_level():
        out = forward_ad.unpack_dual(f.denoise(forward_ad.make_dual(x, t), 0.5)).tangent
    h = 1e-6
    fd = (f.denoise(x + h * t, 0.5) - f.denoise(x - h * t, 0.5)) / (2 * h)
    assert out is not None and (out - fd).abs().max() < 1e-6


@pytest.mark.parametrize("d", [64, 784])
def test_per_query_sigma_form_keeps_the_float32_precision_contract(d):
    """The foundation's contract (tests/test_empirical_precision.py: within 1e-4 of the data range of a float64
    brute force, data 2e3 x the range off the origin) on the augmented-key form, reached by distinct sigmas."""
    g = torch.Generator().manual_seed(0)
    train = torch.rand(120, d, generator=g) * 2 - 1 + 2e3
    f = ss.EmpiricalScore(train, device="cpu")
    idx = torch.randint(0, 120, (32,), generator=g)
    for s in torch.logspace(-3, 2, 8):
        sv = float(s) * (1 + 0.5 * torch.rand(32, generator=g))
        x = train[idx] + sv[:, None] * torch.randn(32, d, generator=g)
        assert _kernel._uniform(f._inv(sv)) is None
        ref = brute(train, x, 1 / sv.double() ** 2)
        assert (f.denoise(x, sv).double() - ref).abs().max().item() / 2 < 1e-4


def test_gradient_with_respect_to_sigma_takes_the_differentiable_path():
    y, x, _ = data(4, n=50, d=4, offset=0.0)
    f = ss.EmpiricalScore(y, dtype="float64", device="cpu")
    x = x.double()
    s = torch.full((len(x),), 0.7, dtype=torch.float64, requires_grad=True)
    f.denoise(x, s).sum().backward()
    h = 1e-6
    fd = (f.denoise(x, 0.7 + h).sum() - f.denoise(x, 0.7 - h).sum()) / (2 * h)
    assert abs(float(s.grad.sum()) - float(fd)) < 1e-6
