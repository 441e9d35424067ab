"""Noise process and sigma schedules (pure functions, as in k-diffusion).

Convention (EDM, Karras et al. 2022): ``x = s(t) * (x0 + sigma(t) * eps)``. The library's scores are all written
for the variance-exploding form ``x = x0 + sigma * eps`` (``s = 1``); a scaled/VP process enters only through the
scale ``s(t)`` (see :class:`VPProcess`), never as a second score convention. Paper A's time is ``t = sigma**2``.

VP <-> VE (Song et al. 2021; Karras et al. 2022, Eq. 4 with ``s = sqrt(abar)``): the VP sample
``x_t = sqrt(abar) y + sqrt(1 - abar) eps`` is ``sqrt(abar)`` times the VE sample ``x = y + sigma eps`` at

    sigma^2 = (1 - abar) / abar,    x = x_t / sqrt(abar),    s_VE(x, sigma) = sqrt(abar) s_VP(x_t),
    s_VP = -eps_hat / sqrt(1 - abar),    so    s_VE = -eps_hat / sigma,

and the denoiser (posterior mean of ``y``) is the same function of either. ``sqrt(abar) = 1 / sqrt(1 + sigma^2)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import ConfigError, SigmaError
from .registry import Registry

schedules: Registry = Registry("sigma schedule")


def _sqrt(v):
    return math.sqrt(v) if isinstance(v, (int, float)) else torch.sqrt(v)


def _per_sample(sigma, x: torch.Tensor):
    """``sigma`` as a number, or as a tensor broadcast over the trailing dimensions of ``x``."""
    if isinstance(sigma, (int, float)):
        return float(sigma)
    return torch.as_tensor(sigma).reshape(-1, *([1] * (x.dim() - 1))).to(x.device, x.dtype)


def t_to_sigma(t):
    """Paper A's time (noise variance) -> noise standard deviation: ``sigma = sqrt(t)``."""
    return t**0.5 if not isinstance(t, torch.Tensor) else t.sqrt()


def sigma_to_t(sigma):
    """Noise standard deviation -> Paper A's time ``t = sigma**2``."""
    return sigma**2


def _check_range(n: int, sigma_min: float, sigma_max: float) -> None:
    if int(n) != n or n < 1:
        raise SigmaError(f"schedule length must be a positive integer; got {n}")
    for v, nm in ((sigma_min, "sigma_min"), (sigma_max, "sigma_max")):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise SigmaError(f"{nm} must be positive and finite; got {v}")
    if sigma_min > sigma_max:
        raise SigmaError(f"sigma_min ({sigma_min}) must not exceed sigma_max ({sigma_max})")


@schedules.register("edm")
def edm_schedule(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0, dtype=torch.float64) -> torch.Tensor:
    """EDM schedule (Karras et al. 2022, Eq. 5): ``(smax^(1/rho) + i/(n-1) (smin^(1/rho) - smax^(1/rho)))^rho``."""
    i = torch.arange(n, dtype=torch.float64)
    if n == 1:
        return torch.tensor([sigma_max], dtype=dtype)
    a, b = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return ((a + i / (n - 1) * (b - a)) ** rho).to(dtype)


@schedules.register("geometric")
def geometric_schedule(n: int, sigma_min: float, sigma_max: float, dtype=torch.float64) -> torch.Tensor:
    """Log-uniform (geometric) in sigma, equivalently uniform in ``log t``."""
    if n == 1:
        return torch.tensor([sigma_max], dtype=dtype)
    return torch.logspace(math.log10(sigma_max), math.log10(sigma_min), n, dtype=torch.float64).to(dtype)


schedules.register("log_t_uniform", geometric_schedule)


@schedules.register("sqrt_t_uniform")
def sqrt_t_uniform_schedule(n: int, sigma_min: float, sigma_max: float, dtype=torch.float64) -> torch.Tensor:
    """Uniform in ``sqrt(t) = sigma`` (linear in sigma): the natural grid of Paper A's phase diagram."""
    return torch.linspace(sigma_max, sigma_min, n, dtype=torch.float64).to(dtype)


