"""Closed forms of Paper B's domination properties (Zhou et al. 2026, Sec. 3 and 4.1).

* mu-domination (Property 2, Eq. 6): for two centres at one level sigma the weight ratio is
  ``gamma_mu = exp(delta |mu_j - mu_l|^2 / sigma^2)``,
  ``delta = |x - mu_l| cos(angle(x, mu_l, mu_j)) / |mu_j - mu_l| - 1/2``.
  For the conditioned ESF at a common sigma this is an identity (expand ``|x - mu_j|^2`` around ``mu_l``); the paper
  applies it at the optimal level sigma*.
* sigma-domination (Property 1): for fixed x, mu_j the log-weight ``f(sigma) = -(d - 2) ln sigma - r^2 / (2 sigma^2)``
  peaks at ``sigma*^2 = r^2 / (d - 2)``; two adjacent levels a log-gap h apart with sigma* a fraction alpha of the way
  from the lower one weigh ``gamma_sigma = exp((d - 2) h^2 (1 - 2 alpha))`` (second-order expansion of f in log sigma;
  :func:`gamma_sigma_exact` gives the exact ratio).
* Shell geometry: ``x = mu + sigma z`` concentrates at ``|x - mu| ≈ sigma sqrt(d)`` with std ``≈ sigma / sqrt(2)``.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError


def _flat(t) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=torch.float64)
    return t.reshape(-1) if t.dim() <= 1 else t.reshape(t.shape[0], -1)


def sigma_star(x, mu, convention: str = "d-2") -> torch.Tensor:
    """Optimal level of centre ``mu`` for query ``x``: ``|x - mu| / sqrt(d - 2)`` (maximiser of f, the project's
    default) or ``|x - mu| / sqrt(d)`` (``convention="d"``, the paper's form). Batched over a leading axis."""
    diff = _flat(x) - _flat(mu)
    d = diff.shape[-1]
    denom = {"d-2": d - 2, "d": d}.get(convention)
    if denom is None or denom <= 0:
        raise ConfigError(f"convention must be 'd-2' or 'd' with a positive denominator; got {convention!r}, d={d}")
    return diff.norm(dim=-1) / math.sqrt(denom)


def level_log_weight(r2, sigma, d: int):
    """``f = -(d - 2) ln sigma - r^2 / (2 sigma^2)`` (log of ``sigma^2 N(x; mu, sigma^2 I)`` up to a constant)."""
    r2, sigma = torch.as_tensor(r2, dtype=torch.float64), torch.as_tensor(sigma, dtype=torch.float64)
    return -(d - 2) * torch.log(sigma) - r2 / (2 * sigma**2)


def mu_domination_delta(x, mu_j, mu_l) -> torch.Tensor:
    """``delta = |x - mu_l| cos(angle at mu_l between x and mu_j) / |mu_j - mu_l| - 1/2`` (Eq. 6)."""
    a, dj = _flat(x) - _flat(mu_l), _flat(mu_j) - _flat(mu_l)
    return (a * dj).sum(-1) / (dj * dj).sum(-1) - 0.5


def mu_domination_ratio(x, mu_j, mu_l, sigma) -> torch.Tensor:
    """``gamma_mu = exp(delta |mu_j - mu_l|^2 / sigma^2)`` (Eq. 6): predicted weight ratio w_j / w_l."""
    dj = _flat(mu_j) - _flat(mu_l)
    s = torch.as_tensor(sigma, dtype=torch.float64)
    return torch.exp(mu_domination_delta(x, mu_j, mu_l) * (dj * dj).sum(-1) / s**2)


def gamma_sigma(d: int, h: float, alpha: float) -> float:
    """Adjacent-level weight ratio ``exp((d - 2) h^2 (1 - 2 alpha))`` (Property 1; paper: alpha = 1/3 ... e^6)."""
    if not 0 <= alpha <= 1:
        raise ConfigError(f"alpha must lie in [0, 1]; got {alpha}")
    return math.exp((d - 2) * h * h * (1 - 2 * alpha))


def gamma_sigma_exact(r: float, sigma_lo: float, sigma_hi: float, d: int) -> float:
    """Exact ratio ``exp(f(sigma_lo) - f(sigma_hi))`` of two levels' weights for a centre at distance r."""
    return float(torch.exp(level_log_weight(r * r, sigma_lo, d) - level_log_weight(r * r, sigma_hi, d)))


def shell_radius(sigma, d: int, exact: bool = False):
    """Typical ``|sigma z|`` for ``z ~ N(0, I_d)``: ``sigma sqrt(d)``, or the exact chi mean
    ``sigma sqrt(2) Gamma((d+1)/2) / Gamma(d/2)``."""
    if not exact:
        return sigma * math.sqrt(d)
    return sigma * math.sqrt(2) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))


def shell_thickness(sigma, d: int, exact: bool = False):
    """Standard deviation of ``|sigma z|``: ``sigma / sqrt(2)`` asymptotically, or exactly
    ``sigma sqrt(d - (chi mean)^2)``."""
    if not exact:
        return sigma / math.sqrt(2)
    m = shell_radius(1.0, d, exact=True)
    return sigma * math.sqrt(max(d - m * m, 0.0))


def top_weights(weights: torch.Tensor, k: int = 2) -> torch.Tensor:
    """Sorted top-k softmax weights per row ``(N, k)`` (diagnostic for mu-domination)."""
    return torch.topk(weights, k, dim=1).values
