"""Candidate search with a distance certificate for neighbour truncation (:mod:`~smoothscore.scores.truncation`).

Both indexes answer ``search(u, k, reach) -> (idx, tau, tau_k)``: ``idx`` (q, k) local rows, and ``tau`` (q,) such
that **every row not in ``idx`` has** ``|u - v|^2 >= tau`` (float64, all rounding covered by margins).

Embedding: with P the top-p principal directions (orthonormal rows, from a subsample) and centred ``v``, ``u``,

    |u - v|^2 = |P(u - v)|^2 + |P_perp(u - v)|^2 >= |P u - P v|^2 + (|P_perp u| - |P_perp v|)^2 =: lb(u, v),

the squared distance between ``e(u) = [P u, |P_perp u|]`` and ``e(v) = [P v, |P_perp v|]`` (p + 1 dims, float32
in FAISS, float64 elsewhere).

* :class:`FlatLowerBoundIndex` (FAISS ``IndexFlatL2``): the k smallest ``lb``; every other row has ``lb`` at
  least the k-th one, less ``margin = 1e-5 (|u|^2 + R^2)`` for FAISS's float32 ``|a|^2 + |b|^2 - 2 a.b``
  (``|e(u)| = |u|``, ``|e(v)| <= R``). Linear in n per query.
* :class:`IVFLowerBoundIndex` (FAISS ``IndexIVFFlat``, k-means cells over the embeddings): cell j has centroid
  ``c_j``, radius ``rho_j = max_{v in j} |P v - c_j^P|`` and interval ``[lo_j, hi_j]`` of ``|P_perp v|`` over its
  members, computed in float64 from the stored float32 embeddings after assignment and widened by ``2^-21 R``
  (float32 rounding of an embedding moves it by at most ``2^-24 |e(v)| <= 2^-24 R``; the bounds are then stored in
  float32). By the triangle inequality in the P-part and the interval in the last coordinate, every member v of
  cell j has

      lb(u, v) >= L_j(u) = max(0, |P u - c_j^P| - rho_j)^2 + dist(|P_perp u|, [lo_j, hi_j])^2,

  evaluated in float32 with ``|P u - c_j^P|^2`` from the expansion lowered by ``3e-5 (|P u|^2 + |c_j^P|^2)`` (more
  than its float32 error for p <= 64) and the remaining float32 rounding (relative ~1e-7 of
  ``(|u| + R)^2``) inside ``margin``. A query with a finite ``reach`` visits every cell with
  ``L_j <= reach + margin``; FAISS scans their rows (``search_preassigned``: exact float32 differences) and returns
  the k smallest ``lb``; ``tau = min(k-th visited lb, min over unvisited cells of L_j) - margin``: rows of visited
  cells not returned are covered by the first term, rows of unvisited cells by the second. A query without a reach
  visits the ``n_probe`` cells of nearest centroid (FAISS over the centroids) and gets ``tau = 0``. Either way more
  cells of nearest centroid are added while fewer than k rows are visited. ``tau_k`` is the first term alone
  (less the margin): what the truncation uses to choose between more cells and a larger k.

For data near a p-dimensional subspace the cells are small in the p directions that matter and a query visits few
cells: sublinear in n. ``make_index`` picks the IVF from ``IVF_MIN_POINTS`` rows when p <= ``IVF_MAX_RANK``, else
the flat index; ``kind=`` forces either.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError

#: below this many rows the flat index is used by ``kind="auto"`` (docs/benchmarks.md)
IVF_MIN_POINTS = 20_000
#: ``kind="auto"`` uses the flat index above this PCA rank, where the cells no longer pay (docs/benchmarks.md)
IVF_MAX_RANK = 16
#: default cap on the IVF cells (k-means training and the per-query cell bounds grow with their number)
MAX_CELLS = 16_384


def principal_basis(
    points, rank: int | None = None, max_rank: int = 64, energy: float = 1e-4, sample: int = 2048
) -> torch.Tensor:
    """``P`` (p, D) float64 with orthonormal rows: the top principal directions of a ``sample``-point subsample;
    ``p = rank`` or (default) the smallest capturing all but ``energy`` of its variance, at most ``max_rank``."""
    n, D = points.n, points.dim
    pick = torch.linspace(0, n - 1, min(n, sample)).round().long().unique()
    sub = points.rows(pick.to(points.device), torch.float64)
    _, sv, vt = torch.linalg.svd(sub, full_matrices=False)
    if rank is None:
        e = sv**2
        tail = (e.sum() - torch.cumsum(e, 0)) / e.sum().clamp_min(1e-300)
        rank = int((tail > energy).sum()) + 1
    return vt[: max(1, min(int(rank), max_rank, D, vt.shape[0]))].contiguous()


class FlatLowerBoundIndex:
    """FAISS ``IndexFlatL2`` over the embeddings (module doc). ``basis``: P (default: :func:`principal_basis` with
    the remaining keywords)."""

    kind = "flat"

    def __init__(self, points, *, basis: torch.Tensor | None = None, **basis_kw):
        self.points = points
        n = points.n
        self.basis = principal_basis(points, **basis_kw) if basis is None else basis  # (p, D) float64
        self.rank = p = self.basis.shape[0]
        emb = np.empty((n, p + 1), dtype=np.float32)
        r2 = 0.0
        for a, v in points.chunks(torch.float64):
            e = self._embed(v)
            r2 = max(r2, float((e * e).sum(1).max()))
            emb[a : a + v.shape[0]] = e.cpu().numpy()
        self.r2max = max(r2, float(points.radius) ** 2)
        #: per-query rows scanned by the last search (mean) and cells visited (IVF)
        self.last_points, self.last_cells = float(n), 0.0
        self._build(emb)

    def _build(self, emb: np.ndarray) -> None:
        # lazy: faiss loads only when a search runs
        import faiss

        self.index = faiss.IndexFlatL2(emb.shape[1])
        self.index.add(emb)

    def _embed(self, v: torch.Tensor) -> torch.Tensor:
        v = v.to(device=self.basis.device, dtype=torch.float64)
        pv = v @ self.basis.T
        # |P_perp v|^2 = |v|^2 - |P v|^2 (one product; float64 cancellation moves the norm by <= ~1e-7 |v|, far
        # inside the float32 margins of the searches)
        res = ((v * v).sum(1, keepdim=True) - (pv * pv).sum(1, keepdim=True)).clamp_min_(0).sqrt_()
        return torch.cat([pv, res], 1)

    def _margin(self, e: torch.Tensor) -> torch.Tensor:
        """float32 rounding of FAISS's distances (``|e(u)| = |u|``, ``|e(v)| <= R``): a generous margin."""
        return 1e-5 * ((e * e).sum(1) + self.r2max)

    def _finish(self, d2: np.ndarray, idx: np.ndarray, bound: torch.Tensor | None, margin: torch.Tensor):
        tau_k = torch.as_tensor(d2[:, -1], dtype=torch.float64) - margin
        tau = tau_k if bound is None else torch.minimum(tau_k, bound - margin)
        dev = self.points.device
        return (
            torch.as_tensor(idx, dtype=torch.long, device=dev),
            tau.clamp_min(0).to(dev),
            tau_k.clamp_min(0).to(dev),
        )

    def search(self, u: torch.Tensor, k: int, reach: torch.Tensor | None = None):
        """``(idx (q, k), tau (q,), tau_k (q,))`` (module doc); ``reach`` is ignored (every row is scanned)."""
        e = self._embed(u).cpu()
        d2, idx = self.index.search(np.ascontiguousarray(e.numpy().astype(np.float32)), k)
        self.last_points, self.last_cells = float(self.points.n), 0.0
        return self._finish(d2, idx, None, self._margin(e))