@schedules.register("t_uniform")
def t_uniform_schedule(n: int, sigma_min: float, sigma_max: float, dtype=torch.float64) -> torch.Tensor:
    """Uniform in ``t = sigma**2``."""
    return torch.linspace(sigma_max**2, sigma_min**2, n, dtype=torch.float64).sqrt().to(dtype)


def sigma_schedule(
    kind: str, n: int, sigma_min: float, sigma_max: float, *, append_zero: bool = False, **kwargs
) -> torch.Tensor:
    """Decreasing 1-D tensor of ``n`` noise levels from ``sigma_max`` to ``sigma_min`` (float64).

    ``kind`` is a registered schedule name (``edm``, ``geometric``, ``log_t_uniform``, ``sqrt_t_uniform``,
    ``t_uniform``). ``append_zero`` adds a final 0 (samplers then finish with an Euler step to the denoiser).
    """
    fn = schedules.get(kind)
    _check_range(n, sigma_min, sigma_max)
    s = fn(int(n), float(sigma_min), float(sigma_max), **kwargs)
    if append_zero:
        s = torch.cat([s, s.new_zeros(1)])
    return s


def log_uniform_sigmas(
    n: int, sigma_min: float, sigma_max: float, *, generator=None, device=None, dtype=torch.float32
) -> torch.Tensor:
    """Draw ``n`` noise levels log-uniformly on ``[sigma_min, sigma_max]`` (training)."""
    _check_range(max(n, 1), sigma_min, sigma_max)
    u = torch.rand(
        n, generator=generator, device=device, dtype=torch.float64 if dtype == torch.float64 else torch.float32
    )
    return torch.exp(math.log(sigma_min) + u * (math.log(sigma_max) - math.log(sigma_min))).to(dtype)


@dataclass(frozen=True)
class VEProcess:
    """Variance exploding: ``s(t) = 1``, ``sigma(t) = sqrt(t)`` (Paper A's time)."""

    def sigma(self, t):
        return t_to_sigma(t)

    def scale(self, t):
        return 1.0 if not isinstance(t, torch.Tensor) else torch.ones_like(t)

    def sigma_inv(self, sigma):
        return sigma_to_t(sigma)


@dataclass(frozen=True)
class VPProcess:
    """Variance preserving (DDPM++/EDM Table 1): ``sigma(t) = sqrt(exp(b_d t^2/2 + b_min t) - 1)``,
    ``s(t) = 1 / sqrt(1 + sigma(t)^2)``. Scores are evaluated on ``x / s(t)`` at level ``sigma(t)``."""

    beta_d: float = 19.9
    beta_min: float = 0.1

    def sigma(self, t):
        t = torch.as_tensor(t, dtype=torch.float64)
        return torch.sqrt(torch.expm1(0.5 * self.beta_d * t**2 + self.beta_min * t))

    def scale(self, t):
        return 1.0 / torch.sqrt(1.0 + self.sigma(t) ** 2)

    def sigma_inv(self, sigma):
        sigma = torch.as_tensor(sigma, dtype=torch.float64)
        return (torch.sqrt(self.beta_min**2 + 2 * self.beta_d * torch.log1p(sigma**2)) - self.beta_min) / self.beta_d


# ---------------------------------------------------------------------------------------------------- VP <-> VE
VP_PREDICTIONS = {"eps": "eps", "epsilon": "eps", "x0": "x0", "sample": "x0", "v": "v", "v_prediction": "v"}


def vp_sigma(alpha_bar) -> torch.Tensor:
    """VE noise level of a VP level: ``sigma = sqrt((1 - abar) / abar)`` (float64 tensor)."""
    a = torch.as_tensor(alpha_bar, dtype=torch.float64)
    return torch.sqrt((1 - a) / a)


def vp_log_sigma(alpha_bar) -> torch.Tensor:
    """``log sigma = log((1 - abar) / abar) / 2`` (float64 tensor), the coordinate timesteps are interpolated in."""
    a = torch.as_tensor(alpha_bar, dtype=torch.float64)
    return 0.5 * torch.log((1 - a) / a)


