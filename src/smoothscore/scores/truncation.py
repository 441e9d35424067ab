"""Certified neighbour truncation of the exact scores (issue 9, item 3).

Every exact score here is a softmax over training points whose per-point weight is a **non-increasing function of
the squared distance** ``r_j^2 = |x - y_j|^2``:

* the ESF (Paper A Eq. 2; Paper B Eq. 2, temperature Sec. 4.2): ``a_j = pi_j exp(-r_j^2 / (2 sigma^2 T))``;
* the unconditional p_MN score (Paper B Eq. 5 and its exact sum over levels): ``a_j = exp(g(r_j^2) / T)`` with
  ``g(r^2) = LSE_i(c_i - r^2 / (2 sigma_i^2))`` (a log-sum of decreasing terms) or, for the optimal level,
  ``g(r^2) = max_{s^2} (-(d - 2)/2 log s^2 - r^2 / (2 s^2))`` over the allowed s^2 (a maximum of decreasing
  functions, ~ ``-(d - 2) log r``: a heavy, polynomial tail — the bound below does not assume a Gaussian tail).

Truncation keeps a set ``K`` of candidates per query and certifies the rest: if every dropped point has
``r_j^2 >= tau`` then its weight is at most ``a(tau)`` (monotonicity), so the dropped mass is
``D <= A_drop a(tau)`` (``A_drop`` = number of dropped points, or their total ``pi``) and, with ``S`` the exact kept
mass, the dropped weight fraction is ``eps = D / (S + D) <= delta = D_b / (S + D_b)``. Consequences (stated on
each field, tested against float64 brute force):

* posterior mean: ``|m - m_K| = eps |m_drop - m_K| <= delta (R + |m_K - c|)``, ``R = max_j |y_j - c|`` (every
  mean of training points lies in the ball of radius R about the centre ``c``); the score error is that / sigma^2;
* log-density / potential: ``0 <= log(S + D) - log S <= log(1 + D_b / S)`` (times T for the tempered potential);
* unconditional score ``s = sum_j w_j b_j (y_j - x)`` with ``b_j <= b_max``: ``|s - s_K| <= delta
  (b_max (|x - c| + R) + |s_K|)``.

Finding the candidates: the K nearest by a **lower bound** on the distance, found with FAISS's exact flat index
(``IndexFlatL2``) in p + 1 dimensions. With P the top-p principal directions (orthonormal rows, from a subsample)
and ``v = y - c``, ``u = x - c``:

    |u - v|^2 = |P(u - v)|^2 + |P_perp(u - v)|^2 >= |P u - P v|^2 + (|P_perp u| - |P_perp v|)^2,

the squared distance between the embeddings ``e(u) = [P u, |P_perp u|]`` and ``e(v) = [P v, |P_perp v|]``. The
flat search returns the K smallest lower bounds; every point it did not return has a lower bound, hence a
distance, at least the K-th one (less a float32 rounding margin): that is ``tau``. The candidates' distances are
then computed exactly. Where the certified error exceeds the tolerance, K doubles (up to ``k_max``) for queries whose
dropped-fraction bound is already below ``give_up`` (1e-3); queries still uncertified use the exact streamed kernel
(certificate 0). For data near a low-dimensional subspace the search
costs ~p/D of the exact kernel; for full-rank data the bound is loose and the exact kernel runs (plus the search).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch


class LowerBoundIndex:
    """FAISS ``IndexFlatL2`` over the embeddings ``e(v) = [P v, |P_perp v|]`` (see module doc).

    ``rank``: number of principal directions (default: the smallest capturing all but ``energy`` of the variance
    of a subsample, at most ``max_rank``)."""

    def __init__(
        self, points, *, rank: int | None = None, max_rank: int = 64, energy: float = 1e-4, sample: int = 2048
    ):
        import faiss

        self.points = points
        n, D = points.n, points.dim
        pick = torch.linspace(0, n - 1, min(n, sample)).round().long().unique()
        sub = points.rows(pick.to(points.device), torch.float64)
        _, sv, vt = torch.linalg.svd(sub, full_matrices=False)
        if rank is None:
            e = sv**2
            tail = (e.sum() - torch.cumsum(e, 0)) / e.sum().clamp_min(1e-300)
            rank = int((tail > energy).sum()) + 1
        self.rank = p = max(1, min(int(rank), max_rank, D, vt.shape[0]))
        self.basis = vt[:p].contiguous()  # (p, D) float64, orthonormal rows
        emb = np.empty((n, p + 1), dtype=np.float32)
        for a, v in points.chunks(torch.float64):
            emb[a : a + v.shape[0]] = self._embed(v).cpu().numpy()
        self.index = faiss.IndexFlatL2(p + 1)
        self.index.add(emb)
        self.r2max = float(points.radius) ** 2

    def _embed(self, v: torch.Tensor) -> torch.Tensor:
        v = v.to(device=self.basis.device, dtype=torch.float64)
        pv = v @ self.basis.T
        res = (v - pv @ self.basis).norm(dim=1, keepdim=True)
        return torch.cat([pv, res], 1)

    def search(self, u: torch.Tensor, k: int):
        """``(idx (q, k) local rows, tau (q,) float64)``: every row not in ``idx`` has ``|u - v|^2 >= tau``."""
        e = self._embed(u)
        d2, idx = self.index.search(np.ascontiguousarray(e.cpu().numpy().astype(np.float32)), k)
        d2 = torch.as_tensor(d2, dtype=torch.float64)
        # float32 rounding of FAISS's |a|^2 + |b|^2 - 2 a.b (|e(u)| = |u|, |e(v)| <= R): a generous margin
        margin = 1e-5 * ((e * e).sum(1).cpu() + self.r2max)
        tau = (d2[:, -1] - margin).clamp_min(0)
        return torch.as_tensor(idx, dtype=torch.long, device=self.points.device), tau.to(self.points.device)


class NeighbourTruncation:
    """Run a certified truncated evaluation (module doc) with field-specific callbacks:

    * ``kept(active, idx, r2, rows, tau) -> (log_s (q,), log_t (q,), value (q, D), valid (q,) or None)``: the exact
      log kept mass, the log of the bound ``D_b`` on the dropped mass (every dropped row has squared distance
      ``>= tau``) and the kept-normalised value for the queries ``active`` with candidate rows ``rows`` (q, k, D)
      at squared distances ``r2`` (q, k); ``valid`` marks queries whose evaluation the truncation can certify;
    * ``bound(delta, log_ratio, value, active) -> (q,)``: error bound of the returned quantity;
    * ``exact(active) -> (log_s, value)``: the exact kernel for uncertified queries.
    """

    def __init__(
        self,
        points,
        *,
        k0: int = 32,
        k_max: int = 1024,
        give_up: float = 1e-3,
        block_elements: int = 1 << 22,
        **index_kw,
    ):
        self.points, self.k0, self.k_max, self.block_elements = points, int(k0), int(k_max), int(block_elements)
        self.give_up = float(give_up)
        self.index_kw = index_kw
        self._index = None
        self.last_fraction_truncated = 0.0

    @property
    def index(self) -> LowerBoundIndex:
        if self._index is None:
            self._index = LowerBoundIndex(self.points, **self.index_kw)
        return self._index

    def run(self, u: torch.Tensor, tol: float, kept: Callable, bound: Callable, exact: Callable):
        N, D = u.shape
        n = self.points.n
        lse = torch.empty(N, dtype=u.dtype, device=u.device)
        val = torch.empty(N, D, dtype=u.dtype, device=u.device)
        cert = torch.zeros(N, dtype=torch.float64, device=u.device)
        active = torch.arange(N, device=u.device)
        k = min(self.k0, n)
        rest = []
        k_max = min(self.k_max, n // 4)
        while active.numel() and k <= k_max:
            idx, tau = self.index.search(u[active], k)
            qb = max(1, self.block_elements // (k * D))
            still, gave_up = [], []
            for a in range(0, active.numel(), qb):
                act, ix = active[a : a + qb], idx[a : a + qb]
                rows = self.points.rows(ix, u.dtype)  # (q, k, D)
                r2 = ((rows - u[act, None]) ** 2).sum(2)
                log_s, log_t, value, valid = kept(act, ix, r2, rows, tau[a : a + qb])
                log_t = log_t.to(torch.float64)
                ls = log_s.to(torch.float64)
                log_ratio = torch.nn.functional.softplus(log_t - ls)  # log(1 + D_b / S)
                delta = torch.exp(log_t - torch.logaddexp(ls, log_t))
                b = bound(delta, log_ratio, value, act).to(torch.float64)
                ok = b <= tol if valid is None else (b <= tol) & valid
                lse[act[ok]], val[act[ok]], cert[act[ok]] = log_s[ok], value[ok], b[ok]
                # grow K only where the dropped fraction is already small; the rest go to the exact kernel at
                # once (measured: doubling up to k_max at large sigma cost 10x the exact kernel)
                hopeless = ~ok & (delta > self.give_up)
                gave_up.append(act[hopeless])
                still.append(act[~ok & ~hopeless])
            active = torch.cat(still)
            rest.append(torch.cat(gave_up))
            k *= 2
        active = torch.cat(rest + [active])
        self.last_fraction_truncated = 1.0 - active.numel() / max(N, 1)
        if active.numel():
            lse[active], val[active] = exact(active)
        return lse, val, float(cert.max()) if N else 0.0


def log_count(n: int, k: int) -> float:
    """``log(n - k)`` (``-inf`` when nothing is dropped)."""
    return math.log(n - k) if n > k else -math.inf
