"""DDIM on the linear VP schedule, mapped onto VE sigmas, against a hand-written DDIM loop in VP form
(diffusers' DDIMScheduler.step as GoldDiff calls it: prediction_type="sample", clip_sample, set_alpha_to_one)."""

import numpy as np
import pytest
import torch

from smoothscore.errors import ConfigError
from smoothscore.noise import vp_to_ve
from smoothscore.sampling import sample
from smoothscore.sampling.ddim import ddim_sigmas, ddim_timesteps, linear_alpha_bar
from smoothscore.scores import EmpiricalScore


def _vp_ddim(denoise_ve, x_t, n_steps=10, clip=True):
    """VP DDIM loop written from the DDIM update (numpy float64 schedule)."""
    ab = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    ts = list(range(0, 1000, 1000 // n_steps))[::-1]
    x = x_t.clone()
    pred = None
    for t in ts:
        a = float(ab[t])
        a_prev = float(ab[t - 1000 // n_steps]) if t - 1000 // n_steps >= 0 else 1.0
        sig = np.sqrt((1 - a) / a)
        pred = denoise_ve(x / np.sqrt(a), sig)  # the denoiser sees x_VE = x_VP / sqrt(abar)
        eps = (x - np.sqrt(a) * pred) / np.sqrt(1 - a)
        x0 = pred.clamp(-1, 1) if clip else pred
        x = np.sqrt(a_prev) * x0 + np.sqrt(1 - a_prev) * eps
    return pred, x


def test_schedule_and_sigma_grid():
    ab = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    assert np.allclose(linear_alpha_bar().numpy(), ab, rtol=0, atol=1e-15)
    assert ddim_timesteps(10) == [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    s = ddim_sigmas(10).numpy()
    assert s[-1] == 0 and len(s) == 11
    assert np.allclose(s[:-1], [np.sqrt((1 - ab[t]) / ab[t]) for t in range(900, -1, -100)], rtol=1e-14, atol=0)
    assert abs(s[-2] - 0.01) < 1e-4 and 60 < s[0] < 61.5  # sigma(t=0) ~ sqrt(1e-4); sigma(t=900) ~ 60.8


@pytest.mark.parametrize("clip", [True, False])
def test_ve_ddim_equals_hand_written_vp_loop(clip):
    g = torch.Generator().manual_seed(0)
    train = torch.rand(20, 1, 4, 4, generator=g, dtype=torch.float64) * 2.4 - 1.2  # some pixels beyond +-1
    field = EmpiricalScore(train, dtype="float64", device="cpu")
    noise = torch.randn(6, 1, 4, 4, generator=g, dtype=torch.float64)

    def den(x, s):
        return field.denoise(x, torch.full((x.shape[0],), float(s), dtype=torch.float64))

    pred_last, x_vp_final = _vp_ddim(den, noise, clip=clip)
    sig = ddim_sigmas(10)
    out = sample(field, vp_to_ve(noise, float(sig[0])), sig, method="ddim", clip=1.0 if clip else None)
    want = pred_last.clamp(-1, 1) if clip else pred_last
    assert torch.allclose(out, want, atol=1e-10, rtol=0)
    assert torch.allclose(x_vp_final, want, atol=1e-10, rtol=0)  # abar = 1 at the end: x_VP = x0


def test_unclipped_ddim_is_euler():
    g = torch.Generator().manual_seed(1)
    field = EmpiricalScore(torch.randn(10, 3, dtype=torch.float64, generator=g), dtype="float64", device="cpu")
    x = torch.randn(4, 3, dtype=torch.float64, generator=g) * 5
    sig = ddim_sigmas(10)
    a = sample(field, x, sig, method="ddim", clip=None)
    b = sample(field, x, sig, method="euler")
    assert torch.allclose(a, b, atol=1e-12, rtol=0)


def test_bad_schedule():
    with pytest.raises(ConfigError):
        ddim_timesteps(0)
    with pytest.raises(ConfigError):
        linear_alpha_bar(1000, 0.5, 0.1)
