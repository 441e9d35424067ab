"""Exact empirical score function (ESF) of a finite training set under variance-exploding Gaussian noise.

Paper A (Chen 2025), Sec. 2 and Paper B (Zhou et al. 2026), Eq. 2: for training points ``y_1..y_M`` and noise
level sigma,

    p_sigma(x) = sum_j pi_j N(x; y_j, sigma^2 I),
    denoise(x) = E[y | x] = sum_j w_j(x) y_j,   w = softmax_j(log pi_j - |x - y_j|^2 / (2 sigma^2 T)),
    score(x)   = (denoise(x) - x) / sigma^2.

``T = 1`` is the exact ESF; ``T > 1`` is Paper B's temperature-smoothed conditioned ESF (Sec. 4.2: the softmax
logits are divided by T). The softmax is a per-query log-sum-exp streamed over chunks of the training set, so
memory is O(query_block x chunk), never O(queries x training points).

Numerics. Distances use the GEMM form on *centred* coordinates: with ``c`` the training mean and ``u = x - c``,
``v_j = y_j - c``, the logits are ``(u.v_j - |v_j|^2 / 2) / (sigma^2 T)`` (the ``|u|^2`` term is constant per query
and cancels in the softmax). Centring removes the catastrophic cancellation that ``|x|^2 - 2 x.y + |y|^2`` suffers
when data lie far from the origin; float32 then keeps the denoiser within 1e-4 of the data range of a float64
reference for queries ``y + sigma * eps`` at every sigma, also for data far from the origin (docs/numerics.md;
``tests/test_empirical_precision.py``).
Near an exact tie between two training points at small sigma the softmax weight is a steep function of a logit
*difference* of size ``O(|y_1 - y_2| * dx / sigma^2)``, and float32 rounding of the inputs alone makes it
inaccurate (Paper A's t_min is such a case); pass ``dtype="float64"`` there (docs/numerics.md).

Scale. The training set is a :class:`~smoothscore.data.arrays.PointSet`: a tensor, array, ``np.memmap``
or a path to a ``.npy`` file, streamed chunk by chunk (no float64 or centred copy; the field adds O(M) memory).
The kernel (:mod:`smoothscore.scores._kernel`) folds ``inv_i`` into the queries and ``-|v_j|^2/2`` into an
extra key column, and runs PyTorch's fused CPU flash-attention kernel chunk by chunk (small d) or blocked GEMMs
(large d, GPU, autograd). ``tolerance=`` switches on certified neighbour truncation
(:mod:`smoothscore.scores.truncation`); ``shard=`` splits the set across ``torch.distributed`` ranks
(:mod:`smoothscore.scores.sharding`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._checks import as_tensor, check_finite
from ..data.arrays import PointSet
from ..errors import ConfigError, ShapeError
from ..search.lower_bound_index import check_kind
from . import sharding
from ._kernel import gaussian_stats
from .base import ScoreField
from .truncation import NeighbourTruncation, check_policy, noise_key

#: default number of (query, training point) logits held at once by the GEMM backend
DEFAULT_BLOCK_ELEMENTS = 1 << 18  # the fastest on CPU in benchmarks/bench_empirical.py


def check_temperature(temperature):
    """A positive finite float, or a callable (checked per call)."""
    if callable(temperature):
        return temperature
    t = float(temperature)
    if not (math.isfinite(t) and t > 0):
        raise ConfigError(f"temperature must be positive and finite; got {temperature}")
    return t


def check_tolerance(tolerance, shard):
    if tolerance is None:
        return None
    tol = float(tolerance)
    if not (math.isfinite(tol) and tol > 0):
        raise ConfigError(f"tolerance must be positive and finite; got {tolerance}")
    if shard is not None:
        raise ConfigError("tolerance= (certified truncation) is not combined with sharding; use shard=False")
    return tol


class EmpiricalScore(ScoreField):
    """Exact (optionally temperature-smoothed) empirical score of ``train`` (shape ``(M, *dims)``).

    Args:
        train: training points — a tensor, a numpy array, an ``np.memmap`` or a path to a ``.npy`` file (read in
            streamed chunks, never copied whole); 1-D input is read as M points on the real line.
        temperature: T > 0 dividing the softmax logits (Paper B, Sec. 4.2), or a callable ``T(sigma_vec)``
            returning one temperature per query (e.g. ``lambda s: (c / s).clamp(min=1)``).
        tolerance: None (exact) or the largest error allowed by certified neighbour truncation (see
            :mod:`smoothscore.scores.truncation`; the bound of the last call is ``last_certificate``).
        truncation_index: candidate search of the truncation: ``"auto"`` (dense below 20,000 points, IVF from there
            at PCA rank <= 16, else flat), ``"dense"``, ``"flat"`` or ``"ivf"``
            (:mod:`smoothscore.search.lower_bound_index`, :mod:`smoothscore.search.dense_bound_index`).
        truncation_policy: ``"auto"`` (default: per call, truncate only where a timed pilot shows it beats the
            exact kernel; never much slower than ``tolerance=None``) or ``"always"``
            (:mod:`smoothscore.scores.truncation`). Either way ``last_certificate`` bounds the error.
        weights: optional non-negative mixture weights ``pi_j`` (default uniform); duplicating a point is
            equivalent to doubling its weight.
        dtype: ``"float32"`` (default) or ``"float64"`` for exact work near ties.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ...
        block_elements: logits held per block by the GEMM backend (memory knob; results do not depend on it).
        shard: None (split across the ranks of an initialised ``torch.distributed`` group), False (never), or
            ``(rank, world)`` (see :mod:`smoothscore.scores.sharding`).
        method: kernel backend, ``"auto"``, ``"flash"`` or ``"gemm"`` (see :mod:`smoothscore.scores._kernel`).
    """

    def __init__(
        self,
        train,
        temperature: float | Callable = 1.0,
        tolerance: float | None = None,
        *,
        weights=None,
        dtype="float32",
        device="auto",
        block_elements: int = DEFAULT_BLOCK_ELEMENTS,
        shard=None,
        method: str = "auto",
        truncation_index: str = "auto",
        truncation_policy: str = "auto",
    ):
        self._init_placement(dtype, device)
        self.temperature = check_temperature(temperature)
        self.truncation_index = check_kind(truncation_index)
        self.truncation_policy = check_policy(truncation_policy)
        auto_off = tolerance is not None and shard is None  # truncation is local: no automatic sharding
        self.shard, self._group = sharding.resolve_shard(False if auto_off else shard)
        self.tolerance = check_tolerance(tolerance, self.shard)
        if block_elements < 1:
            raise ConfigError("block_elements must be positive")
        if method not in ("auto", "flash", "gemm"):
            raise ConfigError(f"method must be 'auto', 'flash' or 'gemm'; got {method!r}")
        self.block_elements, self.method = int(block_elements), method
        self.points = PointSet(train, dtype=self.dtype, device=self.device, shard=self.shard, group=self._group)
        self.data_shape, self.dim, self.n_train = self.points.data_shape, self.points.dim, self.points.n_total
        self.center = self.points.center_c
        self._logw = None
        if weights is not None:
            w = check_finite(as_tensor(weights, "weights", dtype=torch.float64, device=self.device), "weights")
            if w.shape != (self.n_train,):
                raise ShapeError(f"weights must have shape ({self.n_train},); got {tuple(w.shape)}")
            if bool((w < 0).any()) or float(w.sum()) <= 0:
                raise ConfigError("weights must be non-negative with a positive sum")
            lo = self.points.offset
            self._logw = torch.log(w / w.sum())[lo : lo + self.points.n]
        #: largest certified error bound over the queries of the last call (0 when computed exactly)
        self.last_certificate = 0.0
        #: fraction of the last call's queries served by truncation
        self.last_fraction_truncated = 0.0
        self._truncator = None

    # ------------------------------------------------------------------ internals
    def _inv(self, s: torch.Tensor) -> torch.Tensor:
        """Per-query ``1 / (sigma^2 T)`` (one product with a constant T: no temperature vector)."""
        if callable(self.temperature):
            return 1.0 / (s * s * self._temps(s))
        return (s * s * self.temperature).reciprocal()

    def _temps(self, s: torch.Tensor) -> torch.Tensor:
        if callable(self.temperature):
            t = torch.as_tensor(self.temperature(s), dtype=self.dtype, device=self.device).expand_as(s)
            if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
                raise ConfigError("temperature function returned a non-positive or non-finite value")
            return t
        return torch.full_like(s, self.temperature)

    def _local(self, u, inv, want_mean=True):
        return gaussian_stats(
            u,
            inv,
            self.points,
            logw=self._logw,
            want_mean=want_mean,
            block_elements=self.block_elements,
            method=self.method,
        )

    def _stats(self, u, inv, want_mean=True, bound=None):
        """Merged ``(lse, mean)`` over all ranks; with a tolerance, truncated where ``bound`` certifies it."""
        if self.tolerance is not None and bound is not None:
            lse, mean, self.last_certificate = self._truncated(u, inv, want_mean, bound)
            self.last_fraction_truncated = self._truncator.last_fraction_truncated
            return lse, mean
        lse, mean = self._local(u, inv, want_mean)
        lse, (mean,) = sharding.merge_over_ranks(lse, [mean], self._group)
        self.last_certificate, self.last_fraction_truncated = 0.0, 0.0
        return lse, mean

    def _truncated(self, u, inv, want_mean, bound):
        """Certified truncation (module :mod:`~smoothscore.scores.truncation`): kept mass exact over the candidates,
        dropped mass ``<= pi_drop exp(-tau / (2 sigma^2 T))``; results in the kernel's convention."""
        if self._truncator is None:
            self._truncator = NeighbourTruncation(
                self.points, index=self.truncation_index, policy=self.truncation_policy
            )
        n, logw = self.n_train, self._logw
        half_uu = []  # lse(kernel) = lse(-r^2 inv / 2) + |u|^2 inv / 2, computed on the truncated path only

        def kept(act, ix, r2, rows, tau):
            if not half_uu:
                half_uu.append(0.5 * (u * u).sum(1) * inv)
            uu = half_uu[0]
            k = ix.shape[1]
            logit = (-math.log(n) if logw is None else logw[ix].to(u.dtype)) - 0.5 * r2 * inv[act, None]
            ls = torch.logsumexp(logit, 1)
            w = torch.exp(logit - ls[:, None])
            if logw is None:
                log_pi = torch.full_like(tau, math.log((n - k) / n) if n > k else -math.inf)
            else:  # total pi of the dropped rows (rounding of the kept sum covered by 1e-15)
                log_pi = torch.log((1 - torch.exp(logw[ix]).sum(1)).clamp_min(0) + 1e-15)
            log_t = log_pi - 0.5 * tau * inv[act].to(torch.float64) + uu[act].to(torch.float64)
            return ls + uu[act], log_t, torch.bmm(w[:, None], rows)[:, 0], None

        def exact(act):
            ua, ia = (u, inv) if act.numel() == u.shape[0] else (u[act], inv[act])  # all: no gather
            lse, mean = self._local(ua, ia, want_mean)
            return lse, (mean if mean is not None else torch.zeros_like(ua))

        return self._truncator.run(u, self.tolerance, kept, bound, exact, key=(want_mean, noise_key(inv)))

    def _prep_flat(self, x, sigma):
        x, s = self.prepare(x, sigma)
        flat = x.reshape(x.shape[0], -1)
        return x, s, (flat - self.center) if self.points.centred else flat

    # ------------------------------------------------------------------ public API
    def denoise(self, x, sigma) -> torch.Tensor:
        """Posterior mean ``E[y | x] = sum_j w_j y_j`` (Tweedie), shape of ``x``."""
        x, s, u = self._prep_flat(x, sigma)
        inv = self._inv(s)
        _, mean = self._stats(
            u, inv, bound=lambda delta, log_ratio, mean_k, idx: delta * (self.points.radius + mean_k.norm(dim=1))
        )
        return ((mean + self.center) if self.points.centred else mean).reshape(x.shape)

    def score(self, x, sigma) -> torch.Tensor:
        """``(denoise(x) - x) / sigma^2`` (Paper A Eq. 2; Paper B Eq. 2), shape of ``x``."""
        x, s, u = self._prep_flat(x, sigma)
        inv = self._inv(s)
        s2 = s * s
        _, mean = self._stats(
            u,
            inv,
            bound=lambda delta, log_ratio, mean_k, idx: delta * (self.points.radius + mean_k.norm(dim=1)) / s2[idx],
        )
        return ((mean - u) / s2[:, None]).reshape(x.shape)

    def log_prob(self, x, sigma) -> torch.Tensor:
        """Exact normalised ``log p_sigma(x)`` of the Gaussian mixture (T = 1), shape ``(N,)``; differentiable.

        For T != 1 this returns the *potential* ``T * LSE_j(log pi_j / T ... )`` whose gradient is the
        temperature-smoothed score: ``T * LSE_j(log pi_j - |x - y_j|^2 / (2 sigma^2 T))`` (unnormalised).
        """
        x, s, u = self._prep_flat(x, sigma)
        temps = self._temps(s)
        inv = 1.0 / (s * s * temps)
        lse, _ = self._stats(
            u,
            inv,
            want_mean=False,
            bound=None if u.requires_grad else lambda delta, log_ratio, mean_k, idx: log_ratio * temps[idx],
        )
        quad = -0.5 * (u * u).sum(1) * inv
        if callable(self.temperature) or self.temperature != 1.0:
            return temps * (lse + quad)
        return lse + quad - 0.5 * self.dim * torch.log(2 * math.pi * s * s)

    def partial_stats(self, x, sigma):
        """This shard's unmerged ``lse_i = LSE_j(log pi_j - |x_i - y_j|^2 / (2 sigma^2 T))`` (N,) and softmax mean
        (N, *dims) in data coordinates — both independent of the centre; merge the shards' pairs with
        :func:`smoothscore.scores.sharding.merge_partial_stats` (float64 recommended)."""
        x, s, u = self._prep_flat(x, sigma)
        inv = self._inv(s)
        lse, mean = self._local(u, inv)
        return lse - 0.5 * (u * u).sum(1) * inv, (mean + self.center).reshape(x.shape)

    def weights(self, x, sigma) -> torch.Tensor:
        """Softmax weights ``(N, M_local)`` over this process's rows (diagnostics on small sets; memory O(N M))."""
        x, s, u = self._prep_flat(x, sigma)
        inv = self._inv(s)
        lse, _ = self._stats(u, inv, want_mean=False)
        lw = -math.log(self.n_train) if self._logw is None else self._logw.to(self.dtype)
        logits = torch.cat(
            [
                (u @ v.T - self.points.half_sq[a : a + v.shape[0]].to(self.dtype)) * inv[:, None]
                + (lw if isinstance(lw, float) else lw[a : a + v.shape[0]])
                for a, v in self.points.chunks()
            ],
            1,
        )
        if self._group is None:  # one process holds every row: normalise exactly over them
            return torch.softmax(logits, dim=1)
        return torch.exp(logits - lse[:, None])

    def __repr__(self) -> str:
        t = "callable" if callable(self.temperature) else self.temperature
        return (
            f"EmpiricalScore(M={self.n_train}, shape={self.data_shape}, T={t}, tolerance={self.tolerance}, "
            f"dtype={self.dtype}, device={self.device})"
        )
