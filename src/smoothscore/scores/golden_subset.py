"""GoldDiff's golden subset (Shang et al., ICML 2026; read from shangxinyi/GoldDiff, methods/base.py
``_get_knn_subset_and_distances`` and methods/ours.py): an **approximate, uncertified** candidate selection for
softmax denoisers. Nothing bounds the error it makes; compare it with the certified truncation of
:class:`~smoothscore.scores.EmpiricalScore` (``tolerance=``) when speed matters.

Per query at VE level sigma (their VP ``noise_level = sqrt(1 - alpha_bar) = sigma / sqrt(1 + sigma^2)``, clamped
to [0, 1]; ``locality = 1 - noise_level``), with ``n`` training images, ``k_min <= k_max <= n``:

1. pool size ``m_pool = round(k_max + (n - k_max) * locality)`` (their Sec. 3.4 ``m_t``), a uniformly random pool
   of that many training images per query (the field's own generator, ``seed``);
2. coarse screen: average-pool query and pool images to ``low_res x low_res`` (their 16 x 16 for CIFAR-10), keep
   the ``k_max`` nearest in that space;
3. fine screen: full-resolution distances, keep the ``k_t = max(k_min, round(k_max - (k_max - k_min) * locality))``
   nearest (their Eq. 6: k grows with the noise);
4. the denoiser's softmax runs over those ``k_t`` images only (GoldDiff's ``ss`` weighting: one exact softmax over
   the subset).

Distances are VE ``|x - y|^2`` (their ``|x_t - sqrt(alpha_bar) y|^2 = alpha_bar |x_VE - y|^2``, same order).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..noise import vp_noise_std


def golden_sizes(n: int, k_min: int, k_max: int, sigma: float) -> tuple[int, int]:
    """``(m_pool, k_t)`` of GoldDiff's schedules at VE level ``sigma`` (module docstring), after their clamps
    (``k_min <= n``, ``k_min <= k_max <= n``)."""
    k_min = min(int(k_min), n)
    k_max = min(max(int(k_max), k_min), n)
    noise = min(1.0, max(0.0, vp_noise_std(float(sigma))))
    loc = 1.0 - noise
    pool = min(n, max(k_max, int(round(k_max + (n - k_max) * loc))))
    k_t = max(k_min, int(round(k_max - (k_max - k_min) * loc)))
    return pool, k_t


def default_low_res(res: int) -> int:
    """GoldDiff's default coarse resolution: the largest divisor of ``res`` in ``[4, res // 2]`` (else the largest
    divisor up to ``res // 2``, else ``res``)."""
    target = max(1, res // 2)
    for lo in (4, 1):
        cands = [d for d in range(lo, target + 1) if res % d == 0]
        if cands:
            return cands[-1]
    return res


def _sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distances ``(len(a), len(b))`` in GEMM form (screening only: ranks, not values, matter)."""
    return (a * a).sum(1, keepdim=True) - 2 * a @ b.T + (b * b).sum(1)


class GoldenSubset:
    """GoldDiff's golden-subset selection (module docstring), **approximate and uncertified**.

    Args: ``k_min``, ``k_max`` (their defaults for CIFAR-10: N/20 and N/10), ``low_res`` (coarse side; must divide
    the image sides; None: :func:`default_low_res`), ``seed`` (random pools). Attach it to a field with
    ``golden=`` (:class:`~smoothscore.scores.pca_locality.PCALocalityScore`); ``last_sizes`` holds
    ``(m_pool, k_t)`` of the latest call."""

    certified = False

    def __init__(self, k_min: int, k_max: int, *, low_res: int | None = None, seed: int = 0):
        if int(k_min) < 1 or int(k_max) < int(k_min):
            raise ConfigError(f"golden subset needs 1 <= k_min <= k_max; got k_min={k_min}, k_max={k_max}")
        if low_res is not None and int(low_res) < 1:
            raise ConfigError(f"low_res must be a positive integer; got {low_res}")
        self.k_min, self.k_max = int(k_min), int(k_max)
        self.low_res = None if low_res is None else int(low_res)
        self.seed = int(seed)
        self._gen = torch.Generator().manual_seed(self.seed)
        self.train = None
        self.last_sizes = None

    def bind(self, train_flat: torch.Tensor, data_shape) -> None:
        """Attach the training set ``(n, D)`` of shape ``data_shape`` per image; precompute the coarse copies."""
        self.train, self.shape = train_flat, tuple(data_shape)
        self._pool_factor = None
        if len(self.shape) in (2, 3):
            h, w = self.shape[-2:]
            low = self.low_res if self.low_res is not None else default_low_res(min(h, w))
            if h % low or w % low or h != w:
                raise ConfigError(f"low_res {low} must divide the (square) image side {h} x {w}")
            self._pool_factor = h // low
        self._coarse = self._down(train_flat)

    def _down(self, flat: torch.Tensor) -> torch.Tensor:
        if not self._pool_factor or self._pool_factor == 1:
            return flat
        img = flat.reshape(flat.shape[0], -1, *self.shape[-2:])
        return F.avg_pool2d(img, self._pool_factor).reshape(flat.shape[0], -1)

    def select(self, q: torch.Tensor, sigma: float) -> torch.Tensor:
        """Training indices ``(Q, k_t)`` of the golden subset of every query ``q`` (Q, D) at level ``sigma``."""
        if self.train is None:
            raise ConfigError("GoldenSubset is not bound to a training set (pass it as golden= to a field)")
        n = self.train.shape[0]
        pool, k_t = golden_sizes(n, self.k_min, self.k_max, float(sigma))
        k_max = min(max(self.k_max, self.k_min), n)
        self.last_sizes = (pool, k_t)
        rand = torch.rand(q.shape[0], n, generator=self._gen).to(q.device)
        pool_idx = rand.topk(pool, dim=1, largest=False).indices  # (Q, pool) uniformly random pools
        cq = self._down(q)
        d_coarse = _sq_dist(cq, self._coarse).gather(1, pool_idx)  # GEMM over the whole set, then the pools
        keep = pool_idx.gather(1, d_coarse.topk(k_max, dim=1, largest=False).indices)  # (Q, k_max)
        out = torch.empty((q.shape[0], k_t), dtype=torch.long, device=q.device)
        qb = max(1, (1 << 24) // (k_max * q.shape[1]))
        for a in range(0, q.shape[0], qb):
            cand = self.train[keep[a : a + qb]]  # (B, k_max, D)
            d_fine = ((cand - q[a : a + qb, None]) ** 2).sum(-1)
            out[a : a + qb] = keep[a : a + qb].gather(1, d_fine.topk(k_t, dim=1, largest=False).indices)
        return out

    def __repr__(self) -> str:
        return f"GoldenSubset(k_min={self.k_min}, k_max={self.k_max}, low_res={self.low_res}, uncertified)"
