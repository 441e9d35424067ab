"""Closed-form probability-flow dynamics of the Smoothed PL-ESF (Paper A, Sec. 4; general n **adopted**).

Time is Paper A's ``t = sigma**2``; the probability-flow ODE is ``dx/dt = -1/2 s_t(x)``, run backward from ``t0``.
With ``delta_t = kappa sqrt(t)`` every region below is invariant under the flow and the flow is explicit:

* exact region of point ``y_k`` (``|x - y_k| <= kappa sqrt t`` on the gap sides, whole outer half-lines):
  ``x_s = y_k + (x_t - y_k) sqrt(s / t)``  -> lands on ``y_k`` at s = 0 (memorisation);
* ramp of gap k (``|x - m_k| < h_k - kappa sqrt t``):
  ``x_s = m_k + (x_t - m_k) (h_k - kappa sqrt s) / (h_k - kappa sqrt t)``  -> ``m_k + (x - m_k) h_k / (h_k - delta_t)``
  at s = 0 (interpolation).

Two points at +-1 (``m = 0, h = 1``) give the paper's formulas; the phase diagram in the ``(x, sqrt t)`` plane has
straight-line trajectories and ramp boundaries ``x = m_k +- (h_k - kappa sqrt t)`` meeting at ``(m_k, h_k/kappa)``.
Pushforward of ``p_t0 = (1/n) sum_k N(y_k, t0)``: at ``s > 0`` a density (change of variables through the inverse
map, zero where the preimage lies in another region); at ``s = 0`` atoms at the points (``p_t0`` mass of each exact
region) plus ``c p_t0(m_k + c (x - m_k))``, ``c = (h_k - kappa sqrt t0)/h_k``, on each gap.
In ``R^D`` the normal coordinates decouple: ``x_perp(s) = x_perp(t0) sqrt(s / t0)`` (:func:`normal_flow`).

All functions are NumPy float64; ``kappa=None`` means the PL-ESF (no smoothing, every region exact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from ..errors import ConfigError, SigmaError
from ..scores.smoothed_pl import check_line_points

__all__ = [
    "LineGeometry",
    "geometry",
    "regions",
    "flow_map",
    "normal_flow",
    "ramp_boundaries",
    "ramp_apex",
    "mixture_pdf",
    "mixture_cdf",
    "pushforward_density",
    "atom_weights",
    "interpolating_mass",
    "endpoint_density",
]


@dataclass(frozen=True)
class LineGeometry:
    """Sorted points ``y`` (n,), gap midpoints ``m`` (n-1,) and half-gaps ``h`` (n-1,)."""

    y: np.ndarray
    m: np.ndarray
    h: np.ndarray

    @property
    def n(self) -> int:
        return int(self.y.size)


def geometry(points) -> LineGeometry:
    """Validate (distinct, finite) and sort the points; see :func:`smoothscore.scores.smoothed_pl.check_line_points`."""
    y = check_line_points(points).numpy()
    return LineGeometry(y, 0.5 * (y[1:] + y[:-1]), 0.5 * (y[1:] - y[:-1]))


def _kappa(kappa) -> float:
    if kappa is None:
        return math.inf
    if not (isinstance(kappa, (int, float)) and kappa >= 0 and not math.isnan(kappa)):
        raise ConfigError(f"kappa must be >= 0 (or None for the PL-ESF); got {kappa!r}")
    return float(kappa)


def _time(t, name="t", allow_zero=False) -> float:
    t = float(t)
    if not math.isfinite(t) or t < 0 or (t == 0 and not allow_zero):
        raise SigmaError(f"{name} must be {'>= 0' if allow_zero else 'positive'} and finite; got {t}")
    return t


def _delta(kappa: float, t: float) -> float:
    return math.inf if math.isinf(kappa) else kappa * math.sqrt(t)


def regions(x, t, points, kappa) -> np.ndarray:
    """Region labels at time ``t``: ``k`` in ``[0, n)`` = exact region of ``y_k``; ``n + k`` = ramp of gap ``k``."""
    g, x = geometry(points), np.asarray(x, dtype=np.float64)
    d = _delta(_kappa(kappa), _time(t, allow_zero=True))
    if g.n == 1:
        return np.zeros(x.shape, dtype=np.int64)
    k = np.clip(np.searchsorted(g.y, x) - 1, 0, g.n - 2)
    lab = np.where(x < g.m[k], k, k + 1)
    ramp = np.abs(x - g.m[k]) < g.h[k] - d
    return np.where(ramp, g.n + k, lab)


def _labelled(x, t, points, kappa):
    """``(geometry, x as float64, kappa, region labels at time t, mask of the exact regions)``: what the closed
    forms of the flow and its pushforward density start from (:func:`regions`)."""
    g, x = geometry(points), np.asarray(x, dtype=np.float64)
    kap = _kappa(kappa)
    lab = regions(x, t, points, kappa)
    return g, x, kap, lab, lab < g.n


def flow_map(x_t, t, s, points, kappa) -> np.ndarray:
    """Closed-form PF-ODE map ``x_t -> x_s`` for ``0 <= s <= t`` (regions are invariant, see module docstring)."""
    t, s = _time(t), _time(s, "s", allow_zero=True)
    if s > t:
        raise SigmaError(f"flow_map runs backward in time: need s <= t (got s={s}, t={t})")
    g, x, kap, lab, ex = _labelled(x_t, t, points, kappa)
    out = np.empty_like(x)
    yk = g.y[np.minimum(lab, g.n - 1)]
    out[ex] = (yk + (x - yk) * math.sqrt(s / t))[ex]
    if (~ex).any():
        k = lab[~ex] - g.n
        m, h = g.m[k], g.h[k]
        out[~ex] = m + (x[~ex] - m) * (h - kap * math.sqrt(s)) / (h - kap * math.sqrt(t))
    return out


def normal_flow(x_perp, t, s):
    """Normal coordinates under the PF-ODE with score ``-x_perp / t``: ``x_perp(s) = x_perp(t) sqrt(s/t)``."""
    return np.asarray(x_perp, dtype=np.float64) * math.sqrt(_time(s, "s", allow_zero=True) / _time(t))


def ramp_boundaries(points, kappa, sigma) -> tuple[np.ndarray, np.ndarray]:
    """Ramp boundaries ``m_k -+ (h_k - kappa sigma)`` (each (len(sigma), n-1); NaN where the ramp is empty)."""
    g, kap = geometry(points), _kappa(kappa)
    sig = np.atleast_1d(np.asarray(sigma, dtype=np.float64))[:, None]
    w = g.h[None, :] - kap * sig if math.isfinite(kap) else np.full((sig.shape[0], g.h.size), -1.0)
    w = np.where(w > 0, w, np.nan)
    return g.m[None, :] - w, g.m[None, :] + w


def ramp_apex(points, kappa) -> np.ndarray:
    """Noise std ``sigma = h_k / kappa`` at which the two boundaries of gap k meet (phase-diagram apex)."""
    g, kap = geometry(points), _kappa(kappa)
    with np.errstate(divide="ignore"):
        return g.h / kap if kap > 0 else np.full_like(g.h, np.inf)


def mixture_pdf(x, t, points) -> np.ndarray:
    """``p_t(x) = (1/n) sum_k N(x; y_k, t)`` (1-D, the noised empirical distribution)."""
    g, x = geometry(points), np.asarray(x, dtype=np.float64)
    return norm.pdf(x[..., None], g.y, math.sqrt(_time(t))).mean(-1)


def mixture_cdf(x, t, points) -> np.ndarray:
    """CDF of :func:`mixture_pdf`."""
    g, x = geometry(points), np.asarray(x, dtype=np.float64)
    return norm.cdf(x[..., None], g.y, math.sqrt(_time(t))).mean(-1)


def _exact_intervals(g: LineGeometry, d: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact region of each point at width ``d``: ``[y_k - min(d, h_{k-1}), y_k + min(d, h_k)]``; outer sides
    infinite."""
    lo = g.y - np.minimum(d, np.concatenate([[np.inf], g.h]))
    hi = g.y + np.minimum(d, np.concatenate([g.h, [np.inf]]))
    lo[0], hi[-1] = -np.inf, np.inf  # the outer half-lines are exact regions
    return lo, hi


