"""diffusers adapter details against diffusers' own numbers (issue 18): the first C channels of a 2C-channel output
(learned variance), the continuous-timestep formula and the clamped discrete interpolation of
``EulerDiscreteScheduler``, safetensors-only loading and ``from_pretrained(dtype=)``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from test_diffusers import tiny_unet, vp_sigma  # noqa: E402

import smoothscore as ss  # noqa: E402
from smoothscore.errors import CheckpointError  # noqa: E402


def test_two_c_channel_output_keeps_the_first_half():
    unet = tiny_unet(3, channels=1, out_channels=2).double()
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, prediction_type="epsilon")
    field = ss.DiffusersScore(unet, sched, dtype="float64", device="cpu")
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    s = vp_sigma(sched, 370)
    with torch.no_grad():
        out = unet(x / (1 + s * s) ** 0.5, torch.tensor(370.0, dtype=torch.float64)).sample
        assert out.shape[1] == 2 and float((out[:, :1] - out[:, 1:]).abs().max()) > 1e-3  # the halves differ
        torch.testing.assert_close(field.denoise(x, s), x - s * out[:, :1], rtol=1e-9, atol=1e-9)


def _euler(**kw):
    return diffusers.EulerDiscreteScheduler(num_train_timesteps=1000, **kw)


def test_continuous_timesteps_match_the_scheduler():
    sched = _euler(prediction_type="v_prediction", timestep_type="continuous")
    sched.set_timesteps(12)
    field = ss.DiffusersScore(tiny_unet(0), sched, device="cpu")
    sig = sched.sigmas[:-1].double()
    torch.testing.assert_close(field.sigma_to_timestep(sig).double(), sched.timesteps.double(), rtol=0, atol=1e-5)


def test_discrete_timesteps_match_sigma_to_t_and_clamp():
    sched = _euler(prediction_type="epsilon")
    field = ss.DiffusersScore(tiny_unet(0), sched, device="cpu")
    log_sigmas = np.log(((1 - sched.alphas_cumprod.numpy()) / sched.alphas_cumprod.numpy()) ** 0.5)
    sig = np.array([0.02, 0.37, 1.0, 4.2, 60.0])
    ref = np.array([sched._sigma_to_t(np.array(s), log_sigmas) for s in sig], dtype=np.float64).ravel()
    got = field.sigma_to_timestep(torch.tensor(sig, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-3)
    # outside the trained range: the end steps, not an extrapolation
    lo, hi = field.sigma_min, field.sigma_max
    edge = field.sigma_to_timestep(torch.tensor([lo / 10, lo, hi, hi * 10], dtype=torch.float64))
    assert edge.tolist() == pytest.approx([0.0, 0.0, 999.0, 999.0], abs=1e-9)


@pytest.fixture
def saved(tmp_path):
    unet = tiny_unet(8)
    sched = diffusers.DDPMScheduler(num_train_timesteps=200, prediction_type="epsilon")
    unet.save_pretrained(tmp_path / "st")
    sched.save_pretrained(tmp_path / "st")
    unet.save_pretrained(tmp_path / "bin", safe_serialization=False)
    sched.save_pretrained(tmp_path / "bin")
    return tmp_path


def test_bin_only_folder_is_refused(saved):
    assert list((saved / "bin").glob("*.bin")) and not list((saved / "bin").glob("*.safetensors"))
    with pytest.raises(CheckpointError):
        ss.DiffusersScore.from_pretrained(saved / "bin", device="cpu")


def test_from_pretrained_takes_the_dtype(saved):
    f = ss.DiffusersScore.from_pretrained(saved / "st", dtype="float64", device="cpu")
    assert {p.dtype for p in f.model.parameters()} == {torch.float64}
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        assert f.score(x, 0.5).dtype == torch.float64
