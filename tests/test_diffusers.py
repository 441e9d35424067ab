"""diffusers models as score fields: the VE conversion against hand computations and diffusers' own DDIM loop.

Tiny randomly initialised models are built in a temporary folder; nothing is downloaded.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")  # the `test` extra installs it; `make test` always runs these

import smoothscore as ss  # noqa: E402
from smoothscore.cli import main  # noqa: E402
from smoothscore.errors import CheckpointError, ConfigError, MissingDependencyError  # noqa: E402
from smoothscore.metrics import memorization_fraction  # noqa: E402
from smoothscore.metrics.expansiveness import expansiveness_profile  # noqa: E402
from smoothscore.sampling import sample  # noqa: E402


def tiny_unet(seed: int = 0, *, channels: int = 1, out_channels: int | None = None, size: int = 8, **kw):
    """A ~40k-parameter UNet2DModel whose time embedding keeps only its two slow frequencies (periods of ~600 and
    ~6000 timesteps): a smooth function of the noise level, so ODE solvers converge at the step counts used here."""
    torch.manual_seed(seed)
    unet = diffusers.UNet2DModel(
        sample_size=size,
        in_channels=channels,
        out_channels=out_channels or channels,
        layers_per_block=1,
        block_out_channels=(8, 16),
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        **kw,
    )
    if unet.config.time_embedding_type == "positional":
        with torch.no_grad():  # columns (cos, sin) of the frequencies 1 and 0.1 rad per timestep
            unet.time_embedding.linear_1.weight[:, [0, 1, 4, 5]] = 0
    return unet.eval()


def vp_sigma(sched, t) -> float:
    abar = float(sched.alphas_cumprod[t])
    return ((1 - abar) / abar) ** 0.5


@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v_prediction"])
def test_vp_denoiser_matches_hand_conversion(prediction):
    unet = tiny_unet(1).double()
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, prediction_type=prediction)
    field = ss.DiffusersScore(unet, sched, dtype="float64", device="cpu")
    assert field.kind == "vp" and field.data_shape == (1, 8, 8)
    x = 3.0 * torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    abar = sched.alphas_cumprod.double()
    # on a discrete step (t = 370) and half-way between two (log-sigma midpoint of 370 and 371 -> t = 370.5)
    for t_model, sigma in (
        (370.0, vp_sigma(sched, 370)),
        (370.5, (vp_sigma(sched, 370) * vp_sigma(sched, 371)) ** 0.5),
    ):
        assert float(field.sigma_to_timestep(torch.tensor([sigma], dtype=torch.float64))[0]) == pytest.approx(
            t_model, abs=1e-9
        )
        a = 1.0 / (1.0 + sigma**2)  # abar at this sigma (between the table's entries when t is fractional)
        if t_model == 370.0:
            assert a == pytest.approx(float(abar[370]), rel=1e-12)
        x_vp = a**0.5 * x
        with torch.no_grad():
            out = unet(x_vp, torch.full((3,), t_model, dtype=torch.float64)).sample
        eps = {
            "epsilon": out,
            "sample": (x_vp - a**0.5 * out) / (1 - a) ** 0.5,
            "v_prediction": a**0.5 * out + (1 - a) ** 0.5 * x_vp,
        }[prediction]
        with torch.no_grad():
            den = field.denoise(x, sigma)
            sc = field.score(x, torch.full((3,), sigma, dtype=torch.float64))
        torch.testing.assert_close(den, x - sigma * eps, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(sc, -eps / sigma, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v_prediction"])
def test_one_ddim_step_is_a_ve_euler_step(prediction):
    """diffusers' own conversion: a deterministic DDIM step t -> t' equals ``x + (sigma' - sigma) (x - D) / sigma``
    in VE coordinates (Karras et al. 2022, Sec. 4: DDIM is Euler on the VE probability-flow ODE)."""
    unet = tiny_unet(2).double()
    sched = diffusers.DDIMScheduler(num_train_timesteps=1000, prediction_type=prediction, clip_sample=False)
    sched.set_timesteps(5)  # timesteps 800, 600, ...: one step goes 600 -> 400
    field = ss.DiffusersScore(unet, sched, dtype="float64", device="cpu")
    x_vp = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        prev = sched.step(unet(x_vp, 600).sample, 600, x_vp, eta=0.0).prev_sample
        s, s2 = vp_sigma(sched, 600), vp_sigma(sched, 400)
        x = x_vp * (1 + s**2) ** 0.5
        ours = x + (s2 - s) * (x - field.denoise(x, s)) / s
    # DDIM takes sqrt(abar) of the scheduler's float32 table in float32: agreement to float32 round-off
    torch.testing.assert_close(ours / (1 + s2**2) ** 0.5, prev, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_edm_denoiser_matches_hand_preconditioning(prediction):
    unet = tiny_unet(4).double()
    sched = diffusers.EDMEulerScheduler(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, prediction_type=prediction)
    field = ss.DiffusersScore(unet, sched, dtype="float64", device="cpu")
    assert field.kind == "edm" and (field.sigma_min, field.sigma_max) == (0.002, 80.0)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    sd = 0.5
    for sigma in (0.05, 1.3, 20.0):
        c_in, c_skip = (sigma**2 + sd**2) ** -0.5, sd**2 / (sigma**2 + sd**2)
        c_out = (1 if prediction == "epsilon" else -1) * sigma * sd / (sigma**2 + sd**2) ** 0.5
        with torch.no_grad():
            f = unet(c_in * x, torch.full((2,), 0.25 * np.log(sigma), dtype=torch.float64)).sample
            torch.testing.assert_close(field.denoise(x, sigma), c_skip * x + c_out * f, rtol=1e-10, atol=1e-10)


def test_ve_score_model_output_is_the_score():
    unet = tiny_unet(6, time_embedding_type="fourier").double()
    sched = diffusers.ScoreSdeVeScheduler(sigma_min=0.01, sigma_max=50.0)
    field = ss.DiffusersScore(unet, sched, dtype="float64", device="cpu")
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    with torch.no_grad():
        want = unet(x, torch.full((2,), 0.7, dtype=torch.float64)).sample
        torch.testing.assert_close(field.score(x, 0.7), want)
        torch.testing.assert_close(field.denoise(x, 0.7), x + 0.49 * want)
    assert field.kind == "ve" and field.prediction_type == "score"


def test_heun_matches_the_diffusers_ddim_loop():
    """The same VP model sampled by diffusers' DDIM loop (eta = 0) and by the project's samplers on the same sigma
    grid (DDIM's timesteps mapped to sigma, then 0), from the same noise.

    - Euler on that grid *is* DDIM (see above): it agrees to float64 round-off (relative 1e-7).
    - DDIM is first order in the same ODE, Heun second order, so they differ by DDIM's discretisation error, which
      halves when the steps double. Its size is estimated from DDIM itself (Richardson: ``err_N ~ 2 |DDIM_N -
      DDIM_2N|``); the test asserts that Heun lies within 1.3x that estimate of DDIM_N (measured ratio 1.04), so
      a wrong conversion, which would not shrink with the step, fails it. At N = 50 the difference is ~1.4 % of the
      samples' RMS.
    """
    unet = tiny_unet(0).double()
    sched = diffusers.DDIMScheduler(
        num_train_timesteps=1000, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing"
    )
    field = ss.DiffusersScore(unet, sched, dtype="float64", device="cpu")
    x_t = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def ddim(n):
        sched.set_timesteps(n)
        x = x_t.clone()
        with torch.no_grad():
            for t in sched.timesteps:
                x = sched.step(unet(x, t).sample, t, x, eta=0.0).prev_sample
        return x, sched.timesteps.clone()

    def rms(a):
        return float(a.pow(2).mean().sqrt())

    d50, ts = ddim(50)
    d100, _ = ddim(100)
    sigmas = torch.cat([field.timestep_sigmas(ts), torch.zeros(1, dtype=torch.float64)])
    x0 = x_t * (1 + sigmas[0] ** 2) ** 0.5  # VP -> VE at the first level: x = x_vp / sqrt(abar)
    euler = sample(field, x0, sigmas, method="euler")
    heun = sample(field, x0, sigmas, method="heun")
    assert rms(euler - d50) < 1e-7 * rms(d50)
    err_est = 2 * rms(d50 - d100)
    assert 0.7 * err_est < rms(heun - d50) < 1.3 * err_est
    assert rms(heun - d50) < 0.03 * rms(d50)


@pytest.fixture
def saved_pipeline(tmp_path):
    unet = tiny_unet(8)
    sched = diffusers.DDPMScheduler(num_train_timesteps=200, prediction_type="v_prediction")
    diffusers.DDPMPipeline(unet=unet, scheduler=sched).save_pretrained(tmp_path / "pipe")
    unet.save_pretrained(tmp_path / "unet_only")
    sched.save_pretrained(tmp_path / "unet_only")
    return tmp_path, unet, sched


def test_from_pretrained_pipeline_and_model_folder(saved_pipeline):
    tmp_path, unet, sched = saved_pipeline
    ref = ss.DiffusersScore(unet, sched, device="cpu")
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        want = ref.score(x, 0.8)
        for sub in ("pipe", "unet_only"):
            f = ss.DiffusersScore.from_pretrained(tmp_path / sub, device="cpu")
            assert (f.kind, f.prediction_type, f.data_shape) == ("vp", "v_prediction", (1, 8, 8))
            torch.testing.assert_close(f.score(x, 0.8), want)
    assert (tmp_path / "pipe" / "unet" / "diffusion_pytorch_model.safetensors").exists()


def test_from_pretrained_bad_folders(tmp_path, saved_pipeline):
    with pytest.raises(CheckpointError, match="not a folder"):
        ss.DiffusersScore.from_pretrained(tmp_path / "missing")
    root = saved_pipeline[0]
    (root / "unet_only" / "scheduler_config.json").unlink()
    with pytest.raises(CheckpointError, match="scheduler_config.json"):
        ss.DiffusersScore.from_pretrained(root / "unet_only")
    cfg = json.loads((root / "pipe" / "scheduler" / "scheduler_config.json").read_text())
    cfg["_class_name"] = "os.system"
    (root / "pipe" / "scheduler" / "scheduler_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="not a diffusers"):
        ss.DiffusersScore.from_pretrained(root / "pipe")


def test_missing_diffusers_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # `import diffusers` now raises ImportError
    with pytest.raises(MissingDependencyError) as e:
        ss.DiffusersScore.from_pretrained("anything")
    assert "smoothscore[diffusers]" in str(e.value) and "\n" not in str(e.value)


def test_every_sampler_metric_and_expansiveness_takes_it():
    sched = diffusers.DDIMScheduler(num_train_timesteps=1000)
    field = ss.DiffusersScore(tiny_unet(10), sched, device="cpu")
    train = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    sigmas = ss.sigma_schedule("edm", 4, 0.05, 5.0)
    x0 = 5.0 * torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    for method in sorted(ss.sampling.samplers.names()):
        opts = {"train": train} if method == "sigma_star" else {}
        out = sample(field, x0, sigmas, method=method, generator=torch.Generator().manual_seed(2), **opts)
        assert out.shape == x0.shape and bool(torch.isfinite(out).all()), method
    assert 0.0 <= memorization_fraction(out, train) <= 1.0
    prof = expansiveness_profile(field, train, [0.5, 2.0], n_queries=2, iters=3)
    assert all(
        np.isfinite(prof[k]).all() and min(prof[k]) > 0
        for k in ("gamma_ex", "spectral_norm", "spectral_norm_switching")
    )


def test_cli_sample_diffusers(saved_pipeline, tmp_path, capsys):
    train = np.random.default_rng(0).uniform(-1, 1, (10, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "train.npy", train)
    out = tmp_path / "s"
    rc = main(
        [
            "sample",
            "--model",
            f"diffusers:{saved_pipeline[0] / 'pipe'}",
            "--data",
            str(tmp_path / "train.npy"),
            "--n",
            "4",
            "--steps",
            "4",
            "--out",
            str(out),
            "--quiet",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    audit = json.loads((out / "audit.json").read_text())
    assert audit["n"] == 4 and 0.0 <= audit["memorized_fraction"] <= 1.0
    assert np.load(out / "samples.npz")["samples"].shape == (4, 1, 8, 8)
    capsys.readouterr()
    assert main(["sample", "--model", f"diffusers:{saved_pipeline[0] / 'pipe'}", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--data" in err and len(err.splitlines()) == 1


def test_unsupported_scheduler_is_refused():
    with pytest.raises(ConfigError, match="not supported"):
        ss.DiffusersScore(tiny_unet(11), diffusers.FlowMatchEulerDiscreteScheduler(), device="cpu")


def test_forward_ad_fallback_switches_attention_once_and_other_errors_propagate():
    torch.manual_seed(11)
    unet = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(8, 16),
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
    ).eval()
    field = ss.DiffusersScore(unet, diffusers.DDIMScheduler(num_train_timesteps=1000), device="cpu")
    assert field._use_math_attention() is True  # wraps the attention processors ...
    assert field._use_math_attention() is False  # ... once
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    before = field.denoise(x, 1.0)

    def broken(*a, **k):
        raise NotImplementedError("not the attention kernel")

    field.model.forward = broken  # already switched: a NotImplementedError is another error and is not swallowed
    with pytest.raises(NotImplementedError, match="not the attention kernel"):
        field.denoise(x, 1.0)
    assert before.shape == x.shape and bool(torch.isfinite(before).all())
