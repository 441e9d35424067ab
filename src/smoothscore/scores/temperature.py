"""Temperature-smoothed exact scores (Paper B, Zhou et al. 2026, Sec. 4.2, Eq. 10).

Three forms, one name each:

* :func:`temperature_smoothed` — the conditioned ESF with logits divided by T,
  ``w = softmax_j(-|x - mu_j|^2 / (2 sigma^2 T))`` (``EmpiricalScore(train, temperature=T)``), or the
  noise-unconditional optimal-level score with ``w_j*(x; T) = softmax_j(f(x, mu_j, sigma_j*) / T)``
  (``UnconditionalEmpiricalScore(train, mode="optimal", temperature=T)``); ``T`` may be a schedule.
* :func:`sigma_schedule_temperature` — the paper's schedule ``T = max(c / sigma, 1)`` (``c = sigma_collapse``).
* :class:`KNNTemperatureScore` — (training set streamed from a :class:`~smoothscore.data.arrays.PointSet`: tensor,
  array, memmap or ``.npy`` path) the neighbour-restricted Eq. 10 form
  ``score_T(x) = sum_{j <= K} w*_(j)(x; T) (-(x - mu_(j)) / sigma*_(j)^2)`` over *given* neighbour indices
  (e.g. the K nearest training samples of the clean sample, as in training; or, at sampling time, of the query).
  It evaluates :func:`temperature_target` (one implementation of Eq. 10 for training
  targets and exact fields), variants ``"sigma_star"`` (adopted, Eq. 10 as written) and ``"scheduled"``
  (the authors' code).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._checks import check_k
from ..data.arrays import PointSet
from ..errors import ConfigError, ShapeError
from ..search.neighbors import NeighborIndex
from .base import ScoreField
from .empirical import EmpiricalScore
from .unconditional import UnconditionalEmpiricalScore

VARIANTS = ("sigma_star", "scheduled")


def temperature_target(
    x: torch.Tensor, neigh: torch.Tensor, sigma: torch.Tensor, T: torch.Tensor, variant: str = "sigma_star"
) -> torch.Tensor:
    """Eq. 10 target for noisy ``x`` (B, *dims), neighbour images ``neigh`` (B, K, *dims), levels and temperatures (B,).

    Computed in the wider of the two dtypes (float32 in training, float64 when either input is float64).
    Constants common to all K neighbours drop out of the softmax, so with
    ``r_j^2 = |x - mu_j|^2``: ``sigma_star`` uses logits ``-(d - 2) ln(r_j^2) / (2T)`` and components
    ``-(d - 2)(x - mu_j) / r_j^2``; ``scheduled`` uses logits ``-d ln(r_j^2) / (2T)`` and ``-(x - mu_j) / sigma_i^2``.
    The weighted sum is one batched matrix product (no (B, K, D) temporaries beyond the differences).
    """
    if variant not in VARIANTS:
        raise ConfigError(f"unknown temperature variant {variant!r}; known: {', '.join(VARIANTS)}")
    b, k = x.shape[0], neigh.shape[1]
    dt = torch.promote_types(x.dtype, neigh.dtype)
    diff = x.reshape(b, 1, -1).to(dt) - neigh.reshape(b, k, -1).to(dt)  # (B, K, D)
    d = diff.shape[-1]
    r2 = diff.square().sum(-1).clamp_min(1e-20)  # guard sigma* = 0 (x exactly on a neighbour)
    Tv = T.to(dt)[:, None]
    if variant == "sigma_star":
        if d <= 2:
            raise ConfigError("the optimal-level (sigma*) variant needs d > 2")
        w = torch.softmax(-(d - 2) * 0.5 * r2.log() / Tv, dim=1)
        coef = w * (d - 2) / r2  # w_j / sigma*_j^2
    else:
        w = torch.softmax(-(d * 0.5) * r2.log() / Tv, dim=1)
        coef = w / sigma.to(dt).square()[:, None]
    return -torch.bmm(coef[:, None, :], diff).reshape(x.shape).to(x.dtype)


def sigma_schedule_temperature(c: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """``T(sigma) = max(c / sigma, 1)`` (Eq. 11's schedule; the paper's ``T = c / sigma`` rows)."""
    if not c > 0:
        raise ConfigError(f"sigma_collapse c must be positive; got {c}")
    return lambda s: (c / torch.as_tensor(s)).clamp(min=1.0)


def temperature_smoothed(
    train, temperature: float | Callable = 1.0, *, conditioned: bool = True, k_neighbors: int | None = None, **kw
) -> ScoreField:
    """A temperature-smoothed exact score: the conditioned ESF (``conditioned=True``; a callable T receives the
    scheduled sigma) or the unconditional optimal-level score (``conditioned=False``; a callable T receives the
    query's own level ``sigma* = |x - mu_nn| / sqrt(d)``; ``k_neighbors`` restricts to the K nearest of x)."""
    if conditioned:
        if k_neighbors is not None:
            raise ConfigError("k_neighbors applies to the unconditional form; use KNNTemperatureScore")
        return EmpiricalScore(train, temperature=temperature, **kw)
    return UnconditionalEmpiricalScore(train, mode="optimal", temperature=temperature, k_neighbors=k_neighbors, **kw)


class KNNTemperatureScore(ScoreField):
    """Eq. 10 over given neighbour indices: ``score(x, sigma, neighbors=idx)`` with ``idx`` (N, K) long.

    ``temperature``: float or callable ``T(sigma)`` of the scheduled level (default schedule:
    :func:`sigma_schedule_temperature`). ``sigma`` is used for T (and for the ``"scheduled"`` variant's component
    scores). Without ``neighbors`` the K nearest training points of the query are used (``k`` of them)."""

    conditioned = True

    def __init__(
        self,
        train,
        temperature: float | Callable = 1.0,
        *,
        k: int | None = None,
        variant: str = "sigma_star",
        dtype="float32",
        device="auto",
    ):
        self._init_placement(dtype, device)
        # streamed store (tensor, array, memmap or .npy path): no float64 copy; neighbours gathered per call
        self.points = PointSet(train, dtype=torch.float64, device=self.device)
        self._source, self.data_shape = train, self.points.data_shape
        if variant not in VARIANTS:
            raise ConfigError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
        if not callable(temperature) and not float(temperature) > 0:
            raise ConfigError(f"temperature must be positive; got {temperature}")
        self.temperature, self.variant = temperature, variant
        # default K = 10 (or every point of a smaller set); an explicit K larger than the set is an error
        self.k = min(10, self.points.n) if k is None else check_k(k, self.points.n, "k", "the training set")
        self._index = None

    def neighbors(self, x) -> torch.Tensor:
        """Indices (N, k) of the k nearest training points of ``x`` (exact, FAISS + float64 refinement)."""
        if self._index is None:
            src = self._source
            self._index = NeighborIndex(src.detach().cpu() if isinstance(src, torch.Tensor) else src)
        return self._index.search(torch.as_tensor(x).detach().cpu(), self.k)[1].to(self.device)

    def score(self, x, sigma, neighbors=None) -> torch.Tensor:
        x, s = self.prepare(x, sigma)
        idx = self.neighbors(x) if neighbors is None else torch.as_tensor(neighbors, device=self.device).long()
        if idx.dim() != 2 or idx.shape[0] != x.shape[0]:
            raise ShapeError(f"neighbors must have shape ({x.shape[0]}, K); got {tuple(idx.shape)}")
        T = self.temperature(s) if callable(self.temperature) else torch.full_like(s, float(self.temperature))
        T = torch.as_tensor(T, dtype=torch.float64, device=self.device).expand(x.shape[0])
        nb = self.points.rows(idx, torch.float64, centred=False).reshape(*idx.shape, *self.data_shape)
        return temperature_target(x, nb, s, T, self.variant).to(self.dtype)
