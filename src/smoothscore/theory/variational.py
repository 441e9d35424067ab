"""Numerical check of Paper A, Proposition 1: the Smoothed PL-ESF is nearly the least non-smooth score of low loss.

Prop. 1: for ``eps in (0, 0.015)`` and ``kappa >= F^{-1}(eps)``, for small t the Smoothed PL-ESF with
``delta_t = kappa sqrt(t)`` has ``L_t < eps`` and ``R < (1 + 8 sqrt(eps)) r*_{t,eps}``, where
``r*_{t,eps} = min {R[f] : L_t[f] <= eps}``. (``F`` is the project's **adopted** form, see
:mod:`.smoothing_loss`; we take ``kappa = F^{-1}(eps)``, the smallest kappa the proposition allows.)

``r*`` is computed as a convex program (cvxpy, Clarabel) over piecewise-linear functions on a grid: windows of
``+- window * sqrt(t)`` around each training point (``p_t`` has mass ``< 1e-8`` elsewhere), joined linearly
across the gaps (which costs no R beyond the slope jumps at the grid nodes)::

    minimise   sum_i |slope_{i+1} - slope_i|                  (= R of the PL interpolant)
    subject to t sum_i w_i (f_i - s_t(x_i))^2 <= eps          (trapezoid weights w_i of p_t: L_t on the grid)

Variables are scaled by ``sqrt(t)`` so that the program is well conditioned at small t. The optimum's true
``L_t`` (Gauss quadrature of its PL interpolant) is reported beside it to show the discretisation error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .smoothing_dynamics import _time, geometry, mixture_pdf
from .smoothing_loss import F_inverse, esf_1d, loss_Lt, r_smoothed_pl, smoothed_pl_1d, smoothed_pl_breakpoints

__all__ = ["VariationalResult", "min_nonsmoothness", "prop1_check"]


@dataclass
class VariationalResult:
    """Solution of ``min R[f] s.t. L_t[f] <= eps`` on a grid."""

    eps: float
    t: float
    r_star: float  # optimal R (on the grid)
    x: np.ndarray  # grid
    f: np.ndarray  # optimal score values on the grid
    loss_grid: float  # L_t on the grid (the constraint, <= eps)
    loss_quadrature: float  # L_t of the PL interpolant by accurate quadrature
    status: str


def _grid(points, t: float, window: float, n_per_point: int) -> np.ndarray:
    g = geometry(points)
    if g.n > 1 and window * math.sqrt(t) >= g.h.min():
        raise ConfigError("windows around the points overlap: lower t or window")
    u = np.linspace(-window, window, n_per_point)
    return np.concatenate([yk + math.sqrt(t) * u for yk in g.y])


def min_nonsmoothness(
    eps: float, t: float, points=(-1.0, 1.0), *, window: float = 6.0, n_per_point: int = 401, solver: str = "CLARABEL"
) -> VariationalResult:
    """Solve ``r*_{t,eps} = min R[f] s.t. L_t[f] <= eps`` over PL functions on the grid (see module docstring)."""
    # lazy: cvxpy (slow to import) loads only when the variational problem is solved
    import cvxpy as cp

    if not eps > 0:
        raise ConfigError(f"eps must be positive; got {eps}")
    t = _time(t)
    x = _grid(points, t, window, n_per_point)
    sq = math.sqrt(t)
    target = sq * esf_1d(x, t, points)  # sqrt(t) s_t(x), O(1)
    dx = np.diff(x)
    w = np.zeros_like(x)
    w[:-1] += 0.5 * dx
    w[1:] += 0.5 * dx
    # the links across the gaps carry (almost) no p_t mass: drop them from the quadrature
    w *= mixture_pdf(x, t, points)
    gfun = cp.Variable(x.size)
    slopes = cp.multiply(1.0 / dx, gfun[1:] - gfun[:-1])
    r_scaled = cp.norm1(slopes[1:] - slopes[:-1])
    cons = [cp.sum_squares(cp.multiply(np.sqrt(w), gfun - target)) <= eps]
    prob = cp.Problem(cp.Minimize(r_scaled), cons)
    prob.solve(solver=solver)
    if gfun.value is None:
        raise ConfigError(f"variational problem not solved (status {prob.status})")
    f = gfun.value / sq
    loss_grid = float(np.sum(w * (gfun.value - target) ** 2))
    interp = lambda z: np.interp(z, x, f, left=np.nan, right=np.nan)  # noqa: E731

    def f_ext(z):  # linear extrapolation beyond the outer windows
        z = np.asarray(z, dtype=np.float64)
        out = interp(z)
        lo, hi = z < x[0], z > x[-1]
        out[lo] = f[0] + (z[lo] - x[0]) * (f[1] - f[0]) / (x[1] - x[0])
        out[hi] = f[-1] + (z[hi] - x[-1]) * (f[-1] - f[-2]) / (x[-1] - x[-2])
        return out

    loss_q = loss_Lt(f_ext, t, points, breakpoints=x)
    return VariationalResult(eps, t, float(prob.value) / sq, x, f, loss_grid, loss_q, str(prob.status))


def prop1_check(eps: float, t: float = 1e-4, points=(-1.0, 1.0), **kw) -> dict:
    """Compare the Smoothed PL-ESF with ``kappa = F^{-1}(eps)`` against ``r*``: returns a dict with ``kappa``,
    ``delta``, ``loss_spl`` (its L_t), ``r_spl`` (closed form), ``r_star``, ``ratio = r_spl / r_star``, ``bound =
    1 + 8 sqrt(eps)`` and the solver's diagnostics."""
    kappa = F_inverse(eps)
    delta = kappa * math.sqrt(t)
    loss_spl = loss_Lt(
        smoothed_pl_1d(points, t, kappa=kappa), t, points, breakpoints=smoothed_pl_breakpoints(points, delta)
    )
    r_spl = r_smoothed_pl(points, t, delta)
    res = min_nonsmoothness(eps, t, points, **kw)
    return {
        "eps": eps,
        "t": t,
        "kappa": kappa,
        "delta": delta,
        "loss_spl": loss_spl,
        "r_spl": r_spl,
        "r_star": res.r_star,
        "ratio": r_spl / res.r_star,
        "bound": 1.0 + 8.0 * math.sqrt(eps),
        "loss_star_grid": res.loss_grid,
        "loss_star_quadrature": res.loss_quadrature,
        "status": res.status,
        "result": res,
    }
