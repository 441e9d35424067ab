"""Exact nearest-neighbour search: FAISS (exact flat search, float32) finds candidates, distances are then
recomputed directly in float64. FAISS's squared distances use the GEMM form in float32 and lose precision for
near-duplicates -- exactly the memorized samples this library measures -- so the refinement matters: after it a
sample 1e-4 away from a training image in d = 3072 has its distance right to ~1e-12 relative.

Streaming (issue 9, item 1): the training set may be a tensor, an array, a memory-mapped ``.npy``
(``np.load(path, mmap_mode="r")``) or the ``.npy`` path itself. It is never copied whole: it is read in chunks of
``chunk_bytes``; each chunk is searched for every query's ``k + candidates`` nearest rows, those are refined in
float64 while the chunk is in memory, and the running top-``k`` is merged (ties broken by the smaller index, so the
result does not depend on the chunking). Extra memory: one chunk (and its centred float32 copy), one block of
queries and fixed-size refinement blocks -- well under 256 MB plus a chunk at the defaults, whatever the set's size.
A set held in memory as a tensor (or one that fits in one chunk) has its centred float32 chunks prepared once and
kept (at most 1x the set's size more; ``keep=False`` turns it off), so repeated searches (samplers) do not redo it;
a memory-mapped set is re-read at each search.

Sharding (issue 9, item 4): under ``torchrun`` (a ``torch.distributed`` group with more than one rank) each rank
searches only its contiguous slice of the training set; the per-rank top-``k`` lists, with global indices and float64
distances, are merged exactly after an ``all_gather``. ``search`` is then a collective: every rank calls it with
the same queries. ``shard=False`` keeps a search local.
"""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

import torch

from ..data.rows import CHUNK_BYTES, Rows
from ..device import resolve_device
from ..distributed import all_gather, all_reduce_sum, dist_info, shard_bounds
from ..errors import ConfigError, ShapeError

#: bytes of one float64 refinement block (candidate rows of a block of queries)
REFINE_BYTES = 32 << 20
#: bytes of one float32 distance block on the torch (CUDA) path
DIST_BYTES = 64 << 20


