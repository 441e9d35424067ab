"""float64 ESF against float64 brute force where the softmax weights are mixed (issue 18): at sigma = 10 on data of
spread 3 in d = 64 the largest weight is < 0.9 and every query has > 20 weights above 1e-3, so a float32 rounding of
``|y|^2 / 2`` anywhere in the float64 kernel (relative 6e-8 of ~300, i.e. logit errors ~1e-7) moves the mean by ~1e-6
of the data range; the bound is 1e-12."""

import pytest
import torch

import smoothscore as ss


def _data():
    g = torch.Generator().manual_seed(11)
    y = 3.0 * torch.randn(300, 64, generator=g, dtype=torch.float64) + 0.5  # not centred (mean << spread)
    x = y[:20] + 2.0 * torch.randn(20, 64, generator=g, dtype=torch.float64)
    return y, x


def _brute(y, x, sigma, w=None):
    logit = -((x[:, None, :] - y[None, :, :]) ** 2).sum(2) / (2 * sigma**2)  # differences first: no cancellation
    if w is not None:
        logit = logit + torch.log(w / w.sum())
    p = torch.softmax(logit, 1)
    return p @ y, p


@pytest.mark.parametrize("method", ["flash", "gemm"])
@pytest.mark.parametrize("weighted", [False, True])
def test_float64_kernel_mixed_weights_to_1e12_of_range(method, weighted):
    y, x = _data()
    w = torch.rand(300, generator=torch.Generator().manual_seed(2), dtype=torch.float64) if weighted else None
    rng = float((y.max(0).values - y.min(0).values).max())
    ref, p = _brute(y, x, 10.0, w)
    assert float(p.max()) < 0.9 and float((p > 1e-3).sum(1).min()) > 20  # mixed weights
    esf = ss.EmpiricalScore(y, weights=w, dtype="float64", device="cpu", method=method)
    err = float((esf.denoise(x, 10.0) - ref).abs().max())
    assert err <= 1e-12 * rng, err
    # a per-query sigma vector takes the augmented-key / per-query-bias form
    sig = torch.full((20,), 10.0, dtype=torch.float64)
    sig[::2] = 9.0
    ref2 = torch.stack([_brute(y, x[i : i + 1], float(sig[i]), w)[0][0] for i in range(20)])
    err2 = float((esf.denoise(x, sig) - ref2).abs().max())
    assert err2 <= 1e-12 * rng, err2
