"""Row access to an (N, *dims) data set wherever it lives -- a tensor, a NumPy array, a memory-mapped ``.npy``
(``np.load(path, mmap_mode="r", allow_pickle=False)``) or the path of an ``.npy`` file (opened memory-mapped) --
read in chunks of rows, so that a set larger than RAM is streamed and never loaded whole.

A chunk read from a tensor is a view (no copy); a chunk read from a memory map is one copy of those rows. Rows come
back as float32 unless the source is float64 (kept: the float64 precision contract of the callers).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .._checks import check_points
from ..errors import DataError, EmptyDataError, NonFiniteError, ShapeError

#: default bytes of one streamed chunk (float32 rows)
CHUNK_BYTES = 32 << 20


def open_npy(path: str | os.PathLike) -> np.ndarray:
    """An ``.npy`` file opened memory-mapped (read-only; ``allow_pickle`` is never needed for numeric arrays)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"file not found: {p}")
    try:
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"cannot memory-map {p}: {e}") from None
    return arr


def check_rows(data, name: str):
    """``data`` (array or tensor) as (N, *dims): 1-D is N points in R^1; :class:`ShapeError` for a scalar,
    :class:`EmptyDataError` for no rows or no features."""
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim < 2:
        raise ShapeError(f"{name} must have shape (N, *dims); got {tuple(data.shape)}")
    if data.shape[0] == 0 or int(np.prod(data.shape[1:])) == 0:
        raise EmptyDataError(f"{name} is empty (shape {tuple(data.shape)})")
    return data


def file_rows(arr: np.ndarray):
    """``(filename, byte offset of row 0, dtype, bytes per row)`` of a C-contiguous memory-mapped (N, ...) array
    (also a row slice of one: the offset is that of its first row), else None."""
    fname, mm = getattr(arr, "filename", None), getattr(arr, "_mmap", None)
    if not (isinstance(arr, np.memmap) and fname and mm is not None and arr.flags.c_contiguous):
        return None
    start = int(arr.offset) - int(arr.offset) % mmap.ALLOCATIONGRANULARITY  # where np.memmap mapped the file
    off = start + arr.ctypes.data - np.frombuffer(mm, dtype=np.uint8).ctypes.data
    return fname, off, arr.dtype, int(np.prod(arr.shape[1:])) * arr.dtype.itemsize


def read_rows(arr: np.ndarray, lo: int, hi: int, dtype, out: np.ndarray | None = None, file=None) -> np.ndarray:
    """Rows ``lo:hi`` of an (N, ...) array as a fresh (hi - lo, dim) array of ``dtype`` (into ``out`` when given).
    ``file`` (:func:`file_rows`) reads a memory map with plain file reads: the page cache, not this process's RSS,
    holds them (reading through the mapping would make every page touched count as resident memory)."""
    m = hi - lo
    dim = int(np.prod(arr.shape[1:]))
    if file is not None:
        fname, off, fdtype, row_bytes = file
        with open(fname, "rb") as f:
            f.seek(off + lo * row_bytes)
            src = np.fromfile(f, dtype=fdtype, count=m * dim).reshape(m, dim)
        if out is None:
            return src.astype(dtype, copy=False)
    else:
        src = np.asarray(arr[lo:hi]).reshape(m, dim)
        if out is None:
            return np.array(src, dtype=dtype)  # a fresh, writable copy
    np.copyto(out, src, casting="unsafe")
    return out


