"""Deterministic DDIM (Song et al. 2021, Eq. 12 with eta = 0) on a discrete VP schedule, run in the project's VE
convention; GoldDiff's sampling protocol (shangxinyi/GoldDiff, methods/base.py: diffusers' ``DDIMScheduler`` with
linear betas 1e-4..0.02, T = 1000, ``set_timesteps(10)``, ``prediction_type="sample"``, defaults otherwise).

VP <-> VE (:mod:`smoothscore.noise`: ``vp_sigma``, ``vp_to_ve``). ``x_VP = sqrt(abar) y + sqrt(1 - abar) eps`` is
``x_VE = x_VP / sqrt(abar) = y + sigma eps`` with ``sigma = sqrt((1 - abar) / abar)``, and the denoiser (posterior
mean of y) is the same function of either. A DDIM step ``x'_VP = sqrt(abar') x0 + sqrt(1 - abar') eps_hat``,
``eps_hat = (x_VP - sqrt(abar) x0) / sqrt(1 - abar)``, divided by ``sqrt(abar')`` is ``x'_VE = x0 + sigma' (x_VE -
x0) / sigma``: an Euler step of the VE probability-flow ODE from sigma to sigma'. diffusers' defaults that GoldDiff
inherits: ``timestep_spacing="leading"`` (timesteps ``900, 800, ..., 0`` for 10 steps), ``set_alpha_to_one=True``
(the step after t = 0 goes to abar = 1, sigma = 0), ``clip_sample=True`` (x0 clipped to [-1, 1] in the update,
``eps_hat`` from the unclipped x0). The protocol's final image is the last x0 prediction (at t = 0, sigma ~ 0.01),
which after GoldDiff's ``(x + 1) / 2`` clamp to [0, 1] equals the clipped x0 this sampler returns.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..noise import vp_sigma
from .base import samplers, to_d


def linear_alpha_bar(n_train_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """``alpha_bar_t = prod_{s <= t} (1 - beta_s)`` of the linear beta schedule (DDPM; float64, shape (T,))."""
    if int(n_train_steps) < 1 or not 0 < beta_start <= beta_end < 1:
        raise ConfigError("need T >= 1 and 0 < beta_start <= beta_end < 1")
    betas = torch.linspace(beta_start, beta_end, int(n_train_steps), dtype=torch.float64)
    return torch.cumprod(1 - betas, 0)


def ddim_timesteps(n_steps: int = 10, n_train_steps: int = 1000) -> list[int]:
    """diffusers' ``"leading"`` spacing: ``[(n - 1) r, ..., r, 0]`` with ``r = T // n``."""
    if not 1 <= int(n_steps) <= int(n_train_steps):
        raise ConfigError(f"n_steps must be in [1, T={n_train_steps}]; got {n_steps}")
    r = int(n_train_steps) // int(n_steps)
    return [i * r for i in reversed(range(int(n_steps)))]


def ddim_sigmas(n_steps: int = 10, n_train_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
    """The VE sigma grid of GoldDiff's DDIM (timesteps of :func:`ddim_timesteps`, then 0), float64."""
    ab = linear_alpha_bar(n_train_steps, beta_start, beta_end)
    t = torch.tensor(ddim_timesteps(n_steps, n_train_steps))
    return torch.cat([vp_sigma(ab[t]), torch.zeros(1, dtype=torch.float64)])


@samplers.register("ddim")
def ddim(field, x, sigmas, *, generator=None, hook, clip: float | None = 1.0, **_):
    """Deterministic DDIM in VE form: ``x' = c(D) + sigma' (x - D) / sigma`` with ``c`` the clip to
    ``[-clip, clip]`` (diffusers' ``clip_sample``; ``clip=None``: plain Euler). Returns ``c(D)`` at the last step
    when the grid ends at 0."""
    if clip is not None and not float(clip) > 0:
        raise ConfigError(f"clip must be positive or None; got {clip}")
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        _, den = to_d(field, x, s)
        x0 = den if clip is None else den.clamp(-float(clip), float(clip))
        x = x0 + (s_next / s) * (x - den)
        hook(i, s, s_next, x, den)
    return x
