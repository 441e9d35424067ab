"""Exact nearest-neighbour search: FAISS (exact flat search, float32) finds candidates, distances are then
recomputed directly in float64. FAISS's squared distances use the GEMM form in float32 and lose precision for
near-duplicates -- exactly the memorized samples this library measures -- so the refinement matters: after it a
sample 1e-4 away from a training image in d = 3072 has its distance right to ~1e-12 relative.

Streaming: the training set may be a tensor, an array, a memory-mapped ``.npy``
(``np.load(path, mmap_mode="r", allow_pickle=False)``) or the ``.npy`` path itself. It is never copied whole: it
is read in chunks of
``chunk_bytes``; each chunk is searched for every query's ``k + candidates`` nearest rows and merged into a running
list of the ``k + candidates`` nearest by FAISS's float32 distance; a candidate that enters the list is refined in
float64 while its chunk is in memory; at the end the list is re-ranked by the float64 distances. Ties go to the
smaller index, so the result is the one of a single search over the whole set, whatever the chunking. Extra
memory: one chunk (and its centred float32 copy), one block of queries and fixed-size refinement blocks -- well under
256 MB plus a chunk at the defaults, whatever the set's size.
A set held in memory as a tensor (or one that fits in one chunk) is prepared once: its centred float32 copy is
kept (1x the set's size more for float32 data, filled chunk by chunk; ``keep=False`` turns it off) and searched in
one piece, so repeated searches (samplers) cost one FAISS call; a memory-mapped set is re-read at each search.

Sharding: under ``torchrun`` (a ``torch.distributed`` group with more than one rank) each rank
searches only its contiguous slice of the training set; the per-rank lists (global indices, float32 and float64
distances) are merged after an ``all_gather`` into exactly the one-process list. ``search`` is then a collective:
every rank calls it with the same queries. ``shard=False`` keeps a search local.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..data.rows import CHUNK_BYTES, Rows, column_sums
from ..device import resolve_device
from ..distributed import all_gather, all_reduce_sum, dist_info, shard_bounds
from ..errors import ConfigError, ShapeError

#: bytes of one float64 refinement block (candidate rows of a block of queries)
REFINE_BYTES = 8 << 20
#: bytes of one float32 distance block on the torch (CUDA) path
DIST_BYTES = 64 << 20


def merge_topk(dist: torch.Tensor, idx: torch.Tensor, k: int, *extra: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The ``k`` smallest of each row of ``dist`` (Q, M) with their ``idx`` (and the matching entries of each
    ``extra`` (Q, M) array); ties go to the smaller index."""

    def take(o, *ts):
        return [t.gather(1, o) for t in ts]

    o = idx.argsort(dim=1, stable=True)
    dist, idx, *extra = take(o, dist, idx, *extra)
    o = dist.argsort(dim=1, stable=True)[:, :k]
    return tuple(take(o, dist, idx, *extra))


