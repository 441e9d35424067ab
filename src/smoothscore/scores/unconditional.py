"""Noise-unconditional empirical scores (Paper B, Zhou et al. 2026, Sec. 4.1 and 4.2).

The *unified mixture* over all noise levels (adopted from the paper's Eq. 5 and its notes):

    p_MN(x) ∝ sum_j sum_i lambda(sigma_i) q_i N(x; mu_j, sigma_i^2 I),     lambda(sigma) = sigma^2 (default)

with ``q_i`` quadrature weights: ``q_i = 1`` for a discrete set of levels ``sigmas``; for a continuous log-uniform
range ``[sigma_min, sigma_max]`` (``sigmas=None``) the integral over ``log sigma`` is evaluated by **composite
Gauss-Legendre quadrature in log sigma** (adopted): panels of width ``1 / sqrt(2 (d - 2))`` — the width of the peak of
``f(log sigma)`` below — with ``quad_points`` nodes each (4 by default; error < 1e-6 relative in the tests).

With ``lambda = sigma^2`` the log-weight of (centre j, level i) is
``f(x, mu_j, sigma_i) = -(d - 2) ln sigma_i - |x - mu_j|^2 / (2 sigma_i^2)`` and the exact score is

    s(x) = sum_{i,j} w_ij (mu_j - x) / sigma_i^2,     w = softmax_{ij}(f_ij / T).

``mode="optimal"`` keeps only each centre's optimal level (Eq. 5; Property 1, sigma-domination):
``sigma_j*^2 = |x - mu_j|^2 / (d - 2)`` (the maximiser of f; the paper's ``|x - mu|/sqrt(d)`` differs by O(1/d)),
so ``w_j* = softmax_j(f(x, mu_j, sigma_j*) / T) = softmax_j(-(d - 2) ln|x - mu_j| / T)`` and
``s(x) = -sum_j w_j* (x - mu_j) / sigma_j*^2``. ``T = 1`` is Eq. 5; ``T > 1`` is temperature smoothing
(Eq. 10 weights); ``k_neighbors=K`` restricts the sums to the K nearest training points of x (the
neighbour-restricted form of Eq. 10, here with neighbours of the query since no clean sample is known at
sampling time). ``temperature`` may be a callable ``T(sigma_nn)`` of the query's own noise level
``sigma_nn = |x - mu_nn| / sqrt(d)`` (e.g. ``lambda s: (c / s).clamp(min=1)``, the schedule ``T = max(c/sigma, 1)``).

Both forms are the gradient of a potential, ``T * LSE_j g_j(x)`` (for the optimal level by the envelope theorem),
returned by :meth:`log_prob` (normalised ``log p_MN`` when ``mode="exact"`` and T = 1).

Numerics: squared distances by the centred GEMM form in float64 (``|x - mu|`` reaches ~1e-6 of the data scale in the
sigma* sampler, where float32 GEMM distances are pure rounding); a query block holds ``q x M`` distances and the
levels are streamed over centre chunks so that at most ``block_elements`` (query, centre, level) logits exist at
once. ``sigma* = 0`` (a query exactly on a training point) is guarded by ``sigma_floor``.
The field ignores sigma (``conditioned = False``).

Scale: the training set is a streamed :class:`~smoothscore.data.arrays.PointSet` (tensor, array,
memmap or ``.npy`` path; float64 distances per chunk, no float64 copy of the set) and the per-centre log-weights
enter an online log-sum-exp over chunks. ``tolerance=`` certifies neighbour truncation: every per-centre weight
``exp(g(r^2) / T)`` is non-increasing in ``r^2`` (exact mode: a log-sum of decreasing Gaussian terms; optimal mode:
``~ r^{-(d-2)/T}``, a polynomial tail), so the dropped mass is at most ``(M - K) exp(g(tau) / T)`` with ``tau`` the
certified lower bound on the dropped distances; the score error is then at most
``delta (b_max (|x - c| + R) + |s_K|)`` with ``b_max`` the largest inverse variance (``1/sigma_min^2``, or
``1/sigma_floor^2`` in optimal mode) — see :mod:`smoothscore.scores.truncation`. ``shard=`` as for
:class:`~smoothscore.scores.empirical.EmpiricalScore` (not with ``k_neighbors`` or ``tolerance``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from .._checks import check_k
from ..data.arrays import PointSet
from ..errors import ConfigError, SigmaError
from ..search.lower_bound_index import check_kind
from . import sharding
from .base import ScoreField
from .empirical import DEFAULT_BLOCK_ELEMENTS, check_temperature, check_tolerance
from .truncation import NeighbourTruncation, check_policy

_WEIGHTINGS = {"sigma2": lambda s: 2.0 * np.log(s), "uniform": lambda s: np.zeros_like(s)}


def log_quadrature(sigma_min: float, sigma_max: float, d: int, points: int = 4, panel_width: float | None = None):
    """Composite Gauss-Legendre nodes/weights in ``log sigma`` on ``[log sigma_min, log sigma_max]``.

    Returns ``(sigmas, log_weights)`` (float64 numpy). Default panel width ``1/sqrt(2 (d-2))``: the standard
    deviation of the sigma-domination peak of ``f`` in log sigma."""
    if not (0 < sigma_min < sigma_max and math.isfinite(sigma_max)):
        raise ConfigError(f"need 0 < sigma_min < sigma_max; got {sigma_min}, {sigma_max}")
    a, b = math.log(sigma_min), math.log(sigma_max)
    width = panel_width or 1.0 / math.sqrt(2.0 * max(d - 2, 1))
    n_panels = max(1, math.ceil((b - a) / width))
    edges = np.linspace(a, b, n_panels + 1)
    t, w = np.polynomial.legendre.leggauss(int(points))
    half = 0.5 * np.diff(edges)[:, None]
    nodes = (0.5 * (edges[:-1] + edges[1:]))[:, None] + half * t[None]
    weights = half * w[None]
    return np.exp(nodes.ravel()), np.log(weights.ravel())


class UnconditionalEmpiricalScore(ScoreField):
    """Exact score of p_MN (``mode="exact"``) or its optimal-level approximation (``mode="optimal"``, Eq. 5), with
    temperature smoothing (Eq. 10 weights) and an optional neighbour restriction. Sigma is ignored.

    Args:
        train: training points ``(M, *dims)``.
        sigmas: discrete levels (e.g. 1000 log-uniform levels), or None for the continuous log-uniform range
            ``[sigma_min, sigma_max]`` (composite Gauss-Legendre in log sigma, see module doc).
        weighting: mixture weights lambda(sigma): ``"sigma2"`` (paper), ``"uniform"``, or a callable returning
            ``log lambda(sigma)`` for a float64 numpy array.
        mode: ``"exact"`` (sum over all levels) or ``"optimal"`` (Eq. 5).
        temperature: T > 0 dividing the log-weights, or callable ``T(sigma_nn)`` (per query, tensor in/out).
        k_neighbors: restrict to the K nearest training points of each query (None: all).
        clip_sigma_star: (optimal mode) clamp sigma* into ``[sigma_min, sigma_max]``.
        sigma_floor: lower bound on sigma* (guards queries exactly on a training point).
        tolerance: None (exact) or the largest certified score error of neighbour truncation (``last_certificate``).
        truncation_index: ``"auto"``, ``"flat"`` or ``"ivf"``: candidate search of the truncation (as
            :class:`~smoothscore.scores.empirical.EmpiricalScore`).
        truncation_policy: ``"auto"`` (default, as :class:`~smoothscore.scores.empirical.EmpiricalScore`: per call,
            truncate only where a timed pilot beats the exact streamed kernel; :mod:`smoothscore.scores.truncation`)
            or ``"always"`` (every call truncated). Either way ``last_certificate`` bounds the error.
        shard: None (split across an initialised ``torch.distributed`` group), False, or ``(rank, world)``.
    """

    conditioned = False

    def __init__(
        self,
        train,
        sigmas=None,
        weighting: str | Callable = "sigma2",
        *,
        mode: str = "exact",
        sigma_min: float = 0.01,
        sigma_max: float = 50.0,
        temperature: float | Callable = 1.0,
        k_neighbors: int | None = None,
        clip_sigma_star: bool = False,
        quad_points: int = 4,
        sigma_floor: float = 1e-6,
        dtype="float32",
        device="auto",
        block_elements: int = DEFAULT_BLOCK_ELEMENTS,
        tolerance: float | None = None,
        shard=None,
        truncation_index: str = "auto",
        truncation_policy: str = "auto",
    ):
        self._init_placement(dtype, device)
        self.truncation_index = check_kind(truncation_index)
        self.truncation_policy = check_policy(truncation_policy)
        local_only = k_neighbors is not None or tolerance is not None
        if local_only and shard not in (None, False):
            raise ConfigError("k_neighbors / tolerance are not combined with sharding; use shard=False")
        self.shard, self._group = sharding.resolve_shard(False if local_only else shard)
        self.tolerance = check_tolerance(tolerance, None)
        self.points = PointSet(train, dtype=torch.float64, device=self.device, shard=self.shard, group=self._group)
        self.data_shape, self.n_train = self.points.data_shape, self.points.n_total
        self.dim = d = self.points.dim
        if mode not in ("exact", "optimal"):
            raise ConfigError(f"mode must be 'exact' or 'optimal'; got {mode!r}")
        if mode == "optimal" and d <= 2:
            raise ConfigError("the optimal-level score needs d > 2")
        self.mode = mode
        self.temperature = check_temperature(temperature)
        self.k_neighbors = (
            None if k_neighbors is None else check_k(k_neighbors, self.n_train, "k_neighbors", "the training set")
        )
        if block_elements < 1 or sigma_floor <= 0:
            raise ConfigError("block_elements and sigma_floor must be positive")
        self.block_elements, self.sigma_floor, self.clip = int(block_elements), float(sigma_floor), clip_sigma_star
        logw_fn = _WEIGHTINGS.get(weighting) if isinstance(weighting, str) else weighting
        if logw_fn is None:
            raise ConfigError(f"unknown weighting {weighting!r}; known: {sorted(_WEIGHTINGS)} or a callable")
        if sigmas is None:
            if not (0 < sigma_min < sigma_max):
                raise ConfigError(f"need 0 < sigma_min < sigma_max; got {sigma_min}, {sigma_max}")
            lv, lq = log_quadrature(sigma_min, sigma_max, d, quad_points)
        else:
            lv = np.asarray(torch.as_tensor(sigmas, dtype=torch.float64).flatten().cpu(), dtype=np.float64)
            if lv.size == 0 or not np.all(np.isfinite(lv)) or np.any(lv <= 0):
                raise SigmaError("sigmas must be a non-empty array of positive finite levels")
            lq = np.zeros_like(lv)
        self.sigma_min, self.sigma_max = float(lv.min()), float(lv.max())
        # per-level constant of the log-weight: log lambda + log q - d log sigma (Gaussian normaliser w/o 2 pi)
        c = logw_fn(lv) + lq - d * np.log(lv)
        self._log_mix_norm = float(np.logaddexp.reduce(logw_fn(lv) + lq))
        self.levels = torch.as_tensor(lv, dtype=torch.float64, device=self.device)
        self._c = torch.as_tensor(c, dtype=torch.float64, device=self.device)
        self._inv2 = 1.0 / self.levels**2
        self._comp = self._inv2  # per-level coefficient of (mu_j - x) in the field (1/sigma_i^2: the p_MN score)
        self.center = self.points.center
        if mode == "exact":
            self._b_max = float(self._inv2.max())
        else:
            self._b_max = 1.0 / max(self.sigma_floor, self.sigma_min if self.clip else 0.0) ** 2
        self.last_certificate, self.last_fraction_truncated = 0.0, 0.0
        self._truncator = None

    # ------------------------------------------------------------------ internals
    def _temps(self, r2min: torch.Tensor) -> torch.Tensor:
        if not callable(self.temperature):
            return torch.full_like(r2min, self.temperature)
        s_nn = (r2min.clamp_min(0) / self.dim).sqrt().clamp_min(self.sigma_floor)
        t = torch.as_tensor(self.temperature(s_nn), dtype=torch.float64, device=self.device).expand_as(s_nn)
        if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
            raise ConfigError("temperature function returned a non-positive or non-finite value")
        return t

    def _centre_terms(self, r2: torch.Tensor, T: torch.Tensor):
        """Per-centre log-weight ``g`` and effective inverse variance ``b`` for squared distances ``r2`` (q, c):
        ``w_j ∝ exp(g_j)`` and ``s = sum_j w_j b_j (mu_j - x)``."""
        d = self.dim
        if self.mode == "optimal":
            s2 = (r2 / (d - 2)).clamp_min(self.sigma_floor**2)
            if self.clip:
                s2 = s2.clamp(self.sigma_min**2, self.sigma_max**2)
            f = -0.5 * (d - 2) * torch.log(s2) - r2 / (2 * s2)
            return f / T[:, None], 1.0 / s2
        q, c = r2.shape
        L = self.levels.shape[0]
        step = max(1, self.block_elements // max(1, q * L))
        gs, bs = [], []
        for a in range(0, c, step):
            logit = (self._c - r2[:, a : a + step, None] * (0.5 * self._inv2)) / T[:, None, None]  # (q, c', L)
            g = torch.logsumexp(logit, dim=2)
            gs.append(g)
            bs.append((torch.exp(logit - g[..., None]) * self._comp).sum(2))
        return torch.cat(gs, 1), torch.cat(bs, 1)

    def _r2(self, u, uu, v, a):
        """Squared distances (q, c) of centred queries to the centred chunk ``v`` starting at local row ``a``."""
        return (uu[:, None] - 2 * u @ v.T + 2 * self.points.half_sq[a : a + v.shape[0]]).clamp_min(0)

    def _min_r2(self, u, uu):
        """Squared distance to the nearest training point over all ranks (one streamed pass)."""
        best = torch.full_like(uu, math.inf)
        for a, v in self.points.chunks():
            best = torch.minimum(best, self._r2(u, uu, v, a).min(1).values)
        return -sharding.all_reduce_max(-best, self._group)

    def _chunk_rows(self, n_q):
        return max(1, min(self.points.chunk_rows, self.block_elements // max(1, n_q)))

    def _stream(self, u, want: str):
        """Online LSE over chunks: ``(lse (q,), score (q, D) or None, T (q,), g-chunks for weights)``."""
        uu = (u * u).sum(1)
        T = self._temps(self._min_r2(u, uu) if callable(self.temperature) else uu)
        m = torch.full_like(uu, -math.inf)
        s, acc_b = torch.zeros_like(uu), torch.zeros_like(uu)
        acc_v = torch.zeros_like(u) if want == "score" else None
        gs = []
        for a, v in self.points.chunks(rows=self._chunk_rows(u.shape[0])):
            g, b = self._centre_terms(self._r2(u, uu, v, a), T)
            if want == "weights":
                gs.append(g)
            m_new = torch.maximum(m, g.amax(1))
            scale = torch.exp(m - m_new)
            p = torch.exp(g - m_new[:, None])
            s = s * scale + p.sum(1)
            if want == "score":
                pb = p * b
                acc_v = acc_v * scale[:, None] + pb @ v
                acc_b = acc_b * scale + pb.sum(1)
            m = m_new
        lse = m + torch.log(s)
        if want == "score":
            lse, (mv, mb) = sharding.merge_over_ranks(lse, [acc_v / s[:, None], acc_b / s], self._group)
            return lse, mv - mb[:, None] * u, T, gs
        lse, _ = sharding.merge_over_ranks(lse, [], self._group)
        return lse, None, T, gs

    def _knn(self, u):
        """Sums restricted to the K nearest training points: (lse, score, T, weights (q, K))."""
        uu = (u * u).sum(1)
        K = self.k_neighbors
        best = torch.full((u.shape[0], K), math.inf, dtype=u.dtype, device=u.device)
        bidx = torch.zeros((u.shape[0], K), dtype=torch.long, device=u.device)
        for a, v in self.points.chunks(rows=self._chunk_rows(u.shape[0])):
            r2 = torch.cat([best, self._r2(u, uu, v, a)], 1)
            ix = torch.cat([bidx, torch.arange(a, a + v.shape[0], device=u.device).expand(u.shape[0], -1)], 1)
            best, pos = torch.topk(r2, K, dim=1, largest=False)
            bidx = ix.gather(1, pos)
        T = self._temps(best[:, 0])
        g, b = self._centre_terms(best, T)
        w = torch.softmax(g, 1)
        cen = self.points.rows(bidx)
        return torch.logsumexp(g, 1), ((w * b)[..., None] * (cen - u[:, None])).sum(1), T, w

    def _truncated(self, u, want):
        if self._truncator is None:
            self._truncator = NeighbourTruncation(
                self.points, index=self.truncation_index, policy=self.truncation_policy
            )
        n, unorm = self.n_train, u.norm(dim=1)
        callable_t = callable(self.temperature)
        T_fixed = None if callable_t else torch.full_like(unorm, self.temperature)
        Ts = torch.empty_like(unorm)

        def kept(act, ix, r2, rows, tau):
            r2min = r2.min(1).values
            T = self._temps(r2min) if callable_t else T_fixed[act]
            Ts[act] = T
            g, b = self._centre_terms(r2, T)
            ls = torch.logsumexp(g, 1)
            w = torch.exp(g - ls[:, None]) * b
            g_tau = self._centre_terms(tau[:, None], T)[0][:, 0]
            log_t = (math.log(n - ix.shape[1]) if n > ix.shape[1] else -math.inf) + g_tau
            valid = r2min <= tau if callable_t else None  # T needs the true nearest point among the kept
            return ls, log_t, (w[..., None] * (rows - u[act, None])).sum(1), valid

        if want == "score":

            def bound(delta, log_ratio, value, act):
                return delta * (self._b_max * (unorm[act] + self.points.radius) + value.norm(dim=1))
        else:

            def bound(delta, log_ratio, value, act):
                return log_ratio * Ts[act]

        def exact(act):
            lse, sc, T, _ = self._stream(u[act], "score")
            Ts[act] = T
            return lse, sc

        # the levels are fixed per field: one verdict per quantity (and call size) for the auto policy
        lse, sc, self.last_certificate = self._truncator.run(u, self.tolerance, kept, bound, exact, key=want)
        self.last_fraction_truncated = self._truncator.last_fraction_truncated
        return lse, sc, Ts

    def _run(self, x, want: str):
        x, _ = self.prepare(x, None, need_sigma=False)
        u = x.reshape(x.shape[0], -1).to(torch.float64) - self.center
        self.last_certificate, self.last_fraction_truncated = 0.0, 0.0
        if self.k_neighbors is not None and self.k_neighbors < self.n_train:
            lse, sc, T, w = self._knn(u)
        elif self.tolerance is not None and want != "weights" and not u.requires_grad:
            lse, sc, T = self._truncated(u, want)
            w = None
        else:
            lse, sc, T, gs = self._stream(u, want)
            w = torch.exp(torch.cat(gs, 1) - lse[:, None]) if want == "weights" else None
        out = {"potential": T * lse if want == "potential" else None, "weights": w, "score": sc}[want]
        return x, out

    # ------------------------------------------------------------------ public API
    def score(self, x, sigma=None) -> torch.Tensor:
        """Unconditional score s(x) (sigma ignored), shape of ``x``."""
        x, s = self._run(x, "score")
        return s.reshape(x.shape).to(self.dtype)

    def log_prob(self, x, sigma=None) -> torch.Tensor:
        """Potential whose gradient is :meth:`score` (at fixed T), shape ``(N,)``; differentiable. For
        ``mode="exact"``, T = 1 and no neighbour restriction it is the normalised ``log p_MN(x)``."""
        x, lse = self._run(x, "potential")
        if self.mode == "exact" and not callable(self.temperature) and self.temperature == 1.0:
            lse = lse - math.log(self.n_train) - self._log_mix_norm - 0.5 * self.dim * math.log(2 * math.pi)
        return lse.to(self.dtype)

    def weights(self, x) -> torch.Tensor:
        """Per-centre weights ``(N, M)`` (or ``(N, K)`` over the K nearest, nearest first) summed over levels."""
        return self._run(x, "weights")[1].to(self.dtype)

    def sigma_star(self, x) -> torch.Tensor:
        """The query's own noise level ``|x - mu_nn| / sqrt(d)`` (paper's convention), shape ``(N,)``."""
        x, _ = self.prepare(x, None, need_sigma=False)
        u = x.reshape(x.shape[0], -1).to(torch.float64) - self.center
        return (self._min_r2(u, (u * u).sum(1)) / self.dim).sqrt().to(self.dtype)

    def __repr__(self) -> str:
        t = "callable" if callable(self.temperature) else self.temperature
        return (
            f"UnconditionalEmpiricalScore(M={self.n_train}, shape={self.data_shape}, mode={self.mode}, "
            f"levels={self.levels.shape[0]}, T={t}, K={self.k_neighbors})"
        )