def pushforward_density(x, s, t0, points, kappa) -> np.ndarray:
    """Density at time ``0 < s <= t0`` of samples drawn from ``p_t0`` and moved by :func:`flow_map`.

    Inverse map per region at time s; the density is zero where the preimage lies outside the region it must
    come from (possible only when ``kappa sqrt(t0) > h_k``: then no mass enters the ramp that opens later).
    """
    t0, s = _time(t0, "t0"), _time(s, "s")
    if s > t0:
        raise SigmaError(f"need s <= t0 (got s={s}, t0={t0})")
    g, x, kap, lab, ex = _labelled(x, s, points, kappa)
    out = np.zeros_like(x)
    if ex.any():
        k = lab[ex]
        z = g.y[k] + (x[ex] - g.y[k]) * math.sqrt(t0 / s)
        lo, hi = _exact_intervals(g, _delta(kap, t0))
        ok = (z >= lo[k]) & (z <= hi[k])
        out[ex] = np.where(ok, math.sqrt(t0 / s) * mixture_pdf(z, t0, g.y), 0.0)
    if (~ex).any():
        k = lab[~ex] - g.n
        h = g.h[k]
        c = (h - kap * math.sqrt(t0)) / (h - kap * math.sqrt(s))
        z = g.m[k] + (x[~ex] - g.m[k]) * np.maximum(c, 0.0)
        out[~ex] = np.where(c > 0, c * mixture_pdf(z, t0, g.y), 0.0)
    return out


def atom_weights(t0, points, kappa) -> np.ndarray:
    """Mass landing exactly on each point at ``s = 0``: the ``p_t0`` mass of its exact region at ``t0``.

    Two points at +-1: ``a_+- = Phi(kappa)/2 + Phi_bar(2/sqrt(t0) - kappa)/2`` (Paper A; reference R4).
    """
    g, t0 = geometry(points), _time(t0, "t0")
    lo, hi = _exact_intervals(g, _delta(_kappa(kappa), t0))
    return mixture_cdf(hi, t0, g.y) - mixture_cdf(lo, t0, g.y)


def interpolating_mass(t0, points, kappa) -> float:
    """``1 - sum_k a_k``: the share of samples that end strictly between training points."""
    return float(1.0 - atom_weights(t0, points, kappa).sum())


def endpoint_density(x, t0, points, kappa) -> np.ndarray:
    """Continuous part of the ``s = 0`` law: ``c p_t0(m_k + c (x - m_k))`` on gap k,
    ``c = (h_k - kappa sqrt t0)/h_k``."""
    g, x = geometry(points), np.asarray(x, dtype=np.float64)
    lab = regions(x, 0.0, points, kappa)
    out = np.zeros_like(x)
    kap, t0 = _kappa(kappa), _time(t0, "t0")
    gap = lab >= g.n
    if gap.any() and math.isfinite(kap):
        k = lab[gap] - g.n
        c = (g.h[k] - kap * math.sqrt(t0)) / g.h[k]
        z = g.m[k] + c * (x[gap] - g.m[k])
        out[gap] = np.where(c > 0, c * mixture_pdf(z, t0, g.y), 0.0)
    return out
