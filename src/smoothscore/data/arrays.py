"""Training sets read in streamed chunks: in-memory tensors/arrays, ``np.memmap`` and paths to ``.npy`` files.

:class:`PointSet` is the one place the exact scores touch their training set. It never copies the whole set:

* an in-memory tensor or array is kept as given (moved once only when it lives on another device);
* a ``.npy`` path, or an array opened with ``np.load(path, mmap_mode="r", allow_pickle=False)``, stays on disk
  and is read one chunk at a time on every pass, so a set larger than RAM works;
* the centre ``c`` (mean) and the squared centred norms ``|y_j - c|^2 / 2`` are accumulated chunkwise in float64;
  the set then costs O(M) extra memory (one float64 per point), never a float64 or centred copy.

Each call re-centres one chunk at a time (``y_j - c`` in the compute dtype, with ``c`` rounded once to that dtype,
as in the foundation's precision contract: the differences of nearby float32 numbers are exact, Sterbenz).

Small sets only: the augmented keys ``[y_j - c, |y_j - c|^2 / 2 (, log pi_j)]`` of the CPU flash kernel are built
once per dtype and kept (:meth:`PointSet.keys`) when they fit one streamed chunk (``chunk_bytes``, 32 MB by
default) — at most one chunk's size per dtype, so the memory bounds of docs/benchmarks.md (building adds
<= 1.25x an in-memory set; a memory-mapped set adds <= 256 MB + one chunk) still hold. Larger or memory-mapped sets
that do not fit are re-read and re-centred chunk by chunk on every call. The rows are taken to be unchanged after
the build (as for the centre and the norms computed then).

Sharding: ``shard=(rank, world)`` keeps the contiguous slice ``[n * rank // world, n * (rank + 1) // world)``
of the rows; when a ``torch.distributed`` process group is given the centre is all-reduced so that every rank
centres (and rounds) with the same ``c`` (see :mod:`smoothscore.scores.sharding`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch

from .._checks import as_tensor
from ..distributed import all_reduce_max, all_reduce_sum, shard_bounds
from ..errors import DataError, NonFiniteError, ShapeError
from .rows import CHUNK_BYTES, check_rows, file_rows, open_npy, read_rows

_NP = {torch.float32: np.float32, torch.float64: np.float64}


def open_array(data, name: str = "train"):
    """A tensor, an in-memory numpy array, or a read-only memmap (``.npy`` path, :func:`~.rows.open_npy`) — never a
    copy of the data."""
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not path.endswith(".npy"):
            raise DataError(f"{name}: only .npy paths can be memory-mapped; got {path!r}")
        return open_npy(path)
    if isinstance(data, np.ndarray):
        if data.dtype.kind not in "fiu":
            raise ShapeError(f"{name}: numeric array expected; got dtype {data.dtype}")
        return data
    return as_tensor(data, name).detach()


class PointSet:
    """Chunked access to ``M`` training points of shape ``dims`` (flattened to ``D``) in one compute dtype.

    Attributes: ``n`` (rows held by this process), ``n_total`` (all ranks), ``offset`` (global index of the first
    row held), ``dim``, ``data_shape``, ``center`` (float64, (D,)), ``center_c`` (``center`` in the compute dtype),
    ``half_sq`` (float64, (n,): ``|y_j - c|^2 / 2`` of the dtype-rounded centred rows), ``radius``
    (``max_j |y_j - c|`` over all ranks), ``on_disk``.
    """

    def __init__(
        self,
        data,
        *,
        dtype: torch.dtype,
        device: torch.device,
        name: str = "train",
        shard: tuple[int, int] | None = None,
        group=None,
        chunk_bytes: int = CHUNK_BYTES,
    ):
        arr = check_rows(open_array(data, name), name)
        self.name, self.dtype, self.device = name, dtype, device
        self.data_shape = tuple(int(s) for s in arr.shape[1:])
        self.dim = int(np.prod(self.data_shape))
        self.n_total = int(arr.shape[0])
        rank, world = shard if shard is not None else (0, 1)
        lo, hi = shard_bounds(self.n_total, rank, world, check=True)
        self.offset, self.n = lo, hi - lo
        self.on_disk = isinstance(arr, np.memmap)
        self._file = None
        if isinstance(arr, np.ndarray) and not self.on_disk:
            arr = torch.from_numpy(np.ascontiguousarray(arr)) if arr.dtype.kind == "f" else torch.as_tensor(arr)
        whole = None  # all rows, when an explicit shard has no group to all-reduce the centre over
        if isinstance(arr, torch.Tensor):
            if not torch.is_floating_point(arr):
                arr = arr.to(torch.get_default_dtype())
            if group is None and (hi - lo) < self.n_total:
                whole = arr.reshape(self.n_total, self.dim)
            arr = arr.reshape(self.n_total, self.dim)[lo:hi]
            if arr.device != device:  # one move to the compute device (dtype kept: converted per chunk)
                arr = arr.to(device)
        else:
            self._file = file_rows(arr)  # chunks are read from the file (page cache), not through the mapping
            self._base = arr.reshape(self.n_total, self.dim)
            arr = self._base[lo:hi]
            if group is None and (hi - lo) < self.n_total:
                whole = self._base
        self._data = arr
        itemsize = torch.finfo(dtype).bits // 8
        self.chunk_rows = max(1, min(self.n, int(chunk_bytes) // (itemsize * self.dim)))
        self.group = group
        # pass 1: finiteness, float64 sums of the rows and of their squares (all-reduced over ranks), through one
        # preallocated float64 buffer (fresh per-chunk temporaries fragment the heap and RSS grows). An explicit
        # shard without a process group sums every row itself: the centre is then the same global mean as under
        # torchrun (the slice's partial fields merge with merge_partial_stats), not local sum / n_total.
        build_rows = max(1, self.chunk_rows // 8)
        n_pass = self.n_total if whole is not None else self.n
        buf = torch.empty(min(build_rows, n_pass), self.dim, dtype=torch.float64, device=device)
        stats = torch.zeros(self.dim + 1, dtype=torch.float64, device=device)
        for a in range(0, n_pass, build_rows):
            y = self._raw(a, min(n_pass, a + build_rows), dtype, whole)
            if not bool(torch.isfinite(y).all()):
                raise NonFiniteError(f"{name} contains NaN/Inf value(s)")
            b = buf[: y.shape[0]]
            b.copy_(y)
            stats[: self.dim] += b.sum(0)
            stats[self.dim] += b.mul_(b).sum()
        stats = all_reduce_sum(stats, group)
        mean = stats[: self.dim] / self.n_total
        spread2 = float(stats[self.dim]) / self.n_total - float(mean @ mean)  # mean |y - c|^2
        # centre: the float64 mean, or exactly 0 when the mean is already within 1/8 of the RMS spread of the
        # origin (centring would change the rounding of the logits by < ~12% and the rows can then be used as
        # stored, without a per-call centred copy)
        self.centred = float(mean @ mean) > spread2 / 64
        self.center = mean if self.centred else torch.zeros_like(mean)
        self.center_c = self.center.to(dtype)
        self._scratch, self._scratch_whole = None, False
        self._chunk_bytes = int(chunk_bytes)
        self._half_sq_as: dict[torch.dtype, torch.Tensor] = {}  # half_sq per compute dtype (O(n) each)
        self._keys: dict[tuple, tuple] = {}  # (dtype, extra) -> (log weights, cached augmented keys)
        # pass 2: half squared centred norms of the rows as the kernel will see them (dtype-rounded), squared and
        # summed in float64 in one preallocated buffer (fresh per-chunk temporaries fragment the heap and RSS grows)
        self.half_sq = torch.empty(self.n, dtype=torch.float64, device=device)
        for a, v in self.chunks(dtype, rows=build_rows):
            b = buf[: v.shape[0]]
            b.copy_(v)
            b.mul_(b)
            torch.sum(b, 1, out=self.half_sq[a : a + v.shape[0]])
        del buf
        self.half_sq.mul_(0.5)
        rad = self.half_sq.max() if self.n else torch.zeros((), dtype=torch.float64, device=device)
        self.radius = float(all_reduce_max(rad, group).mul(2).sqrt())

    # ------------------------------------------------------------------ access
    def _raw(self, a: int, b: int, dtype: torch.dtype, whole=None) -> torch.Tensor:
        """Local rows ``[a, b)`` in ``dtype`` on the device (global rows of ``whole``, the unsliced set, if given)."""
        if whole is not None and isinstance(whole, torch.Tensor):
            return whole[a:b].to(device=self.device, dtype=dtype)
        if isinstance(self._data, torch.Tensor):
            return self._data[a:b].to(device=self.device, dtype=dtype)
        lo = 0 if whole is not None else self.offset
        d = read_rows(self._base, lo + a, lo + b, _NP[dtype], file=self._file)  # a fresh, writable copy
        return torch.from_numpy(d).to(self.device)

    def chunks(
        self, dtype=None, rows: int | None = None, extra: int = 0, reuse: bool = False
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(start, v)`` with ``v[:, :D] = y[start:start + rows] - c`` (centred, compute dtype unless given);
        ``extra`` more columns are allocated (left uninitialised) for the caller to fill. With ``reuse=True`` the
        chunks are written into one scratch buffer kept by the set (no page faults per call; the caller must not
        keep a chunk past the next one — never under autograd, and may only write the ``extra`` columns, with the
        same values every call: a set that fits the scratch is filled once and reused); stored rows that need no
        centring come as views."""
        dtype = dtype or self.dtype
        c = self.center_c if dtype == self.dtype else self.center.to(dtype)
        stored = isinstance(self._data, torch.Tensor) and self._data.dtype == dtype  # _raw returns stored rows
        rows = rows or self.chunk_rows
        width = self.dim + extra
        for a in range(0, self.n, rows):
            b = min(self.n, a + rows)
            y = self._raw(a, b, dtype)
            if not extra and (not self.centred or not stored):
                yield a, y.sub_(c) if self.centred else y  # a fresh copy (file / conversion) or a view
                continue
            if reuse:
                if (
                    self._scratch is None
                    or self._scratch.dtype != dtype
                    or self._scratch.shape[1] != width
                    or self._scratch.shape[0] < b - a
                ):
                    self._scratch = torch.empty(min(rows, self.n), width, dtype=dtype, device=self.device)
                    self._scratch_whole = False
                buf = self._scratch[: b - a]
                if a == 0 and b == self.n:  # the whole set fits the scratch: fill it once, reuse it
                    if not self._scratch_whole:
                        self._fill(buf, y, c)
                        self._scratch_whole = True
                    yield a, buf
                    continue
            else:
                buf = torch.empty(b - a, width, dtype=dtype, device=self.device)
            self._fill(buf, y, c)
            yield a, buf

    def half_sq_as(self, dtype: torch.dtype) -> torch.Tensor:
        """``half_sq`` rounded to ``dtype`` (converted once per dtype and kept: n values)."""
        t = self._half_sq_as.get(dtype)
        if t is None:
            t = self._half_sq_as[dtype] = self.half_sq.to(dtype)
        return t

    def keys(self, dtype: torch.dtype, logw: torch.Tensor | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(start, k)``: augmented keys ``k = [y - c, |y - c|^2 / 2]`` (plus a column ``logw`` when given:
        local log weights (n,)) of the rows ``start:start + len(k)``, in ``dtype``, for the CPU flash kernel.

        Read-only for the caller. When the whole set's keys fit in one chunk (``chunk_bytes``) they are built on the
        first call and kept (one tensor per dtype; rebuilt if another ``logw`` object is passed), so later calls on
        a small set prepare nothing; otherwise they are streamed through the set's scratch chunk (valid until the
        next chunk) and nothing is kept."""
        e = 1 if logw is None else 2
        width = self.dim + e
        hit = self._keys.get((dtype, e))
        if hit is not None and hit[0] is logw:
            yield 0, hit[1]
            return
        hs = self.half_sq_as(dtype)
        lw = None if logw is None else logw.to(dtype)
        small = self.n * width * (torch.finfo(dtype).bits // 8) <= self._chunk_bytes
        if small:
            k = torch.empty(self.n, width, dtype=dtype, device=self.device)
            self._fill(k, self._raw(0, self.n, dtype), self.center_c if dtype == self.dtype else self.center.to(dtype))
            parts = [(0, k)]
        else:
            parts = self.chunks(dtype, extra=e, reuse=True)
        for a, k in parts:
            b = a + k.shape[0]
            k[:, self.dim] = hs[a:b]
            if lw is not None:
                k[:, self.dim + 1] = lw[a:b]
            if small:
                self._keys[(dtype, e)] = (logw, k)
            yield a, k

    def _fill(self, buf, y, c):
        if self.centred:
            torch.sub(y, c, out=buf[:, : self.dim])
        else:
            buf[:, : self.dim].copy_(y)

    def rows(self, idx: torch.Tensor, dtype=None, *, centred: bool = True) -> torch.Tensor:
        """Centred rows ``y[idx] - c`` (or the rows as stored, ``centred=False``) for local indices ``idx`` (any
        shape) -> ``(*idx.shape, D)``."""
        dtype = dtype or self.dtype
        flat = idx.reshape(-1)
        if isinstance(self._data, torch.Tensor):
            y = self._data[flat.to(self._data.device)].to(device=self.device, dtype=dtype)
        else:
            y = torch.from_numpy(np.array(self._data[flat.cpu().numpy()], dtype=_NP[dtype])).to(self.device)
        if not centred:
            return y.reshape(*idx.shape, self.dim)
        c = self.center_c if dtype == self.dtype else self.center.to(dtype)
        return (y - c).reshape(*idx.shape, self.dim)

    def nbytes(self) -> int:
        """Bytes of the rows held in memory (0 for a memory-mapped file)."""
        return 0 if self.on_disk else self._data.element_size() * self._data.nelement()
