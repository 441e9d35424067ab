"""Piecewise-linear ESF (PL-ESF) and Smoothed PL-ESF of Paper A (Chen 2025) for points on a line.

Paper A, Sec. 3 (two points at +-1, noise variance ``t = sigma**2``):

* PL-ESF, the small-t limit of the ESF: ``sbar_t(x) = (sign(x) - x) / t``;
* Smoothed PL-ESF with smoothing width ``delta in (0, 1]``: ``-(x + 1)/t`` for ``x <= delta - 1``,
  ``-(x - 1)/t`` for ``x >= 1 - delta``, and ``(delta / (1 - delta)) x / t`` in between;
* the smoothing width shrinks with the noise: ``delta_t = kappa * sqrt(t) = kappa * sigma``.

**Adopted** generalisation to ``n`` sorted points ``y_1 < ... < y_n`` (the paper's general-n formulas were not
available; ``docs/paper-a.md``): for gap ``k`` with midpoint ``m_k`` and half-gap ``h_k``, where
``|x - m_k| < h_k - delta`` the score is the ramp ``(delta / (h_k - delta)) (x - m_k) / t``; everywhere else
(including the two outer half-lines) it equals the PL-ESF ``(y_nearest(x) - x) / t``. When ``delta >= h_k`` the
exact regions of both neighbours cover the gap, which keeps the PL-ESF there. For ``n = 2, h = 1`` this is the
two-point formula above.

In denoiser form (``denoise = x + t * score``) the 1-D map is ``y_nearest`` in the exact regions and
``m_k + (x - m_k) h_k / (h_k - delta)`` on the ramp, which is what :func:`smoothed_pl_denoise_1d` computes.

Embedding (Paper A, Sec. 5): with the points on the line ``R * e`` of ``R^D`` (``e`` a unit ``direction``), the
score is the 1-D one along ``e`` plus the exact normal part ``-x_perp / sigma^2`` of the Gaussian noise, i.e.
``denoise(x) = D_1d(x . e) e``.
"""

from __future__ import annotations

import math

import torch

from .._checks import as_tensor, bcast, check_finite
from ..errors import ConfigError, EmptyDataError, ShapeError
from .base import ScoreField

__all__ = ["SmoothedPLScore", "smoothed_pl_denoise_1d", "check_line_points"]


def check_line_points(points) -> torch.Tensor:
    """Validate 1-D positions on a line: finite, non-empty, pairwise distinct. Returns them sorted (float64, CPU).

    Raises :class:`~smoothscore.errors.ShapeError` for non-1-D input, :class:`EmptyDataError` for none,
    :class:`~smoothscore.errors.NonFiniteError` for NaN/Inf and :class:`ConfigError` for duplicates.
    """
    y = as_tensor(points, "points", dtype=torch.float64, device=torch.device("cpu"))
    if y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dim() != 1:
        raise ShapeError(f"points must be 1-D positions along the line, shape (n,); got {tuple(y.shape)}")
    if y.numel() == 0:
        raise EmptyDataError("points is empty")
    check_finite(y, "points")
    y = torch.sort(y).values
    if y.numel() > 1 and bool((torch.diff(y) <= 0).any()):
        raise ConfigError("points contain duplicates; the PL-ESF needs distinct positions")
    return y


def _nonneg(v, name: str) -> float | None:
    """None, or a finite float >= 0 (else :class:`ConfigError`)."""
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number; got {v!r}") from None
    if not (math.isfinite(f) and f >= 0):
        raise ConfigError(f"{name} must be a finite number >= 0; got {v!r}")
    return f


def smoothed_pl_denoise_1d(u: torch.Tensor, y: torch.Tensor, delta: torch.Tensor | None) -> torch.Tensor:
    """1-D denoiser of the (Smoothed) PL-ESF at positions ``u`` (N,), sorted points ``y`` (n,).

    ``delta`` is an (N,) tensor of absolute smoothing widths (``inf`` entries or ``None`` give the PL-ESF).
    Exact regions map to the nearest point; the ramp of gap k maps ``x -> m_k + (x - m_k) h_k / (h_k - delta)``.
    """
    n = y.numel()
    if n == 1:
        return y.expand_as(u).clone()
    k = (torch.searchsorted(y, u.contiguous()) - 1).clamp(0, n - 2)  # gap index (outer half-lines clipped)
    lo, hi = y[k], y[k + 1]
    m, h = 0.5 * (lo + hi), 0.5 * (hi - lo)
    out = torch.where(u < m, lo, hi)  # PL-ESF: nearest point
    if delta is None:
        return out
    off = u - m
    ramp = (off.abs() < h - delta) & (delta < h)  # open ramp region of gap k
    safe = torch.where(ramp, h - delta, torch.ones_like(h))
    return torch.where(ramp, m + off * h / safe, out)