class IVFLowerBoundIndex(FlatLowerBoundIndex):
    """FAISS ``IndexIVFFlat`` over the embeddings with certified cell bounds (module doc). ``nlist``: number of
    k-means cells (default ``n // 32``, at most ``MAX_CELLS``: docs/benchmarks.md); ``n_probe``: cells of
    nearest centroid visited by a query without a reach; ``niter``, ``seed``: k-means."""

    kind = "ivf"

    def __init__(self, points, *, nlist: int | None = None, n_probe: int = 8, niter: int = 10, seed: int = 0, **kw):
        self.nlist = int(nlist) if nlist is not None else max(1, min(points.n // 32, MAX_CELLS))
        if not 1 <= self.nlist <= points.n:
            raise ConfigError(f"nlist must be in [1, {points.n}]; got {nlist}")
        self.n_probe, self.niter, self.seed = max(1, int(n_probe)), int(niter), int(seed)
        super().__init__(points, **kw)

    def _build(self, emb: np.ndarray) -> None:
        # lazy: faiss loads only when a search runs
        import faiss

        n, d = emb.shape
        p, L = d - 1, self.nlist
        km = faiss.Kmeans(d, L, niter=self.niter, seed=self.seed, min_points_per_centroid=1, max_points_per_centroid=64)
        km.train(emb)
        quant = faiss.IndexFlatL2(d)
        quant.add(km.centroids)
        assign = np.ascontiguousarray(quant.search(emb, 1)[1][:, 0])
        self.index = faiss.IndexIVFFlat(quant, d, L)
        ids = np.arange(n, dtype=np.int64)  # named: swig_ptr does not keep its array alive
        self.index.add_core(n, faiss.swig_ptr(emb), faiss.swig_ptr(ids), faiss.swig_ptr(assign))
        self._quantizer = quant  # the IVF index does not own it
        # certified cell bounds: float64 from the stored float32 rows (in blocks), widened by their rounding and by
        # the float32 rounding of the bounds themselves (module doc)
        cen = torch.from_numpy(km.centroids)
        widen = 2.0**-21 * self.r2max**0.5
        rho = torch.zeros(L, dtype=torch.float64)
        lo, hi = torch.full((L,), torch.inf, dtype=torch.float64), torch.zeros(L, dtype=torch.float64)
        a_all = torch.from_numpy(assign)
        for s in range(0, n, 1 << 20):
            e = torch.from_numpy(emb[s : s + (1 << 20)]).to(torch.float64)
            a = a_all[s : s + e.shape[0]]
            rho.scatter_reduce_(0, a, (e[:, :p] - cen[a, :p].to(torch.float64)).norm(dim=1), "amax")
            lo.scatter_reduce_(0, a, e[:, p], "amin")
            hi.scatter_reduce_(0, a, e[:, p], "amax")
        self.counts = torch.bincount(a_all, minlength=L).to(torch.float64)
        self.rho, self.lo, self.hi = ((t + w).to(torch.float32) for t, w in ((rho, widen), (lo, -widen), (hi, widen)))
        self.cp = cen[:, :p].contiguous()
        self.cp2 = (self.cp.to(torch.float64) ** 2).sum(1).to(torch.float32)
        self.empty = self.counts == 0

    def cell_bounds(self, e: torch.Tensor) -> torch.Tensor:
        """Certified ``L_j(u)`` (q, nlist) float32 for embeddings ``e`` (module doc; empty cells ``+inf``)."""
        p = self.cp.shape[1]
        pu, t = e[:, :p].to(torch.float32), e[:, p:].to(torch.float32)
        u2 = (pu * pu).sum(1, keepdim=True)
        # float32 expansion, made a lower bound of |P u - c_j^P|^2 by 3e-5 (|P u|^2 + |c_j^P|^2)
        d2 = torch.addmm((1 - 3e-5) * (u2 + self.cp2), pu, self.cp.T, alpha=-2.0)
        d2.clamp_(min=0).sqrt_().sub_(self.rho).clamp_(min=0).square_()
        d2.add_(torch.maximum(self.lo - t, t - self.hi).clamp_(min=0).square_())
        return d2.masked_fill_(self.empty, torch.inf)

    def search(self, u: torch.Tensor, k: int, reach: torch.Tensor | None = None):
        """As :meth:`_search`, in blocks of queries whose cell bounds take at most ``2^22`` floats."""
        qb = max(1, (1 << 22) // self.nlist)
        if u.shape[0] <= qb:
            return self._search(u, k, reach)
        parts, stats = [], [0.0, 0.0]
        for a in range(0, u.shape[0], qb):
            parts.append(self._search(u[a : a + qb], k, None if reach is None else reach[a : a + qb]))
            stats[0] += self.last_cells * parts[-1][0].shape[0] / u.shape[0]
            stats[1] += self.last_points * parts[-1][0].shape[0] / u.shape[0]
        self.last_cells, self.last_points = stats
        return tuple(torch.cat(t) for t in zip(*parts))

    def _search(self, u: torch.Tensor, k: int, reach: torch.Tensor | None = None):
        """``(idx (q, k), tau (q,), tau_k (q,))`` (module doc): visits, for queries with a finite ``reach``, every
        cell with ``L_j <= reach + margin``; for the others the ``n_probe`` cells of nearest centroid, and those get
        ``tau = 0`` (the cells are not bounded) and ``tau_k``; more cells of nearest centroid where fewer than k rows
        were visited."""
        e = self._embed(u).cpu()
        q, L = e.shape[0], self.nlist
        e32 = np.ascontiguousarray(e.numpy().astype(np.float32))
        margin = self._margin(e)
        reach = torch.full((q,), -torch.inf) if reach is None else reach.cpu().to(torch.float64)
        bounded = torch.isfinite(reach)
        bound = torch.zeros(q, dtype=torch.float64)
        visit = torch.zeros(q, L, dtype=torch.bool)
        lb = None
        if bool(bounded.any()):  # these cells hold every row closer than reach, so the nearest rows seen before
            lb = self.cell_bounds(e[bounded])
            visit[bounded] = lb <= (reach[bounded] + margin[bounded]).to(torch.float32)[:, None]
        probe, m = ~bounded, min(self.n_probe, L)
        while True:
            if bool(probe.any()):  # the cells of nearest centroid (where the nearest rows are likely)
                near = torch.from_numpy(self._quantizer.search(e32[probe.numpy()], m)[1])
                visit[probe] |= torch.zeros_like(visit[probe]).scatter_(1, near, True)
            rows, cols = visit.nonzero(as_tuple=True)  # row-major
            held = torch.zeros(q, dtype=torch.float64).index_add_(0, rows, self.counts[cols])
            probe = held < k
            if not bool(probe.any()) or m == L:
                break
            m = min(2 * m, L)  # too few rows: more cells
        if lb is not None:  # min over unvisited cells (+inf: none left); float32 rounding within ``margin``
            bound[bounded] = lb.masked_fill_(visit[bounded], torch.inf).min(1).values.to(torch.float64)
        per = torch.bincount(rows, minlength=q)
        slot = torch.arange(rows.numel()) - (torch.cumsum(per, 0) - per)[rows]
        assign = torch.full((q, int(per.max())), -1, dtype=torch.long)
        assign[rows, slot] = cols
        self.index.nprobe = assign.shape[1]
        d2, idx = self.index.search_preassigned(e32, k, assign.numpy(), None)
        self.last_cells = float(per.to(torch.float64).mean())
        self.last_points = float(held.mean())
        return self._finish(d2, idx, bound, margin)


def check_kind(kind: str) -> str:
    """``kind`` if it names an index (``"auto"``, ``"dense"``, ``"flat"``, ``"ivf"``), else :class:`ConfigError`."""
    if kind not in ("auto", "dense", "flat", "ivf"):
        raise ConfigError(f"truncation_index must be 'auto', 'dense', 'flat' or 'ivf'; got {kind!r}")
    return kind


def resolve_kind(kind: str, n: int, rank: int | None = None) -> str:
    """``"dense"``, ``"flat"`` or ``"ivf"`` for ``n`` rows of PCA rank ``rank`` (``"auto"``: the dense index of
    :mod:`~smoothscore.search.dense_bound_index` below ``IVF_MIN_POINTS`` rows, IVF from there when the rank is at
    most ``IVF_MAX_RANK``, else flat)."""
    if check_kind(kind) == "auto":
        if n < IVF_MIN_POINTS:
            return "dense"
        return "ivf" if rank is None or rank <= IVF_MAX_RANK else "flat"
    return kind


def make_index(points, kind: str = "auto", **kw):
    """The lower-bound index for ``points`` (kind: :func:`resolve_kind`). Keywords go to :func:`principal_basis`
    (``rank``, ``max_rank``, ...) and to the IVF index (``nlist``, ``n_probe``, ...; ignored by the flat one)."""
    ivf_kw = {a: kw.pop(a) for a in ("nlist", "n_probe", "niter", "seed") if a in kw}
    basis = None
    if check_kind(kind) == "auto" and points.n >= IVF_MIN_POINTS:
        basis = principal_basis(points, **kw)
    resolved = resolve_kind(kind, points.n, None if basis is None else basis.shape[0])
    if resolved == "dense":
        # lazy: cycle: dense_bound_index builds on FlatLowerBoundIndex
        from .dense_bound_index import DenseLowerBoundIndex

        return DenseLowerBoundIndex(points, basis=basis, **kw)
    if resolved == "flat":
        return FlatLowerBoundIndex(points, basis=basis, **kw)
    return IVFLowerBoundIndex(points, basis=basis, **ivf_kw, **kw)