def sigma_to_alpha_bar(sigma):
    """VP level of a VE noise level: ``abar = 1 / (1 + sigma^2)`` (numbers stay numbers)."""
    return 1.0 / (1.0 + sigma * sigma)


def vp_noise_std(sigma):
    """The VP noise standard deviation ``sqrt(1 - abar) = sigma / sqrt(1 + sigma^2)`` of a VE level."""
    return sigma / _sqrt(1.0 + sigma * sigma)


def vp_to_ve(x_vp: torch.Tensor, sigma) -> torch.Tensor:
    """VE sample of a VP one: ``x_VE = x_VP / sqrt(abar) = x_VP * sqrt(1 + sigma^2)`` (``sigma`` a number or one per
    sample)."""
    s = _per_sample(sigma, x_vp)
    return x_vp * (1 + s**2) ** 0.5


def ve_to_vp(x_ve: torch.Tensor, sigma) -> torch.Tensor:
    """VP sample of a VE one: ``x_VP = sqrt(abar) x_VE = x_VE / sqrt(1 + sigma^2)``."""
    s = _per_sample(sigma, x_ve)
    return x_ve / math.sqrt(1 + s**2) if isinstance(s, float) else x_ve * torch.rsqrt(1 + s**2)


def vp_score_to_ve(score_vp: torch.Tensor, sigma) -> torch.Tensor:
    """VE score of a VP score at the same point: ``s_VE(x, sigma) = sqrt(abar) s_VP(x_t)`` (chain rule through
    ``x_t = sqrt(abar) x``)."""
    return ve_to_vp(score_vp, sigma)


def ve_score_to_vp(score_ve: torch.Tensor, sigma) -> torch.Tensor:
    """VP score of a VE score: ``s_VP(x_t) = s_VE(x, sigma) / sqrt(abar)``."""
    return vp_to_ve(score_ve, sigma)


def eps_to_score(eps: torch.Tensor, sigma) -> torch.Tensor:
    """VE score of a noise prediction: ``s = -eps_hat / sigma`` (``= sqrt(abar) * (-eps_hat / sqrt(1 - abar))``)."""
    return -eps / _per_sample(sigma, eps)


def vp_prediction_to_denoiser(out: torch.Tensor, x_ve: torch.Tensor, sigma, prediction: str) -> torch.Tensor:
    """Posterior mean ``D(x, sigma)`` (VE) from a VP network output at ``x_t = x / sqrt(1 + sigma^2)``:
    ``eps``: ``x - sigma eps_hat``; ``x0``: ``x0_hat``; ``v`` (``x0 = sqrt(abar) x_t - sqrt(1 - abar) v``, Salimans &
    Ho 2022): ``x / (1 + sigma^2) - sigma / sqrt(1 + sigma^2) v_hat``. diffusers' names are accepted."""
    kind = VP_PREDICTIONS.get(prediction)
    if kind is None:
        raise ConfigError(f"unknown VP prediction {prediction!r}; known: {', '.join(VP_PREDICTIONS)}")
    s = _per_sample(sigma, x_ve)
    if kind == "eps":
        return x_ve - s * out
    if kind == "x0":
        return out
    scale = 1 / math.sqrt(1 + s**2) if isinstance(s, float) else torch.rsqrt(1 + s**2)  # sqrt(abar)
    return x_ve * scale**2 - s * scale * out


def timestep_of_sigma(sigma: torch.Tensor, log_sigmas: torch.Tensor) -> torch.Tensor:
    """Fractional timestep of VE levels on a discrete schedule with increasing ``log_sigmas[t]``: linear
    interpolation of ``log sigma`` between neighbouring steps, clamped to ``[0, T - 1]`` outside the table
    (diffusers' ``EulerDiscreteScheduler._sigma_to_t``). Float64."""
    tab = log_sigmas
    ls = torch.as_tensor(sigma).to(torch.float64).log().clamp(float(tab[0]), float(tab[-1]))
    hi = torch.searchsorted(tab, ls).clamp(1, len(tab) - 1)
    lo_v, hi_v = tab[hi - 1], tab[hi]
    return (hi - 1).to(torch.float64) + (ls - lo_v) / (hi_v - lo_v)