class SmoothedPLScore(ScoreField):
    """PL-ESF / Smoothed PL-ESF of Paper A for ``n`` points on a line, optionally embedded in ``R^D``.

    Args:
        points: (n,) positions along the line (any spacing; sorted internally; must be distinct).
        kappa: smoothing constant, ``delta = kappa * sigma`` (Paper A's ``delta_t = kappa sqrt(t)``);
            ``None`` (and no ``delta``) gives the unsmoothed PL-ESF. ``kappa = 0`` freezes every gap.
        direction: unit vector (any non-zero vector, normalised; any shape ``dims``) of the line in ``R^D``.
            ``None`` = the 1-D problem, queries of shape ``(N, 1)`` (or ``(N,)``).
        delta: a fixed absolute smoothing width for every sigma (Paper A, Fig. 2); exclusive with ``kappa``.
        dtype, device: as everywhere (``"float32"`` default; ``"float64"`` for exact work).

    Attributes: ``points`` (sorted, float64 CPU), ``midpoints``, ``half_gaps``, ``direction`` (flattened unit
    vector or None), ``kappa``, ``delta``, ``data_shape``.
    """

    def __init__(
        self,
        points,
        kappa: float | None = None,
        direction=None,
        *,
        delta: float | None = None,
        dtype="float32",
        device="auto",
    ):
        self._init_placement(dtype, device)
        y = check_line_points(points)
        if kappa is not None and delta is not None:
            raise ConfigError("give either kappa (delta = kappa * sigma) or a fixed delta, not both")
        self.kappa = _nonneg(kappa, "kappa")
        self.delta = _nonneg(delta, "delta")
        self.points = y
        self.midpoints = 0.5 * (y[1:] + y[:-1])
        self.half_gaps = 0.5 * (y[1:] - y[:-1])
        self._y = y.to(dtype=self.dtype, device=self.device)
        if direction is None:
            self.direction = None
            self.data_shape = (1,)
        else:
            e = check_finite(as_tensor(direction, "direction", dtype=torch.float64), "direction")
            if e.numel() == 0:
                raise ShapeError("direction is empty")
            norm = float(e.norm())
            if norm == 0.0:
                raise ConfigError("direction must be a non-zero vector")
            self.data_shape = tuple(e.shape)
            self.direction = (e.reshape(-1) / norm).cpu()
            self._e = self.direction.to(dtype=self.dtype, device=self.device)

    @property
    def n_points(self) -> int:
        return int(self.points.numel())

    def delta_at(self, s: torch.Tensor) -> torch.Tensor | None:
        """Smoothing widths (N,) at noise levels ``s`` (N,): ``kappa * sigma``, the fixed delta, or None (PL-ESF)."""
        if self.kappa is not None:
            return self.kappa * s
        if self.delta is not None:
            return torch.full_like(s, self.delta)
        return None

    def along(self, x: torch.Tensor) -> torch.Tensor:
        """Position along the line, ``x . e`` (N,) (the first and only coordinate in 1-D)."""
        flat = x.reshape(x.shape[0], -1)
        return flat[:, 0] if self.direction is None else flat @ self._e

    def denoise(self, x, sigma) -> torch.Tensor:
        """``D(x) = D_1d(x . e) e``: Tweedie form of the Smoothed PL-ESF (normal score part ``-x_perp/sigma^2``)."""
        x, s = self.prepare(x, sigma)
        d1 = smoothed_pl_denoise_1d(self.along(x), self._y, self.delta_at(s))
        if self.direction is None:
            return d1.reshape(x.shape)
        return (d1[:, None] * self._e[None, :]).reshape(x.shape)

    def score(self, x, sigma) -> torch.Tensor:
        """``(D(x) - x) / sigma^2`` (Paper A, Sec. 3 formulas; adopted general-n form, see module docstring)."""
        x, s = self.prepare(x, sigma)
        return (self.denoise(x, s) - x) / bcast(s, x) ** 2

    def __repr__(self) -> str:
        smooth = (
            f"kappa={self.kappa}"
            if self.kappa is not None
            else (f"delta={self.delta}" if self.delta is not None else "PL-ESF")
        )
        return (
            f"SmoothedPLScore(n={self.n_points}, {smooth}, shape={self.data_shape}, dtype={self.dtype}, "
            f"device={self.device})"
        )
