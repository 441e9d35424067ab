"""Noise-smoothed closed-form score of Scarvelis, Borde, Solomon, "Closed-form diffusion models" (TMLR 2025; read
from the third-party reimplementations kir0ul/CFDMs and kir0ul/closed-form-diffusion), in the project's convention.

Conversion. Their interpolant is ``z_t = t y + (1 - t) z_0`` (``z_0 ~ N(0, I)``, ``t`` from 0 = noise to 1 = data).
Dividing by t, ``z_t / t = y + ((1 - t) / t) z_0``: this is our VE variable ``x = y + sigma eps`` with

    x = z / t,        sigma = (1 - t) / t        (so 1 / t = 1 + sigma, t = 1 / (1 + sigma)).

Their unsmoothed closed-form barycentre ``sum_j softmax_j(-|z - t y_j|^2 / (2 (1 - t)^2)) y_j`` is therefore the ESF
denoiser ``D_ESF(x, sigma)`` (``|z - t y|^2 / (1 - t)^2 = |x - y|^2 / sigma^2``). Their smoothing averages the
barycentre over Gaussian perturbations ``z + s eps`` of the query with a *constant* ``s`` in z; in x this is
``x + s eps / t = x + s (1 + sigma) eps``, hence (**adopted**)

    D(x, sigma) = E_eps[ D_ESF(x + s (1 + sigma) eps, sigma) ],     score = (D - x) / sigma^2,

(a constant perturbation in x would be a different model). There is no closed form: Monte Carlo with M draws
``eps_1..eps_M`` fixed per field from its ``seed`` (the same for every call and every query, so the field is a
deterministic function of (x, sigma)). ``s = 0`` is the ESF exactly; ``s -> 0`` converges to it.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from .base import ScoreField
from .empirical import EmpiricalScore


class ClosedFormSmoothedScore(ScoreField):
    """Smoothed closed-form score of ``train`` (``(n, *dims)``). ``smoothing``: s >= 0 (in their z coordinates);
    ``n_draws``: M; ``seed``: the fixed draws; ``dtype`` / ``device`` as :class:`~smoothscore.EmpiricalScore`
    (which evaluates every perturbed query with its streamed log-sum-exp)."""

    def __init__(self, train, smoothing: float, *, n_draws: int = 16, seed: int = 0, dtype="float32", device="auto"):
        s = float(smoothing)
        if not (math.isfinite(s) and s >= 0):
            raise ConfigError(f"smoothing must be finite and non-negative; got {smoothing}")
        if int(n_draws) < 1:
            raise ConfigError(f"n_draws must be positive; got {n_draws}")
        self.esf = EmpiricalScore(train, dtype=dtype, device=device)
        self.dtype, self.device, self.data_shape = self.esf.dtype, self.esf.device, self.esf.data_shape
        self.smoothing, self.n_draws = s, int(n_draws)
        g = torch.Generator().manual_seed(int(seed))
        self.draws = torch.randn(self.n_draws, *self.data_shape, generator=g, dtype=torch.float64).to(
            device=self.device, dtype=self.dtype
        )

    def denoise(self, x, sigma) -> torch.Tensor:
        """``mean_m D_ESF(x + s (1 + sigma) eps_m, sigma)`` over the field's fixed draws, shape of ``x``."""
        x, s = self.prepare(x, sigma)
        if self.smoothing == 0:
            return self.esf.denoise(x, s)
        shape = (1, -1) + (1,) * (x.dim() - 1)
        scale = (self.smoothing * (1 + s)).reshape(shape)  # (1, N, 1, ...)
        xs = x[None] + scale * self.draws[:, None]  # (M, N, *dims)
        den = self.esf.denoise(xs.reshape(-1, *x.shape[1:]), s.repeat(self.n_draws))
        return den.reshape(self.n_draws, *x.shape).mean(0)

    def __repr__(self) -> str:
        return (
            f"ClosedFormSmoothedScore(n={self.esf.n_train}, smoothing={self.smoothing}, M={self.n_draws}, "
            f"shape={self.data_shape})"
        )
