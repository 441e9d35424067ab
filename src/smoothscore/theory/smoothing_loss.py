"""Score-matching loss ``L_t[f]``, the non-smoothness penalty ``R[f]`` and ``F(kappa)`` (Paper A, Sec. 3, Prop. 1).

* ``L_t[f] = t E_{x ~ p_t} |f(x) - s_t(x)|^2`` with ``p_t = (1/n) sum_k N(y_k, t)`` and ``s_t`` the exact ESF;
  computed per mixture component in the standardised variable ``x = y_k + sqrt(t) z`` by composite Gauss-Legendre
  quadrature split at the kinks of ``f`` (default), or by :func:`scipy.integrate.quad` (``method="quad"``).
* ``R[f] = int |f''(x)| dx``: for piecewise-linear functions the sum of absolute slope jumps. Two-point Smoothed
  PL-ESF: ``R = 2 / ((1 - delta) t)``; general n (adopted): ``sum_k 2 h_k / ((h_k - delta) t)``; infinite for the
  PL-ESF (a jump).
* **Adopted** ``F(kappa) = E[((|Z| - kappa)_+)^2] = 2[(1 + kappa^2) Phi_bar(kappa) - kappa phi(kappa)]``, derived from
  the main text: decreasing from ``F(0) = 1`` to 0, and ``L_t[Smoothed PL-ESF, delta = kappa sqrt t] -> F(kappa)/2``
  as ``t -> 0`` for two points (the paper's own normalisation of F was not available).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import torch
from scipy import integrate, optimize
from scipy.special import softmax
from scipy.stats import norm

from ..errors import ConfigError
from ..scores.smoothed_pl import smoothed_pl_denoise_1d
from .smoothing_dynamics import _time, geometry

__all__ = [
    "F",
    "F_inverse",
    "esf_1d",
    "smoothed_pl_1d",
    "smoothed_pl_breakpoints",
    "field_function",
    "loss_Lt",
    "r_smoothed_pl",
    "r_numeric",
]

_Z = 12.0  # standardised half-width of each mixture component (mass beyond: ~4e-33)
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(24)


def F(kappa):
    """Adopted ``F(kappa) = 2[(1 + kappa^2) Phi_bar(kappa) - kappa phi(kappa)] = E[((|Z| - kappa)_+)^2]``."""
    k = np.asarray(kappa, dtype=np.float64)
    if np.any(k < 0):
        raise ConfigError("F(kappa) needs kappa >= 0")
    out = 2.0 * ((1.0 + k * k) * norm.sf(k) - k * norm.pdf(k))
    return float(out) if out.ndim == 0 else out


def F_inverse(eps: float) -> float:
    """The ``kappa`` with ``F(kappa) = eps`` for ``0 < eps < 1`` (F is strictly decreasing)."""
    if not 0 < eps < 1:
        raise ConfigError(f"F_inverse needs 0 < eps < 1; got {eps}")
    return float(optimize.brentq(lambda k: F(k) - eps, 0.0, 40.0, xtol=1e-14))


def esf_1d(x, t, points) -> np.ndarray:
    """Exact 1-D ESF ``s_t(x) = (sum_k w_k y_k - x) / t``, ``w = softmax(-(x - y_k)^2 / (2t))`` (float64)."""
    g, x = geometry(points), np.asarray(x, dtype=np.float64)
    w = softmax(-((x[..., None] - g.y) ** 2) / (2.0 * t), axis=-1)
    return (w @ g.y - x) / t


def smoothed_pl_1d(points, t: float, *, kappa: float | None = None, delta: float | None = None) -> Callable:
    """NumPy callable ``x -> score`` of the (Smoothed) PL-ESF at time ``t`` (``delta = kappa sqrt t`` or fixed)."""
    if kappa is not None and delta is not None:
        raise ConfigError("give kappa or delta, not both")
    d = kappa * math.sqrt(t) if kappa is not None else delta
    y = torch.from_numpy(geometry(points).y)

    def f(x):
        u = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(-1)
        dd = None if d is None else torch.full_like(u, float(d))
        return ((smoothed_pl_denoise_1d(u, y, dd) - u) / t).numpy().reshape(np.shape(x))

    return f


def smoothed_pl_breakpoints(points, delta: float | None) -> np.ndarray:
    """Kinks/jumps of the (Smoothed) PL-ESF: ramp ends ``m_k +- (h_k - delta)`` or the midpoints (PL-ESF)."""
    g = geometry(points)
    if delta is None:
        return g.m.copy()
    w = g.h - delta
    return np.sort(np.concatenate([g.m[w <= 0], (g.m - w)[w > 0], (g.m + w)[w > 0]]))


def field_function(field, sigma: float, direction=None) -> Callable:
    """Wrap any 1-D score field (``score(x (N,1), sigma)``) as a NumPy callable in float64 output.

    With ``direction`` (unit vector of a line in R^D) the field is evaluated at ``u * direction`` and projected.
    """
    e = None if direction is None else torch.as_tensor(direction, dtype=torch.float64).reshape(-1)

    def f(x):
        u = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(-1, 1)
        with torch.no_grad():
            if e is None:
                out = field.score(u.to(torch.float64 if field.dtype == torch.float64 else torch.float32), sigma)
                return out.double().reshape(-1).cpu().numpy().reshape(np.shape(x))
            xx = (u * e[None, :]).to(field.dtype)
            out = field.score(xx, sigma).double().cpu()
            return (out @ e).numpy().reshape(np.shape(x))

    return f


def _gl_integrate(fn: Callable, cuts: np.ndarray) -> float:
    """Composite Gauss-Legendre over sorted ``cuts`` (each piece further split to width <= 0.5)."""
    pieces = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        m = max(1, int(math.ceil((b - a) / 0.5)))
        pieces.append(np.linspace(a, b, m + 1))
    edges = np.unique(np.concatenate(pieces))
    a, b = edges[:-1, None], edges[1:, None]
    z = 0.5 * (a + b) + 0.5 * (b - a) * _GL_NODES[None, :]
    vals = fn(z.ravel()).reshape(z.shape)
    return float((vals * _GL_WEIGHTS[None, :] * 0.5 * (b - a)).sum())


def loss_Lt(
    f: Callable, t: float, points, *, breakpoints: Iterable[float] | None = None, method: str = "gauss"
) -> float:
    """``L_t[f] = t E_{x~p_t} |f(x) - s_t(x)|^2`` (Paper A, Sec. 3) by quadrature over each mixture component.

    Args:
        f: NumPy-vectorised score function of x (1-D); see :func:`smoothed_pl_1d`, :func:`field_function`.
        t: noise variance; points: the training positions.
        breakpoints: positions where f has kinks or jumps (quadrature is split there; strongly recommended for
            piecewise-linear f).
        method: ``"gauss"`` (composite 24-point Gauss-Legendre, fast) or ``"quad"`` (scipy.integrate.quad).
    """
    t = _time(t)
    g = geometry(points)
    bps = np.asarray(sorted(breakpoints), dtype=np.float64) if breakpoints is not None else np.empty(0)
    sq = math.sqrt(t)
    total = 0.0
    for yk in g.y:

        def integrand(z, yk=yk):
            x = yk + sq * np.asarray(z, dtype=np.float64)
            return t * (np.asarray(f(x), dtype=np.float64) - esf_1d(x, t, g.y)) ** 2 * norm.pdf(z)

        zb = (bps - yk) / sq
        zb = zb[(zb > -_Z) & (zb < _Z)]
        cuts = np.unique(np.concatenate([[-_Z], zb, [_Z]]))
        if method == "gauss":
            total += _gl_integrate(integrand, cuts)
        elif method == "quad":
            val = 0.0
            for a, b in zip(cuts[:-1], cuts[1:]):
                val += integrate.quad(
                    lambda z: float(integrand(np.array([z]))[0]), a, b, limit=200, epsabs=1e-13, epsrel=1e-10
                )[0]
            total += val
        else:
            raise ConfigError(f"unknown quadrature method {method!r}; use 'gauss' or 'quad'")
    return total / g.n


def r_smoothed_pl(points, t: float, delta: float | None) -> float:
    """Closed-form ``R = int |f''|`` of the Smoothed PL-ESF: ``sum_k 2 h_k / ((h_k - delta) t)``; inf if any gap
    keeps the PL-ESF jump (``delta >= h_k`` or ``delta=None``). Two points at +-1: ``2 / ((1 - delta) t)``."""
    g, t = geometry(points), _time(t)
    if delta is None or np.any(delta >= g.h):
        return math.inf
    return float(np.sum(2.0 * g.h / ((g.h - delta) * t)))


def r_numeric(x, fx) -> float:
    """``R[f]`` of the piecewise-linear interpolant of samples ``(x, f(x))``: the sum of absolute slope jumps."""
    x, fx = np.asarray(x, dtype=np.float64), np.asarray(fx, dtype=np.float64)
    if x.ndim != 1 or x.shape != fx.shape or x.size < 3 or np.any(np.diff(x) <= 0):
        raise ConfigError("r_numeric needs increasing 1-D x (>= 3 values) and f(x) of the same shape")
    return float(np.abs(np.diff(np.diff(fx) / np.diff(x))).sum())
