"""Exact score of Gaussian data N(mean, cov) under VE noise — the linear baseline and the closed form used to test
samplers (reference-values.md R2).

With ``cov = U diag(lambda) U^T`` (full, or low rank: zero variance off the span of U):

    denoise(x; sigma) = mean + U diag(lambda / (lambda + sigma^2)) U^T (x - mean)       (Wiener filter)
    score(x; sigma)   = (denoise - x) / sigma^2
    PF-ODE flow:  x(sigma) = mean + U diag(sqrt((lambda + sigma^2) / (lambda + sigma_T^2))) U^T (x_T - mean)
                  + sqrt(sigma^2 / sigma_T^2) P_perp (x_T - mean)
"""

from __future__ import annotations

import math

import torch

from .._checks import as_tensor, check_finite
from ..errors import ConfigError, ShapeError
from .base import ScoreField


class GaussianScore(ScoreField):
    """Score field of ``N(mean, cov)`` data. Give ``cov`` (D, D) symmetric PSD, or ``eigvals`` (r,) with an orthonormal
    ``basis`` (D, r) for a low-rank covariance. ``x`` may have any trailing shape whose size is D."""

    def __init__(self, mean, cov=None, *, eigvals=None, basis=None, dtype="float32", device="auto"):
        self._init_placement(dtype, device)
        m = check_finite(as_tensor(mean, "mean", dtype=torch.float64, device=self.device), "mean")
        self.data_shape = tuple(m.shape) if m.dim() > 0 else (1,)
        m = m.reshape(-1)
        d = m.numel()
        if cov is not None:
            c = check_finite(as_tensor(cov, "cov", dtype=torch.float64, device=self.device), "cov")
            if c.shape != (d, d):
                raise ShapeError(f"cov must have shape ({d}, {d}); got {tuple(c.shape)}")
            if not torch.allclose(c, c.T, atol=1e-10 * max(1.0, float(c.abs().max()))):
                raise ConfigError("cov must be symmetric")
            lam, u = torch.linalg.eigh(c)
            if float(lam.min()) < -1e-9 * max(1.0, float(lam.abs().max())):
                raise ConfigError("cov must be positive semi-definite")
            lam = lam.clamp_min(0)
        else:
            if eigvals is None or basis is None:
                raise ConfigError("give cov, or eigvals and basis")
            lam = check_finite(as_tensor(eigvals, "eigvals", dtype=torch.float64, device=self.device), "eigvals")
            u = check_finite(as_tensor(basis, "basis", dtype=torch.float64, device=self.device), "basis")
            if u.dim() == 1:
                u = u[:, None]
            if u.shape != (d, lam.numel()):
                raise ShapeError(f"basis must have shape ({d}, {lam.numel()}); got {tuple(u.shape)}")
            if not torch.allclose(u.T @ u, torch.eye(u.shape[1], dtype=torch.float64, device=self.device), atol=1e-8):
                raise ConfigError("basis columns must be orthonormal")
            if bool((lam < 0).any()):
                raise ConfigError("eigvals must be non-negative")
        self.dim = d
        self.mean = m.to(self.dtype)
        self.eigvals = lam.to(self.dtype)
        self.basis = u.to(self.dtype)

    def _split(self, x):
        z = x.reshape(x.shape[0], -1) - self.mean
        coef = z @ self.basis  # (N, r)
        perp = z - coef @ self.basis.T  # component off the span (zero variance)
        return coef, perp

    def denoise(self, x, sigma):
        """Wiener filter ``mean + U diag(lambda/(lambda+sigma^2)) U^T (x - mean)``."""
        x, s = self.prepare(x, sigma)
        coef, _ = self._split(x)
        shrink = self.eigvals / (self.eigvals + (s * s)[:, None])
        return (self.mean + (coef * shrink) @ self.basis.T).reshape(x.shape)

    def log_prob(self, x, sigma):
        """``log N(x; mean, cov + sigma^2 I)``, shape (N,)."""
        x, s = self.prepare(x, sigma)
        coef, perp = self._split(x)
        var = self.eigvals + (s * s)[:, None]
        r = self.eigvals.numel()
        s2 = s * s
        quad = (coef**2 / var).sum(1) + (perp**2).sum(1) / s2
        logdet = torch.log(var).sum(1) + (self.dim - r) * torch.log(s2)
        return -0.5 * (quad + logdet + self.dim * math.log(2 * math.pi))

    def flow(self, x_T, sigma_T: float, sigma: float):
        """Exact probability-flow ODE solution from level ``sigma_T`` to ``sigma`` (reference-values.md R2)."""
        x_T, _ = self.prepare(x_T, sigma_T)
        coef, perp = self._split(x_T)
        ratio = torch.sqrt((self.eigvals + sigma**2) / (self.eigvals + sigma_T**2))
        out = self.mean + (coef * ratio) @ self.basis.T + perp * (sigma / sigma_T)
        return out.reshape(x_T.shape)

    def sample_data(self, n: int, generator=None):
        """Draw ``n`` clean samples (N, *data_shape)."""
        z = torch.randn(n, self.eigvals.numel(), generator=generator, dtype=self.dtype).to(self.device)
        return (self.mean + (z * self.eigvals.sqrt()) @ self.basis.T).reshape(n, *self.data_shape)
