"""Nearest-neighbour score estimator of Niedoba et al., "Nearest neighbour score estimators for diffusion generative
models" (ICML 2024; read from plai-group/knn-score, training/denoisers.py), in the project's VE convention.

For a query x with its K nearest training points ``y_(1..K)`` (exact search: :class:`~smoothscore.metrics.
NeighborIndex`, FAISS + float64 refinement) at distances ``d_1 <= ... <= d_K``, the unnormalised ESF weights are
``p_i = exp(-(d_i^2 - d_1^2) / (2 sigma^2))`` and every one of the ``n - K`` other points has a weight of at most
``m = p_K`` (the paper's uniform-tail bound).

* ``estimator="knn"`` (**adopted** default, deterministic): ``D = sum_i p_i y_(i) / sum_i p_i`` with the certificate
  ``|D - D_ESF| <= (n - K) m / (sum_i p_i + (n - K) m) * diam(data)`` (``diam`` bounded by twice the largest
  distance of a training point to the training mean). With ``K = n`` it is exactly the ESF.
* ``estimator="snis"`` (the paper's estimator): proposal ``q`` = ``p_i / Z`` on the neighbours and ``m / Z`` on each
  other point (``Z = sum p_i + (n - K) m``), sampled as "uniform over all n with probability ``n m / Z``, else
  neighbour i with probability proportional to ``p_i - m``"; R draws; the self-normalised importance estimate
  ``sum_r (p_r / q_r) y_r / sum_r (p_r / q_r)`` with the *exact* weight ``p_r`` of every drawn point. The draws come
  from the field's own generator (``seed``); the paper's defaults are K = 2048, R = 256.
"""

from __future__ import annotations

import torch

from .._checks import check_points
from ..errors import ConfigError
from ..search.neighbors import NeighborIndex
from .base import ScoreField


class KNNScore(ScoreField):
    """Nearest-neighbour score of ``train`` (``(n, *dims)``). ``k``: neighbours (clipped to n); ``estimator``:
    ``"knn"`` (default) or ``"snis"``; ``n_draws``: R for SNIS; ``seed``: SNIS draws. After each call
    ``last_bounds`` (N,) holds the certified error bound of every query (``knn``; NaN for ``snis``) and
    ``last_certificate`` the largest of them."""

    def __init__(
        self,
        train,
        k: int,
        *,
        estimator: str = "knn",
        n_draws: int = 256,
        seed: int = 0,
        dtype="float32",
        device="auto",
    ):
        self._init_placement(dtype, device)
        y = check_points(train, "train", dtype=torch.float64, device="cpu")
        self.data_shape = tuple(y.shape[1:])
        self.n_train = y.shape[0]
        if int(k) < 1:
            raise ConfigError(f"k must be a positive integer; got {k}")
        if estimator not in ("knn", "snis"):
            raise ConfigError(f"estimator must be 'knn' or 'snis'; got {estimator!r}")
        if estimator == "snis" and int(n_draws) < 1:
            raise ConfigError(f"n_draws must be positive; got {n_draws}")
        self.k, self.estimator, self.n_draws = min(int(k), self.n_train), estimator, int(n_draws)
        self._flat = y.reshape(self.n_train, -1)
        self.index = NeighborIndex(y)
        self.diameter_bound = float(2 * (self._flat - self._flat.mean(0)).norm(dim=1).max())
        self._gen = torch.Generator().manual_seed(int(seed))
        self.last_bounds = None
        self.last_certificate = None

    def denoise(self, x, sigma) -> torch.Tensor:
        """Posterior-mean estimate (module docstring), shape of ``x``; computed in float64, returned in ``dtype``."""
        x, s = self.prepare(x, sigma)
        q = x.detach().reshape(x.shape[0], -1).cpu().to(torch.float64)
        s64 = s.detach().cpu().to(torch.float64)
        dist, idx = self.index.search(x.detach().cpu(), self.k)
        logp = -(dist**2 - dist[:, :1] ** 2) / (2 * s64[:, None] ** 2)  # (N, K), log p_i <= 0
        p = torch.exp(logp)
        m = p[:, -1]
        rest = self.n_train - self.k
        if self.estimator == "knn":
            out = (p[:, :, None] * self._flat[idx]).sum(1) / p.sum(1, keepdim=True)
            self.last_bounds = rest * m / (p.sum(1) + rest * m) * self.diameter_bound
        else:
            out = self._snis(q, s64, dist, idx, p, m)
            self.last_bounds = torch.full((q.shape[0],), float("nan"), dtype=torch.float64)
        finite = self.last_bounds[torch.isfinite(self.last_bounds)]
        self.last_certificate = float(finite.max()) if finite.numel() else float("nan")
        return out.reshape(x.shape).to(device=self.device, dtype=self.dtype)

    def _snis(self, q, s64, dist, idx, p, m):
        n, k, r = self.n_train, self.k, self.n_draws
        z = p.sum(1) + (n - k) * m  # (N,)
        uniform = torch.rand(q.shape[0], r, generator=self._gen, dtype=torch.float64) < (n * m / z)[:, None]
        u_idx = torch.randint(0, n, (q.shape[0], r), generator=self._gen)
        excess = (p - m[:, None]).clamp_min(0)
        # all neighbours equally weighted (e.g. K = 1 or ties): the uniform branch has probability 1
        excess = torch.where(excess.sum(1, keepdim=True) > 0, excess, torch.ones_like(excess))
        n_idx = idx.gather(1, torch.multinomial(excess, r, replacement=True, generator=self._gen))
        drawn = torch.where(uniform, u_idx, n_idx)  # (N, R) training indices
        y = self._flat[drawn]  # (N, R, D)
        d2 = ((y - q[:, None]) ** 2).sum(2)
        p_true = torch.exp(-(d2 - dist[:, :1] ** 2) / (2 * s64[:, None] ** 2))
        is_nb = (drawn[:, :, None] == idx[:, None, :]).any(2)
        q_prob = torch.where(is_nb, p_true, m[:, None].expand_as(p_true)) / z[:, None]
        ratio = p_true / q_prob
        return (ratio[:, :, None] * y).sum(1) / ratio.sum(1, keepdim=True)

    def __repr__(self) -> str:
        return f"KNNScore(n={self.n_train}, k={self.k}, estimator={self.estimator!r}, shape={self.data_shape})"