class Rows:
    """Read-only chunked access to the rows of ``data`` (tensor, ndarray, memmap, ``.npy`` path or Dataset).

    ``n``: rows; ``shape``: trailing shape; ``dim``: features per row. In-memory tensors are checked for finiteness
    at once; streamed sources are checked chunk by chunk as they are read (:class:`NonFiniteError`).
    """

    def __init__(self, data, name: str = "train"):
        if isinstance(data, Rows):
            data = data.data
        data = getattr(data, "x", data)  # a Dataset
        if isinstance(data, (str, os.PathLike)):
            data = open_npy(data)
        if isinstance(data, np.ndarray):
            if not (np.issubdtype(data.dtype, np.number) or data.dtype == np.bool_):
                raise DataError(f"{name}: array is not numeric ({data.dtype})")
            data = check_rows(data, name)
        else:
            data = check_points(data, name).detach()
        self.data, self.name = data, name
        self.n = int(data.shape[0])
        self.shape = tuple(int(s) for s in data.shape[1:])
        self.dim = int(np.prod(self.shape))
        self.float64 = data.dtype in (np.float64, torch.float64)
        self.device = data.device if isinstance(data, torch.Tensor) else torch.device("cpu")
        self.file = None if isinstance(data, torch.Tensor) else file_rows(data)

    def __len__(self) -> int:
        return self.n

    def _as_tensor(self, a, m: int, out: np.ndarray | None = None, lo: int | None = None) -> torch.Tensor:
        """Rows ``a`` as an (m, dim) tensor: a view of a tensor source; otherwise copied (into ``out`` when given,
        so that streaming reuses one buffer instead of allocating a chunk each time) and checked for NaN/Inf.
        ``lo``: ``a`` is rows ``lo:lo + m`` of the source (read from the file of a memory map)."""
        if isinstance(a, torch.Tensor):
            t = a.reshape(m, self.dim)
            return t if t.dtype in (torch.float32, torch.float64) else t.float()
        if out is None:
            out = np.empty((m, self.dim), dtype=np.float64 if self.float64 else np.float32)
        if lo is not None:
            read_rows(self.data, lo, lo + m, out.dtype, out=out, file=self.file)
        else:
            np.copyto(out, np.asarray(a).reshape(m, self.dim), casting="unsafe")
        # one float64 sum finds any NaN/Inf (inf - inf and nan propagate; float32 values cannot overflow it)
        if not np.isfinite(np.sum(out, dtype=np.float64)):
            raise NonFiniteError(f"{self.name} contains NaN/Inf value(s)")
        return torch.from_numpy(out)

    def block(self, lo: int, hi: int) -> torch.Tensor:
        """Rows ``lo:hi`` flattened to (hi - lo, dim), float32 (float64 when the source is)."""
        if isinstance(self.data, torch.Tensor):
            return self._as_tensor(self.data[lo:hi], hi - lo)
        return self._as_tensor(None, hi - lo, lo=lo)

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` (any shape of indices) as (*idx.shape, *shape); memory maps are read in index order."""
        flat = idx.reshape(-1).cpu()
        if isinstance(self.data, torch.Tensor):
            out = self.data[flat.to(self.data.device)]
        else:
            uniq, inv = torch.unique(flat, return_inverse=True)
            out = self._as_tensor(self.data[uniq.numpy()], uniq.numel())[inv]
        return out.reshape(*idx.shape, *self.shape)

    def chunks(
        self, lo: int = 0, hi: int | None = None, chunk_bytes: int = CHUNK_BYTES
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """``(start, rows)`` chunks of rows ``lo:hi`` of at most ``chunk_bytes`` (as float32). Rows read from an
        array share one buffer: a chunk is valid until the next one is read (copy it to keep it)."""
        hi = self.n if hi is None else hi
        step = self.chunk_rows(chunk_bytes)
        buf = None
        for s in range(lo, hi, step):
            e = min(hi, s + step)
            if isinstance(self.data, torch.Tensor):
                yield s, self.block(s, e)
                continue
            if buf is None:
                buf = np.empty((min(step, hi - lo), self.dim), dtype=np.float64 if self.float64 else np.float32)
            yield s, self._as_tensor(None, e - s, out=buf[: e - s], lo=s)

    def chunk_rows(self, chunk_bytes: int = CHUNK_BYTES) -> int:
        return max(1, int(chunk_bytes) // (4 * self.dim))


def column_sums(t: torch.Tensor) -> torch.Tensor:
    """Float64 column sums of an (m, D) tensor without a float64 copy of it on the CPU (NumPy casts in buffers)."""
    if t.device.type == "cpu":
        return torch.from_numpy(np.add.reduce(t.numpy(), axis=0, dtype=np.float64))
    return t.sum(0, dtype=torch.float64).cpu()
