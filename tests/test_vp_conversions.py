"""VP <-> VE conversions against hand formulas (float64) and round trips, and FunctionScore.from_vp: a VP model of
Gaussian data (its exact VP score in closed form) wrapped as a VE field equals the exact VE score to 1e-10, for
every prediction type, on a continuous and a discrete schedule."""

import math

import pytest
import torch

from smoothscore import noise
from smoothscore.errors import ConfigError
from smoothscore.noise import VPProcess
from smoothscore.sampling.ddim import linear_alpha_bar
from smoothscore.scores import FunctionScore
from smoothscore.scores.gaussian import GaussianScore

G = torch.Generator().manual_seed(0)
X = torch.randn(5, 3, generator=G, dtype=torch.float64)
SIG = torch.tensor([0.01, 0.3, 1.0, 4.0, 60.0], dtype=torch.float64)


def test_level_conversions_match_hand_formulas():
    ab = torch.tensor([0.9999, 0.5, 0.01], dtype=torch.float64)
    sig = noise.vp_sigma(ab)
    assert torch.allclose(sig, torch.tensor([math.sqrt(0.0001 / 0.9999), 1.0, math.sqrt(99.0)], dtype=torch.float64))
    assert torch.allclose(noise.vp_log_sigma(ab), sig.log(), rtol=1e-14)
    assert torch.allclose(noise.sigma_to_alpha_bar(sig), ab, rtol=1e-14)  # round trip
    assert noise.sigma_to_alpha_bar(1.0) == 0.5 and math.isclose(noise.vp_noise_std(1.0), math.sqrt(0.5))
    assert torch.allclose(noise.vp_noise_std(sig), (1 - ab).sqrt(), rtol=1e-14)


def test_sample_score_and_prediction_conversions():
    ab = 1 / (1 + SIG**2)
    sa = ab.sqrt()[:, None]
    xt = noise.ve_to_vp(X, SIG)
    assert torch.allclose(xt, sa * X, rtol=1e-15)
    assert torch.allclose(noise.vp_to_ve(xt, SIG), X, rtol=1e-14)  # round trip
    assert torch.allclose(noise.vp_to_ve(X[:1], 2.0), X[:1] * math.sqrt(5.0), rtol=1e-15)
    assert torch.allclose(noise.ve_to_vp(X[:1], 2.0), X[:1] / math.sqrt(5.0), rtol=1e-15)
    s_vp = torch.randn(5, 3, generator=G, dtype=torch.float64)
    assert torch.allclose(noise.vp_score_to_ve(s_vp, SIG), sa * s_vp, rtol=1e-15)
    assert torch.allclose(noise.ve_score_to_vp(noise.vp_score_to_ve(s_vp, SIG), SIG), s_vp, rtol=1e-14)
    eps = -(1 - ab).sqrt()[:, None] * s_vp  # eps_hat = -sqrt(1 - abar) s_VP
    assert torch.allclose(noise.eps_to_score(eps, SIG), sa * s_vp, rtol=1e-13)
    d = noise.vp_prediction_to_denoiser(eps, X, SIG, "eps")
    assert torch.allclose(d, X - SIG[:, None] * eps)
    with pytest.raises(ConfigError, match="unknown VP prediction"):
        noise.vp_prediction_to_denoiser(eps, X, SIG, "velocity")


def test_timestep_of_sigma_interpolates_log_sigma():
    ab = linear_alpha_bar(1000)
    ls = noise.vp_log_sigma(ab)
    s = ls.exp()
    t = noise.timestep_of_sigma(torch.stack([s[0], s[370], (s[370] * s[371]).sqrt(), s[999]]), ls)
    assert torch.allclose(t, torch.tensor([0.0, 370.0, 370.5, 999.0], dtype=torch.float64), atol=1e-9)
    assert noise.timestep_of_sigma(torch.tensor([1e-9, 1e9]), ls).tolist() == [0.0, 999.0]  # clamped


C2 = 0.3  # data N(m, C2 I)
M = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)


def _gaussian_vp_model(abar_of_t, prediction):
    """The exact VP model of N(M, C2 I) data: x_t ~ N(sqrt(ab) M, (ab C2 + 1 - ab) I)."""

    def fn(t, xt):
        ab = abar_of_t(t)[:, None]
        s_vp = -(xt - ab.sqrt() * M) / (ab * C2 + 1 - ab)
        if prediction == "score":
            return s_vp
        if prediction == "eps":
            return -(1 - ab).sqrt() * s_vp
        x0 = (xt + (1 - ab) * s_vp) / ab.sqrt()  # Tweedie
        return x0 if prediction == "x0" else (ab.sqrt() * xt - x0) / (1 - ab).sqrt()  # v

    return fn


def _exact_ve(x, sigma):
    return -(x - M) / (C2 + sigma[:, None] ** 2)


@pytest.mark.parametrize("prediction", ["eps", "score", "x0", "v"])
def test_from_vp_on_a_continuous_schedule_is_the_exact_ve_score(prediction):
    bd, bmin = 19.9, 0.1  # score_sde VPSDE: abar(t) = exp(-(beta_d t^2 / 2 + beta_min t))
    fn = _gaussian_vp_model(lambda t: torch.exp(-(0.5 * bd * t**2 + bmin * t)), prediction)
    field = FunctionScore.from_vp(fn, schedule=VPProcess(bd, bmin), prediction=prediction, dtype="float64")
    sig = torch.tensor([0.05, 0.3, 1.0, 4.0, 60.0], dtype=torch.float64)
    got = field.score(X, sig)
    assert torch.allclose(got, _exact_ve(X, sig), rtol=1e-10, atol=1e-10)
    ref = GaussianScore(M, C2 * torch.eye(3, dtype=torch.float64), dtype="float64", device="cpu")
    assert torch.allclose(got, ref.score(X, sig), rtol=1e-10, atol=1e-10)
    assert torch.allclose(field.denoise(X, sig), X + sig[:, None] ** 2 * _exact_ve(X, sig), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("prediction", ["eps", "score", "x0", "v"])
def test_from_vp_on_a_discrete_schedule_is_the_exact_ve_score(prediction):
    ab = linear_alpha_bar(1000)
    fn = _gaussian_vp_model(lambda t: ab[t.round().long()], prediction)  # integer steps only
    field = FunctionScore.from_vp(fn, alpha_bar=ab, prediction=prediction, dtype="float64")
    sig = noise.vp_sigma(ab[torch.tensor([0, 10, 370, 800, 999])])  # on the grid: t is an integer
    assert torch.allclose(field.score(X, sig), _exact_ve(X, sig), rtol=1e-10, atol=1e-10)


def test_from_vp_bad_options():
    f = lambda t, x: x  # noqa: E731
    with pytest.raises(ConfigError, match="exactly one"):
        FunctionScore.from_vp(f)
    with pytest.raises(ConfigError, match="exactly one"):
        FunctionScore.from_vp(f, alpha_bar=linear_alpha_bar(10), schedule=VPProcess())
    with pytest.raises(ConfigError, match="unknown prediction"):
        FunctionScore.from_vp(f, schedule=VPProcess(), prediction="noise")
    with pytest.raises(ConfigError, match="decrease strictly"):
        FunctionScore.from_vp(f, alpha_bar=torch.tensor([0.5, 0.9]))
    with pytest.raises(ConfigError, match="sigma_inv"):
        FunctionScore.from_vp(f, schedule=object())
    with pytest.raises(ConfigError, match="kind must be"):
        FunctionScore(f, kind="eps")
