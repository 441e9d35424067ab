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
reference for queries ``y + sigma * eps`` at every sigma (measured: ~1e-6 near the origin, ~3e-5 at offsets of
1e3 x the range, where the float32 output's own rounding dominates; tested up to d = 3072).
Near an exact tie between two training points at small sigma the softmax weight is a steep function of a logit
*difference* of size ``O(|y_1 - y_2| * dx / sigma^2)``, and float32 rounding of the inputs alone makes it
inaccurate (measured: ~8e-4 of the range for two points at +-1 and sigma = sqrt(1e-5), Paper A's t_min); pass
``dtype="float64"`` there (error ~4e-9; ``tests/test_empirical_precision.py``).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .._checks import as_tensor, bcast, check_finite, check_points
from ..errors import ConfigError, ShapeError
from .base import ScoreField

#: default number of (query, training point) logits held at once
DEFAULT_BLOCK_ELEMENTS = 1 << 18  # measured fastest on CPU (benchmarks/bench_empirical.py)


class EmpiricalScore(ScoreField):
    """Exact (optionally temperature-smoothed) empirical score of ``train`` (shape ``(M, *dims)``).

    Args:
        train: training points; 1-D input is read as M points on the real line.
        temperature: T > 0 dividing the softmax logits (Paper B, Sec. 4.2), or a callable ``T(sigma_vec)``
            returning one temperature per query (e.g. ``lambda s: (c / s).clamp(min=1)``).
        weights: optional non-negative mixture weights ``pi_j`` (default uniform); duplicating a point is
            equivalent to doubling its weight.
        dtype: ``"float32"`` (default) or ``"float64"`` for exact work near ties.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ...
        block_elements: logits held per streamed block (memory knob; results do not depend on it).
    """

    def __init__(self, train, temperature: float | Callable = 1.0, *, weights=None, dtype="float32",
                 device="auto", block_elements: int = DEFAULT_BLOCK_ELEMENTS):
        self._init_placement(dtype, device)
        y = check_points(train, "train", dtype=torch.float64, device=self.device)
        self.data_shape = tuple(y.shape[1:])
        self.n_train = y.shape[0]
        flat = y.reshape(self.n_train, -1)
        self.dim = flat.shape[1]
        if callable(temperature):
            self.temperature = temperature
        else:
            t = float(temperature)
            if not (math.isfinite(t) and t > 0):
                raise ConfigError(f"temperature must be positive and finite; got {temperature}")
            self.temperature = t
        if weights is None:
            logw = torch.full((self.n_train,), -math.log(self.n_train), dtype=torch.float64, device=self.device)
        else:
            w = check_finite(as_tensor(weights, "weights", dtype=torch.float64, device=self.device), "weights")
            if w.shape != (self.n_train,):
                raise ShapeError(f"weights must have shape ({self.n_train},); got {tuple(w.shape)}")
            if bool((w < 0).any()) or float(w.sum()) <= 0:
                raise ConfigError("weights must be non-negative with a positive sum")
            logw = torch.log(w / w.sum())
        # centre in float64, then round once: the float32 differences below are then exact (Sterbenz)
        center = flat.mean(0).to(self.dtype)
        self.train = flat.to(self.dtype)                     # (M, D) as given
        self.center = center                                 # (D,)
        self._v = self.train - center                        # centred training points
        self._half_sq = 0.5 * (self._v.to(torch.float64) ** 2).sum(1).to(self.dtype)
        self._logw = logw.to(self.dtype)
        if block_elements < 1:
            raise ConfigError("block_elements must be positive")
        self.block_elements = int(block_elements)

    # ------------------------------------------------------------------ internals
    def _temps(self, s: torch.Tensor) -> torch.Tensor:
        if callable(self.temperature):
            t = torch.as_tensor(self.temperature(s), dtype=self.dtype, device=self.device).expand_as(s)
            if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
                raise ConfigError("temperature function returned a non-positive or non-finite value")
            return t
        return torch.full_like(s, self.temperature)

    def _blocks(self, n: int):
        q = max(1, min(n, 4096))
        c = max(1, min(self.n_train, self.block_elements // q))
        return q, c

    def _stream(self, u: torch.Tensor, inv: torch.Tensor, want_mean: bool = True):
        """Streamed log-sum-exp over training chunks for centred queries ``u`` (N, D) and ``inv = 1/(sigma^2 T)``.

        Returns ``(lse, mean)`` where ``lse_i = LSE_j(log pi_j + (u_i.v_j - |v_j|^2/2) inv_i)`` and ``mean_i`` is the
        softmax-weighted average of the centred points ``v_j``.
        """
        n = u.shape[0]
        qb, cb = self._blocks(n)
        lses, means = [], []
        for a in range(0, n, qb):
            ub, ib = u[a:a + qb], inv[a:a + qb, None]
            m = torch.full((ub.shape[0], 1), -math.inf, dtype=self.dtype, device=self.device)
            ssum = torch.zeros_like(m)
            acc = torch.zeros_like(ub) if want_mean else None
            for b in range(0, self.n_train, cb):
                v = self._v[b:b + cb]
                logits = (ub @ v.T - self._half_sq[b:b + cb]) * ib + self._logw[b:b + cb]
                m_new = torch.maximum(m, logits.amax(1, keepdim=True))
                scale = torch.exp(m - m_new)
                p = torch.exp(logits - m_new)
                ssum = ssum * scale + p.sum(1, keepdim=True)
                if want_mean:
                    acc = acc * scale + p @ v
                m = m_new
            lses.append((m + torch.log(ssum)).squeeze(1))
            if want_mean:
                means.append(acc / ssum)
        return torch.cat(lses), (torch.cat(means) if want_mean else None)

    def _prep_flat(self, x, sigma):
        x, s = self.prepare(x, sigma)
        return x, s, x.reshape(x.shape[0], -1) - self.center

    # ------------------------------------------------------------------ public API
    def denoise(self, x, sigma) -> torch.Tensor:
        """Posterior mean ``E[y | x] = sum_j w_j y_j`` (Tweedie), shape of ``x``."""
        x, s, u = self._prep_flat(x, sigma)
        inv = 1.0 / (s * s * self._temps(s))
        _, mean = self._stream(u, inv)
        return (mean + self.center).reshape(x.shape)

    def score(self, x, sigma) -> torch.Tensor:
        """``(denoise(x) - x) / sigma^2`` (Paper A Eq. 2; Paper B Eq. 2), shape of ``x``."""
        x, s, u = self._prep_flat(x, sigma)
        inv = 1.0 / (s * s * self._temps(s))
        _, mean = self._stream(u, inv)
        return ((mean - u) / (s * s)[:, None]).reshape(x.shape)

    def log_prob(self, x, sigma) -> torch.Tensor:
        """Exact normalised ``log p_sigma(x)`` of the Gaussian mixture (T = 1), shape ``(N,)``; differentiable.

        For T != 1 this returns the *potential* ``T * LSE_j(log pi_j / T ... )`` whose gradient is the
        temperature-smoothed score: ``T * LSE_j(log pi_j - |x - y_j|^2 / (2 sigma^2 T))`` (unnormalised).
        """
        x, s, u = self._prep_flat(x, sigma)
        temps = self._temps(s)
        inv = 1.0 / (s * s * temps)
        lse, _ = self._stream(u, inv, want_mean=False)
        quad = -0.5 * (u * u).sum(1) * inv
        if callable(self.temperature) or self.temperature != 1.0:
            return temps * (lse + quad)
        return lse + quad - 0.5 * self.dim * torch.log(2 * math.pi * s * s)

    def weights(self, x, sigma) -> torch.Tensor:
        """Full softmax weights ``(N, M)`` (diagnostics on small sets; memory O(N M))."""
        x, s, u = self._prep_flat(x, sigma)
        inv = 1.0 / (s * s * self._temps(s))
        logits = (u @ self._v.T - self._half_sq) * inv[:, None] + self._logw
        return torch.softmax(logits, dim=1)

    def __repr__(self) -> str:
        t = "callable" if callable(self.temperature) else self.temperature
        return f"EmpiricalScore(M={self.n_train}, shape={self.data_shape}, T={t}, dtype={self.dtype}, device={self.device})"
