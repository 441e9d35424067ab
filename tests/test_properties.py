"""Issue 11 item 7: property-based tests (hypothesis) for scores, samplers and metrics.

Invariances that hold exactly in exact arithmetic are checked in float64 with tolerances relative to the data
scale: permutation of the training set, chunking (``block_elements``), translation equivariance, softmax weights
summing to 1, the temperature identity ``denoise_T(x, sigma) = denoise_1(x, sigma sqrt(T))``, and no NaN/Inf for
sigma in [1e-6, 1e4] with coordinates up to 1e4. Examples are derandomized (a fixed seed, so CI is deterministic)
and few (``max_examples`` 20-30): the file runs in a few seconds of CPU."""

import math

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import smoothscore as ss
from smoothscore.metrics import memorization_fraction, nn_ratio
from smoothscore.sampling import sample

PROFILE = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def problems(draw, *, max_coord=10.0, min_m=2, max_m=12, dims=(1, 2, 3, 5)):
    """(train (M, d), queries (N, d), sigma, seed) in float64; coordinates within +-max_coord."""
    d = draw(st.sampled_from(dims))
    m = draw(st.integers(min_m, max_m))
    n = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.floats(1e-3, max_coord))
    g = torch.Generator().manual_seed(seed)
    train = (torch.rand(m, d, generator=g, dtype=torch.float64) * 2 - 1) * scale
    q = (torch.rand(n, d, generator=g, dtype=torch.float64) * 2 - 1) * scale * 1.5
    log_sigma = draw(st.floats(math.log(1e-3 * scale), math.log(10 * scale)))
    return train, q, math.exp(log_sigma), seed


def esf(train, **kw):
    return ss.EmpiricalScore(train, dtype="float64", device="cpu", **kw)


def close(a, b, scale, rtol=1e-9):
    """|a - b| <= rtol * scale elementwise (scale: the data's magnitude, since outputs are coordinates)."""
    return bool(((a - b).abs() <= rtol * scale + 1e-300).all())


# ---------------------------------------------------------------------------------------------- scores
@PROFILE
@given(problems())
def test_esf_permutation_chunking_and_weights(p):
    train, q, sigma, seed = p
    scale = float(train.abs().max()) + sigma
    ref = esf(train).denoise(q, sigma)
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    assert close(esf(train[perm]).denoise(q, sigma), ref, scale)
    assert close(esf(train, block_elements=1).denoise(q, sigma), ref, scale)  # one logit at a time
    w = esf(train).weights(q, sigma)
    assert torch.allclose(w.sum(1), torch.ones(len(q), dtype=torch.float64), rtol=0, atol=1e-12)
    assert bool((w >= 0).all()) and close(w @ train, ref, scale)
    # the denoiser is a convex combination: inside the training set's bounding box
    assert bool((ref >= train.min(0).values - 1e-9 * scale).all() and (ref <= train.max(0).values + 1e-9 * scale).all())


@PROFILE
@given(problems(), st.floats(-1e3, 1e3))
def test_esf_translation_equivariance(p, shift):
    train, q, sigma, _ = p
    c = torch.full((train.shape[1],), shift, dtype=torch.float64)
    scale = float(train.abs().max()) + abs(shift) + sigma
    a = esf(train + c).denoise(q + c, sigma) - c
    b = esf(train).denoise(q, sigma)
    # the shifted coordinates carry rounding of size eps * |shift|; the score itself is shift-free
    assert close(a, b, scale, rtol=1e-8)
    sa, sb = esf(train + c).score(q + c, sigma), esf(train).score(q, sigma)
    assert close(sa, sb, scale / sigma**2, rtol=1e-8)


@PROFILE
@given(problems(), st.floats(0.05, 20.0))
def test_temperature_is_a_rescaled_noise_level_for_the_weights(p, t):
    """Paper B Sec. 4.2: dividing the logits -|x - y|^2 / (2 sigma^2) by T is the softmax at sigma sqrt(T)."""
    train, q, sigma, seed = p
    scale = float(train.abs().max()) + sigma
    a = esf(train, temperature=t).denoise(q, sigma)
    b = esf(train).denoise(q, sigma * math.sqrt(t))
    assert close(a, b, scale, rtol=1e-8)
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    assert close(esf(train[perm], temperature=t).denoise(q, sigma), a, scale)


@PROFILE
@given(problems(dims=(3, 5)), st.floats(-1e3, 1e3))
def test_unconditional_score_invariances(p, shift):
    train, q, _, seed = p
    f = ss.UnconditionalEmpiricalScore(train, dtype="float64", device="cpu")
    s = f.score(q)
    assert bool(torch.isfinite(s).all())
    scale = float(s.abs().max()) + 1.0
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    assert close(
        ss.UnconditionalEmpiricalScore(train[perm], dtype="float64", device="cpu").score(q), s, scale, rtol=1e-8
    )
    assert close(
        ss.UnconditionalEmpiricalScore(train, dtype="float64", device="cpu", block_elements=1).score(q),
        s,
        scale,
        rtol=1e-8,
    )
    c = torch.full((train.shape[1],), shift, dtype=torch.float64)
    st_ = ss.UnconditionalEmpiricalScore(train + c, dtype="float64", device="cpu").score(q + c)
    assert close(st_, s, scale, rtol=1e-6)
    w = f.weights(q)
    assert torch.allclose(w.sum(1), torch.ones(len(q), dtype=torch.float64), atol=1e-10)


