"""Tests that kill the survivors of the full mutation runs (``mutation/run.py --modules M``: every mutant of module
M; the table and each survivor with its killing test are in docs/mutation.md, "Full runs"). Each asserts a value
or a contract computed independently of the line the mutant changed."""

import pytest
import torch

import smoothscore as ss
from smoothscore.errors import ConfigError
from smoothscore.sampling.predictor_corrector import langevin_corrector
from smoothscore.scores.closed_form import ClosedFormSmoothedScore
from smoothscore.scores.empirical import EmpiricalScore
from smoothscore.scores.neural import NeuralScore


class _Plain(torch.nn.Module):
    """A network without the ``conditioned`` / ``needs_sigma`` attributes: it takes (x, sigma)."""

    def forward(self, x, s):
        return -x / (1.0 + s.reshape(-1, 1) ** 2)


def test_neural_score_treats_a_model_without_attributes_as_noise_conditioned():
    f = NeuralScore(_Plain(), dtype="float64", device="cpu")
    assert f.conditioned is True and f.needs_sigma is True
    x = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)
    got = f.score(x, torch.tensor([0.5, 1.0], dtype=torch.float64))
    assert torch.allclose(got, torch.tensor([[-0.8, 1.6], [-0.25, 0.0]], dtype=torch.float64), atol=1e-15)


def test_neural_score_options_are_keyword_only():
    # data_shape, dtype and device (and from_checkpoint's ema) are keyword-only: a positional value is an error,
    # not silently taken as the data shape (or as ema)
    with pytest.raises(TypeError):
        NeuralScore(_Plain(), (2,))
    with pytest.raises(TypeError):
        NeuralScore.from_checkpoint("no-such-folder", False)


def test_closed_form_default_draws_are_16_of_seed_0_and_one_draw_is_allowed():
    # defaults: M = 16 draws of torch.randn from a generator seeded 0 (float64, then cast); M = 1 is a valid field
    # whose denoiser is the ESF at the one perturbed query x + s (1 + sigma) eps_1
    g = torch.Generator().manual_seed(3)
    train = torch.randn(5, 3, generator=g, dtype=torch.float64)
    f = ClosedFormSmoothedScore(train, 0.2, dtype="float64", device="cpu")
    want = torch.randn(16, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert f.n_draws == 16 and torch.equal(f.draws, want)
    one = ClosedFormSmoothedScore(train, 0.2, n_draws=1, seed=4, dtype="float64", device="cpu")
    eps = torch.randn(1, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    x = torch.randn(2, 3, generator=g, dtype=torch.float64)
    esf = EmpiricalScore(train, dtype="float64", device="cpu")
    assert torch.allclose(one.denoise(x, 0.5), esf.denoise(x + 0.2 * 1.5 * eps, 0.5), atol=1e-14)
    with pytest.raises(ConfigError):
        ClosedFormSmoothedScore(train, 0.2, n_draws=0)
    with pytest.raises(TypeError):
        ClosedFormSmoothedScore(train, 0.2, 16)


def _gaussian_field(c):
    return ss.GaussianScore(torch.zeros(2), c * torch.eye(2, dtype=torch.float64), dtype="float64", device="cpu")


def test_em_steps_by_hand_with_no_noise_on_the_step_to_zero_and_tweedie_denoised():
    # N(0, c I) data: score(x, s) = -x / (c + s^2); EM x' = x + v score + sqrt(v) z (v = s^2 - s'^2), no z when
    # s' = 0; the callback's denoised is Tweedie's x + s^2 score = x c / (c + s^2); one callback per step
    c, sig = 0.5, [2.0, 1.0, 0.5, 0.0]
    x0 = torch.tensor([[1.5, -0.5], [0.25, 2.0]], dtype=torch.float64)
    seen = []
    got = ss.sample(
        _gaussian_field(c), x0, sig, method="em", generator=torch.Generator().manual_seed(5), callback=seen.append
    )
    g = torch.Generator().manual_seed(5)
    x, dens = x0.clone(), []
    for s, t in zip(sig[:-1], sig[1:]):
        dens.append(x * c / (c + s * s))
        v = s * s - t * t
        x = x - v * x / (c + s * s)
        if t > 0:
            x = x + v**0.5 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    assert len(seen) == 3
    for rec, d in zip(seen, dens):
        assert torch.allclose(rec["denoised"], d, atol=1e-14)
    assert torch.allclose(got, x, atol=1e-14)
    assert torch.allclose(got, seen[-1]["denoised"], atol=1e-14)  # the last step lands on the denoiser


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_ode_samplers_take_every_step_down_to_zero(method):
    # PF-ODE d(x, s) = s x / (c + s^2) for N(0, c I) data; the last step to 0 is Euler and lands on x c / (c + s^2)
    c, sig = 0.5, [2.0, 1.0, 0.0]
    x0 = torch.tensor([[1.5, -0.5]], dtype=torch.float64)
    seen = []
    got = ss.sample(_gaussian_field(c), x0, sig, method=method, callback=seen.append)

    def d(x, s):
        return s * x / (c + s * s)

    x_pred = x0 - d(x0, 2.0)
    x1 = x_pred if method == "euler" else x0 - 0.5 * (d(x0, 2.0) + d(x_pred, 1.0))
    assert len(seen) == 2
    assert torch.allclose(got, x1 * c / (c + 1.0), atol=1e-14)


def test_pc_steps_by_hand_with_the_langevin_step_size_of_score_sde():
    # predictor: x + v score + sqrt(v) z; corrector at the new level: eps = 2 (snr mean|z| / mean|score|)^2,
    # x + eps score + sqrt(2 eps) z' (score_sde's LangevinCorrector); N(0, c I) data, score = -x / (c + s^2)
    c, snr, sig = 0.5, 0.16, [2.0, 1.0, 0.5]
    x0 = torch.tensor([[1.5, -0.5], [0.25, 2.0], [-1.0, 0.75]], dtype=torch.float64)
    got = ss.sample(_gaussian_field(c), x0, sig, method="pc", generator=torch.Generator().manual_seed(6), snr=snr)
    g = torch.Generator().manual_seed(6)
    x = x0.clone()
    for s, t in zip(sig[:-1], sig[1:]):
        v = s * s - t * t
        x = x - v * x / (c + s * s) + v**0.5 * torch.randn(x.shape, generator=g, dtype=torch.float64)
        score = -x / (c + t * t)
        z = torch.randn(x.shape, generator=g, dtype=torch.float64)
        eps = 2 * (snr * z.norm(dim=1).mean() / score.norm(dim=1).mean()) ** 2
        x = x + eps * score + (2 * eps) ** 0.5 * z
    assert torch.allclose(got, x, atol=1e-13)


def test_langevin_corrector_options_are_keyword_only():
    with pytest.raises(TypeError):
        langevin_corrector(_gaussian_field(0.5), torch.zeros(1, 2, dtype=torch.float64), 1.0, 0.16, 1)
