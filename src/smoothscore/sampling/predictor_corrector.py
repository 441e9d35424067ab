"""Predictor-corrector sampler (Song et al. 2021, Alg. 2 for VE SDEs): a reverse-diffusion predictor step, then
``n_corrector`` Langevin corrector steps at the new level with step size ``eps = 2 (snr |z| / |score|)^2``,
the norms averaged over the batch as in score_sde's ``LangevinCorrector`` (per-sample norms make samples near a mode,
where ``|score|`` is small, take huge steps and inflate the variance).
Paper B's reference setting: snr 0.16 (32x32) / 0.17 (64x64), one corrector step.
``denoise_last=True`` replaces the final sample by the denoiser output at the last level (Tweedie)."""

from __future__ import annotations

import torch

from .base import randn_like, samplers, sigma_vec


def _mean_norm(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).norm(dim=1).mean()


def langevin_corrector(field, x, sigma: float, *, snr: float, n_steps: int, generator=None):
    """Langevin MCMC at fixed level ``sigma``: x <- x + eps score + sqrt(2 eps) z."""
    for _ in range(n_steps):
        score = field.score(x, sigma_vec(sigma, x)).to(x.dtype)
        z = randn_like(x, generator)
        eps = 2 * (snr * _mean_norm(z) / _mean_norm(score).clamp_min(1e-30)) ** 2
        x = x + eps * score + (2 * eps).sqrt() * z
    return x


@samplers.register("pc")
def predictor_corrector(
    field, x, sigmas, *, generator=None, hook, snr: float = 0.16, n_corrector: int = 1, denoise_last: bool = False, **_
):
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        v = s * s - s_next * s_next
        score = field.score(x, sigma_vec(s, x)).to(x.dtype)
        den = x + s * s * score
        x = x + v * score  # reverse-diffusion predictor
        if s_next > 0:
            x = x + v**0.5 * randn_like(x, generator)
            x = langevin_corrector(field, x, s_next, snr=snr, n_steps=n_corrector, generator=generator)
        hook(i, s, s_next, x, den)
    if denoise_last and sigmas[-1] > 0:
        s = sigmas[-1]
        x = x + s * s * field.score(x, sigma_vec(s, x)).to(x.dtype)
    return x
