"""Probability-flow ODE samplers (VE): ``dx/dsigma = -sigma * score(x, sigma)``.

Euler is first order; Heun is EDM's Algorithm 1 (Karras et al. 2022) without churn: an Euler predictor and a
trapezoidal corrector, except on a final step to sigma = 0 where the derivative is undefined and Euler is used.
"""

from __future__ import annotations

from .base import samplers, to_d


def _euler_step(field, x, s, s_next):
    """One Euler step of the PF-ODE from ``s`` to ``s_next`` (EDM Alg. 1, "take Euler step from t_i to t_{i+1}"):
    ``(x + (s_next - s) d(x, s), d(x, s), denoised estimate at (x, s))``."""
    d, den = to_d(field, x, s)
    return x + (s_next - s) * d, d, den


@samplers.register("euler")
def euler(field, x, sigmas, *, generator=None, hook, **_):
    """x_{i+1} = x_i + (sigma_{i+1} - sigma_i) d(x_i, sigma_i)."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        x, _, den = _euler_step(field, x, s, s_next)
        hook(i, s, s_next, x, den)
    return x


@samplers.register("heun")
def heun(field, x, sigmas, *, generator=None, hook, **_):
    """EDM Alg. 1 (deterministic): Euler predictor, trapezoidal correction unless sigma_{i+1} = 0."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        x_pred, d, den = _euler_step(field, x, s, s_next)
        if s_next > 0:
            d_next, _ = to_d(field, x_pred, s_next)
            x = x + (s_next - s) * 0.5 * (d + d_next)
        else:
            x = x_pred
        hook(i, s, s_next, x, den)
    return x