def merge_topk(dist: torch.Tensor, idx: torch.Tensor, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` smallest of each row of ``dist`` (Q, M) with their ``idx``; ties go to the smaller index."""
    o = idx.argsort(dim=1, stable=True)
    dist, idx = dist.gather(1, o), idx.gather(1, o)
    o = dist.argsort(dim=1, stable=True)[:, :k]
    return dist.gather(1, o), idx.gather(1, o)


def _torch_knn(qc: torch.Tensor, xc: torch.Tensor, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Exact float32 flat search with torch (the GEMM form, as FAISS does), blocked over the queries."""
    xn = xc.square().sum(1)
    step = max(1, DIST_BYTES // (4 * xc.shape[0]))
    ds, ids = [], []
    for s in range(0, qc.shape[0], step):
        q = qc[s:s + step]
        d2 = torch.addmm(xn[None, :] + q.square().sum(1, keepdim=True), q, xc.T, alpha=-2.0)
        d, i = d2.topk(k, dim=1, largest=False)
        ds.append(d)
        ids.append(i)
    return torch.cat(ds), torch.cat(ids)


def _flat_knn(qc: torch.Tensor, xc: torch.Tensor, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(squared float32 distances, local indices)`` of the ``k`` nearest rows of ``xc`` for each row of ``qc``:
    FAISS's exact search on the CPU, the same GEMM form in torch on a GPU."""
    if qc.device.type != "cpu":
        return _torch_knn(qc, xc, k)
    import faiss

    d2, idx = faiss.knn(qc.numpy(), xc.numpy(), k)
    return torch.from_numpy(d2), torch.from_numpy(idx).long()


class NeighborIndex:
    """Build once over ``train`` (N, *dims): a tensor, array, memory map or ``.npy`` path; query many times:
    ``index.search(queries, k)`` -> (dist, idx).

    ``candidates`` extra neighbours are fetched from FAISS and re-ranked with exact float64 distances, which also
    makes ties and near-ties come out in the right order. ``chunk_bytes``: rows streamed at a time (as float32).
    ``shard``: search only this rank's slice and merge across ranks (default: when a process group with more than
    one rank is running, e.g. under ``torchrun``). ``device``: where chunks are searched (``cpu``: FAISS; CUDA: the
    same exact search in torch); results come back on the CPU. ``keep``: hold the prepared (centred float32) chunks
    between searches (default: for in-memory tensors and sets of one chunk; never by default for memory maps).
    """

    def __init__(self, train, *, candidates: int = 8, chunk_bytes: int = CHUNK_BYTES, shard: Optional[bool] = None,
                 device="cpu", keep: Optional[bool] = None):
        self.rows = Rows(train, "train")
        self.shape, self.n = self.rows.shape, self.rows.n
        self.candidates, self.chunk_bytes = int(candidates), int(chunk_bytes)
        self.device = resolve_device(device)
        rank, world = dist_info() if shard is not False else (0, 1)
        if shard is False or world == 1:
            rank, world = 0, 1
        self.rank, self.world = rank, world
        self.lo, self.hi = shard_bounds(self.n, rank, world)
        total = torch.zeros(self.rows.dim, dtype=torch.float64)
        for _, blk in self.rows.chunks(self.lo, self.hi, self.chunk_bytes):   # streamed, checked for NaN/Inf
            total += blk.sum(0, dtype=torch.float64).cpu()
        if world > 1:
            total = all_reduce_sum(total)
        self.center = total / self.n                                   # (D,) float64, over the whole set
        self._kept = None
        if keep is None:
            keep = isinstance(self.rows.data, torch.Tensor) or \
                self.hi - self.lo <= self.rows.chunk_rows(self.chunk_bytes)
        if keep:
            self._kept = list(self._chunks())                          # prepared once

    def _chunks(self) -> Iterator[Tuple[int, torch.Tensor, torch.Tensor]]:
        """``(start, rows on device, centred float32 rows)`` of this rank's slice."""
        if self._kept is not None:
            yield from self._kept
            return
        c = self.center.to(self.device)
        for start, blk in self.rows.chunks(self.lo, self.hi, self.chunk_bytes):
            blk = blk.to(self.device)
            xc = (blk - c).float() if blk.dtype == torch.float64 else blk - c.float()
            yield start, blk, xc.contiguous()

    def _refine(self, q64: torch.Tensor, rows: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        """Exact float64 distances |q_i - rows[local[i, j]]| in blocks of ``REFINE_BYTES``."""
        out = torch.empty(local.shape, dtype=torch.float64, device=q64.device)
        step = max(1, REFINE_BYTES // (8 * local.shape[1] * q64.shape[1]))
        for s in range(0, q64.shape[0], step):
            cand = rows[local[s:s + step]].to(torch.float64)          # (b, kk, D)
            out[s:s + step] = (cand - q64[s:s + step, None, :]).norm(dim=2)
        return out

    def _search_block(self, q: torch.Tensor, k: int, kk: int, exact: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        q64 = q.to(self.device, torch.float64)
        qc = (q64 - self.center.to(self.device)).float().contiguous()
        best_d = torch.full((q.shape[0], k), float("inf"), dtype=torch.float64, device=self.device)
        best_i = torch.full((q.shape[0], k), -1, dtype=torch.long, device=self.device)
        for start, rows, xc in self._chunks():
            d2, local = _flat_knn(qc, xc, min(kk, xc.shape[0]))
            local = local.to(self.device)
            d = self._refine(q64, rows, local) if exact else d2.to(self.device, torch.float64).clamp_min(0).sqrt()
            best_d, best_i = merge_topk(torch.cat([best_d, d], 1), torch.cat([best_i, local + start], 1), k)
        return best_d.cpu(), best_i.cpu()

    def search(self, queries, k: int = 1, *, exact_refine: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
        """Distances (float64, (Q, k)) and indices ((Q, k)) of the ``k`` nearest training points. ``queries``: a
        tensor or array (Q, *dims), or a memory map / ``.npy`` path (then streamed in blocks too)."""
        qrows = Rows(queries, "queries")
        if qrows.shape != self.shape:
            raise ShapeError(f"queries have shape {qrows.shape}; training set {self.shape}")
        if not 1 <= k <= self.n:
            raise ConfigError(f"k must be in [1, {self.n}]; got {k}")
        if self.world > 1 and len({tuple(t.tolist()) for t in all_gather(torch.tensor([qrows.n, k]))}) > 1:
            raise ConfigError("a sharded neighbour search is collective: every rank must pass the same queries and k")
        kk = min(self.n, k + self.candidates) if exact_refine else k
        parts = [self._search_block(blk, k, kk, exact_refine) for _, blk in qrows.chunks(chunk_bytes=self.chunk_bytes)]
        dist = torch.cat([p[0] for p in parts])
        idx = torch.cat([p[1] for p in parts])
        if self.world > 1:
            dist, idx = merge_topk(torch.cat(all_gather(dist), 1), torch.cat(all_gather(idx), 1), k)
        return dist, idx


def nearest_neighbors(queries, train, k: int = 2, *, exact_refine: bool = True):
    """(dist (Q, k) float64, idx (Q, k)) of the ``k`` nearest training points of each query (any trailing shape)."""
    return NeighborIndex(train).search(queries, k, exact_refine=exact_refine)
