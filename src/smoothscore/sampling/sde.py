"""Reverse-time SDE sampler (VE), Euler-Maruyama discretisation (Song et al. 2021, reverse diffusion):

    x_{i+1} = x_i + (sigma_i^2 - sigma_{i+1}^2) score(x_i, sigma_i) + sqrt(sigma_i^2 - sigma_{i+1}^2) z.

On a final step to sigma = 0 no noise is added (the step then lands on the denoiser, Tweedie).
"""

from __future__ import annotations

from .base import randn_like, samplers, sigma_vec


@samplers.register("em")
def euler_maruyama(field, x, sigmas, *, generator=None, hook, **_):
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        v = s * s - s_next * s_next
        score = field.score(x, sigma_vec(s, x)).to(x.dtype)
        den = x + s * s * score
        x = x + v * score
        if s_next > 0:
            x = x + v**0.5 * randn_like(x, generator)
        hook(i, s, s_next, x, den)
    return x