def _torch_knn(qc: torch.Tensor, xc: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact float32 flat search with torch (the GEMM form, as FAISS does), blocked over the queries."""
    xn = xc.square().sum(1)
    step = max(1, DIST_BYTES // (4 * xc.shape[0]))
    ds, ids = [], []
    for s in range(0, qc.shape[0], step):
        q = qc[s : s + step]
        d2 = torch.addmm(xn[None, :] + q.square().sum(1, keepdim=True), q, xc.T, alpha=-2.0)
        d, i = d2.topk(k, dim=1, largest=False)
        ds.append(d)
        ids.append(i)
    return torch.cat(ds), torch.cat(ids)


def _flat_knn(qc: torch.Tensor, xc: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(squared float32 distances, local indices)`` of the ``k`` nearest rows of ``xc`` for each row of ``qc``:
    FAISS's exact search on the CPU, the same GEMM form in torch on a GPU."""
    if qc.device.type != "cpu":
        return _torch_knn(qc, xc, k)
    # lazy: faiss loads only when a search runs
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
    between searches, in one piece (default: for in-memory tensors and sets of one chunk; never by default for
    memory maps).
    """

    def __init__(
        self,
        train,
        *,
        candidates: int = 8,
        chunk_bytes: int = CHUNK_BYTES,
        shard: bool | None = None,
        device="cpu",
        keep: bool | None = None,
    ):
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
        for _, blk in self.rows.chunks(self.lo, self.hi, self.chunk_bytes):  # streamed, checked for NaN/Inf
            total += column_sums(blk)
        if world > 1:
            total = all_reduce_sum(total)
        self.center = total / self.n  # (D,) float64, over the whole set
        self._kept = None
        if keep is None:
            keep = isinstance(self.rows.data, torch.Tensor) or self.hi - self.lo <= self.rows.chunk_rows(
                self.chunk_bytes
            )
        if keep:  # one prepared chunk: the slice (a view of a tensor) and its centred float32 copy
            xc = torch.empty(self.hi - self.lo, self.rows.dim, dtype=torch.float32, device=self.device)
            for start, _, part in self._chunks():
                xc[start - self.lo : start - self.lo + part.shape[0]] = part
            self._kept = [(self.lo, self.rows.block(self.lo, self.hi).to(self.device), xc)]

    def _chunks(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(start, rows on device, centred float32 rows)`` of this rank's slice."""
        if self._kept is not None:
            yield from self._kept
            return
        c = self.center.to(self.device)
        c32, buf = c.float(), None
        for start, blk in self.rows.chunks(self.lo, self.hi, self.chunk_bytes):
            blk = blk.to(self.device)
            if buf is None:  # one buffer for the centred chunks of this pass (no allocation per chunk)
                buf = torch.empty(blk.shape, dtype=torch.float32, device=self.device)
            xc = buf[: blk.shape[0]]
            if blk.dtype == torch.float64:
                xc.copy_(blk - c)
            else:
                torch.sub(blk, c32, out=xc)
            yield start, blk, xc

    def _refine(self, q: torch.Tensor, rows: torch.Tensor, start: int, idx: torch.Tensor, d64: torch.Tensor) -> None:
        """Fill the NaN entries of ``d64`` (candidates that just entered the running list, from the chunk ``rows``
        starting at ``start``) with exact float64 distances to the queries ``q``, in blocks of ``REFINE_BYTES``."""
        qi, kj = torch.isnan(d64).nonzero(as_tuple=True)
        step = max(1, REFINE_BYTES // (8 * q.shape[1]))
        for s in range(0, qi.numel(), step):
            a, b = qi[s : s + step], kj[s : s + step]
            cand = rows[idx[a, b] - start].to(torch.float64)  # (m, D)
            d64[a, b] = cand.sub_(q[a].to(torch.float64)).norm(dim=1)

    def _search_block(self, q: torch.Tensor, kk: int, exact: bool) -> tuple[torch.Tensor, ...]:
        """This rank's running list of the ``kk`` nearest rows by FAISS's float32 distance (ties: smaller index),
        as ``(squared float32 distances, global indices, float64 distances)``; a candidate is refined in float64
        when it enters the list, while its chunk is in memory (so each row is read once per search)."""
        # centred in float64 block by block: no float64 copy of the whole query block
        q, c = q.to(self.device), self.center.to(self.device)
        qc = torch.empty(q.shape, dtype=torch.float32, device=self.device)
        step = max(1, REFINE_BYTES // (8 * q.shape[1]))
        for s in range(0, q.shape[0], step):
            qc[s : s + step] = q[s : s + step].to(torch.float64) - c
        shape = (q.shape[0], kk)
        run_d2 = torch.full(shape, float("inf"), dtype=torch.float32, device=self.device)
        run_i = torch.full(shape, -1, dtype=torch.long, device=self.device)
        run_d64 = torch.full(shape, float("inf"), dtype=torch.float64, device=self.device)
        for start, rows, xc in self._chunks():
            if xc.shape[0] == 0:  # an empty slice (more ranks than rows)
                continue
            d2, local = _flat_knn(qc, xc, min(kk, xc.shape[0]))
            new = torch.full(d2.shape, float("nan"), dtype=torch.float64, device=self.device)
            run_d2, run_i, run_d64 = merge_topk(
                torch.cat([run_d2, d2.to(self.device)], 1),
                torch.cat([run_i, local.to(self.device) + start], 1),
                kk,
                torch.cat([run_d64, new], 1),
            )
            if exact:
                self._refine(q, rows, start, run_i, run_d64)
        return run_d2.cpu(), run_i.cpu(), run_d64.cpu()

    def search(self, queries, k: int = 1, *, exact_refine: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
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
        parts = [self._search_block(blk, kk, exact_refine) for _, blk in qrows.chunks(chunk_bytes=self.chunk_bytes)]
        d2, idx, d64 = (torch.cat([p[j] for p in parts]) for j in range(3))
        if self.world > 1:  # the ranks' lists together, then the same global float32 top-kk as one process
            d2, idx, d64 = (torch.cat(all_gather(t), 1) for t in (d2, idx, d64))
            d2, idx, d64 = merge_topk(d2, idx, kk, d64)
        if not exact_refine:
            return d2.to(torch.float64).clamp_min(0).sqrt(), idx
        return merge_topk(d64, idx, k)


def nearest_neighbors(queries, train, k: int = 2, *, exact_refine: bool = True):
    """(dist (Q, k) float64, idx (Q, k)) of the ``k`` nearest training points of each query (any trailing shape)."""
    return NeighborIndex(train).search(queries, k, exact_refine=exact_refine)