@PROFILE
@given(problems(max_coord=1e4, dims=(1, 2, 3)), st.floats(math.log(1e-6), math.log(1e4)))
def test_no_nan_or_inf_at_extreme_sigmas_and_coordinates(p, log_sigma):
    train, q, _, _ = p
    sigma = math.exp(log_sigma)
    for f in (esf(train), esf(train, temperature=7.0)):
        for out in (f.denoise(q, sigma), f.score(q, sigma), f.weights(q, sigma)):
            assert bool(torch.isfinite(out).all()), (sigma, float(train.abs().max()))
    if train.shape[1] >= 3:
        u = ss.UnconditionalEmpiricalScore(train, dtype="float64", device="cpu", sigma_min=1e-6, sigma_max=1e4)
        assert bool(torch.isfinite(u.score(q)).all())


# -------------------------------------------------------------------------------------------- samplers
@PROFILE
@given(problems(max_m=8, dims=(1, 2)), st.sampled_from(["euler", "heun"]), st.floats(-100, 100))
def test_deterministic_samplers_translation_permutation_and_chunking(p, method, shift):
    train, q, _, seed = p
    scale = float(train.abs().max()) + 1.0
    sig = ss.sigma_schedule("geometric", 8, 1e-2 * scale, 3 * scale)
    x0 = q * 2
    ref = sample(esf(train), x0, sig, method=method)
    c = torch.full((train.shape[1],), shift, dtype=torch.float64)
    assert close(sample(esf(train + c), x0 + c, sig, method=method) - c, ref, scale + abs(shift), rtol=1e-7)
    perm = torch.randperm(len(x0), generator=torch.Generator().manual_seed(seed))
    assert close(sample(esf(train), x0[perm], sig, method=method), ref[perm], scale)
    half = len(x0) // 2
    if half:
        parts = torch.cat(
            [sample(esf(train), x0[:half], sig, method=method), sample(esf(train), x0[half:], sig, method=method)]
        )
        assert close(parts, ref, scale)
    assert bool(torch.isfinite(ref).all())


@PROFILE
@given(problems(max_m=8, dims=(2, 3)))
def test_stochastic_samplers_are_seed_deterministic_and_finite(p):
    train, q, _, seed = p
    scale = float(train.abs().max()) + 1.0
    sig = ss.sigma_schedule("geometric", 6, 1e-2 * scale, 3 * scale)
    for method, kw in (("em", {}), ("pc", {"snr": 0.1}), ("sigma_star", {"train": train})):
        a = sample(esf(train), q, sig, method=method, generator=torch.Generator().manual_seed(seed), **kw)
        b = sample(esf(train), q, sig, method=method, generator=torch.Generator().manual_seed(seed), **kw)
        assert torch.equal(a, b) and bool(torch.isfinite(a).all()), method


# --------------------------------------------------------------------------------------------- metrics
@PROFILE
@given(problems(min_m=2, max_m=15, dims=(1, 2, 4)), st.floats(0.01, 1.0), st.floats(-1e3, 1e3))
def test_memorization_metrics(p, threshold, shift):
    train, q, _, seed = p
    g = torch.Generator().manual_seed(seed)
    samples = torch.cat([q, train[: max(1, len(train) // 2)] + 1e-9])  # some near-copies
    frac = memorization_fraction(samples, train, threshold=threshold)
    assert 0.0 <= frac <= 1.0
    r = nn_ratio(samples, train)
    assert bool(((r >= 0) & (r <= 1)).all())
    perm = torch.randperm(len(samples), generator=g)
    assert memorization_fraction(samples[perm], train, threshold=threshold) == frac
    assert memorization_fraction(samples, train[torch.randperm(len(train), generator=g)], threshold=threshold) == frac
    assert torch.equal(nn_ratio(samples[perm], train), r[perm])
    c = torch.full((train.shape[1],), shift, dtype=torch.float64)
    assert torch.allclose(nn_ratio(samples + c, train + c), r, atol=1e-6)
    # a non-strict count check independent of the library's own code: brute-force float64 ratios
    d = torch.cdist(samples, train).sort(1).values
    brute = d[:, 0] / d[:, 1].clamp_min(1e-300)
    assert torch.allclose(r, brute, atol=1e-9, rtol=1e-9)
    if not np.isclose(brute.numpy(), threshold, atol=1e-9, rtol=0).any():  # no sample on the threshold
        assert frac == float((brute < threshold).double().mean())
