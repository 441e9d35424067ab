"""Memorization metrics.

The criterion (Paper B, Sec. 5, after Gu et al. 2023; reference code ``sail-sg/DiffMemorize``, ``mem_ratio.py``:
``torch.topk(cdist, k=2)`` then ``d1 / d2 < 1/3``): a sample is *memorized* when the ratio of the L2 distance (pixel
space) to its nearest training image over the distance to the second nearest is below 1/3.

Duplicated training images (adopted rule): the second neighbour is the nearest training image *distinct*
from the nearest one; exact copies of the nearest image (stored twice or more) are skipped. Without it a sample
near an image stored twice has ``d2 = d1`` and ratio 1 (never memorized), and an exact copy has ``0 / 0``:
DiffMemorize's code gets NaN there and counts it as *not* memorized; here its ratio is 0 (memorized), and a sample
at distance 0.01 of a duplicated image whose next distinct image is 4 away has ratio 0.0025 instead of 1.
Copies are found among the neighbours tied with the nearest (equal float64 distances) by comparing the images
exactly, so a set without duplicates costs nothing extra.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError, EmptyDataError
from ..search.neighbors import NeighborIndex


def _search(samples, train, k: int):
    """``train`` is a training set (tensor, array, memory map, ``.npy`` path) or a built :class:`NeighborIndex`
    (reused: a streamed set is then read once for several metrics)."""
    index = train if isinstance(train, NeighborIndex) else NeighborIndex(train)
    if index.n < k:
        raise EmptyDataError(f"this metric needs at least {k} training points; got {index.n}")
    return index.search(samples, k)


def _distinct_ratio(samples, index: NeighborIndex, d: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """``d1 / d2`` with ``d2`` the distance to the nearest training image distinct from the nearest one (module
    doc). Only samples whose two nearest distances tie are searched again, with k doubling until a distinct image
    appears (or the set holds no other image: ratio 0 when d1 = 0, else 1)."""
    d2 = d[:, 1].clone()
    todo = torch.nonzero(d[:, 1] == d[:, 0]).flatten()
    k = d.shape[1]
    q = torch.as_tensor(samples)
    while todo.numel():
        k = min(index.n, max(2 * k, 4))
        dd, ii = index.search(q[todo], k)
        left = []
        for r, t in enumerate(todo.tolist()):
            first = index.rows.block(int(i[t, 0]), int(i[t, 0]) + 1)
            for j in range(1, k):
                row = int(ii[r, j])
                if not torch.equal(index.rows.block(row, row + 1), first):
                    d2[t] = dd[r, j]
                    break
            else:
                if k < index.n:
                    left.append(t)
                else:  # every training image is a copy of the nearest one
                    d2[t] = d[t, 0] if d[t, 0] > 0 else 1.0
        todo = torch.tensor(left, dtype=torch.long)
    return d[:, 0] / d2.clamp_min(1e-300)


def _summary(d1: torch.Tensor, dim: int) -> dict[str, float]:
    q = torch.quantile(d1, torch.tensor([0.1, 0.5, 0.9], dtype=d1.dtype))
    return {
        "mean": float(d1.mean()),
        "median": float(q[1]),
        "q10": float(q[0]),
        "q90": float(q[2]),
        "min": float(d1.min()),
        "max": float(d1.max()),
        "median_per_sqrt_dim": float(q[1]) / dim**0.5,
        "dim": dim,
    }


def _check_threshold(threshold: float) -> None:
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold must be in (0, 1]; got {threshold}")


def nn_ratio(samples, train) -> torch.Tensor:
    """(N,) ratio d(NN1) / d(NN2) of each sample to the training set (0 for an exact copy; NN2 is the nearest image
    distinct from NN1, module doc)."""
    index = train if isinstance(train, NeighborIndex) else NeighborIndex(train)
    d, i = _search(samples, index, 2)
    return _distinct_ratio(samples, index, d, i)


def memorization_fraction(samples, train, threshold: float = 1 / 3) -> float:
    """Share of samples with ``d(NN1) / d(NN2) < threshold``."""
    _check_threshold(threshold)
    return float((nn_ratio(samples, train) < threshold).double().mean())


def distance_summary(samples, train) -> dict[str, float]:
    """Statistics of each sample's distance to its nearest training point (also divided by sqrt(dim), the
    per-coordinate scale comparable to a noise level sigma)."""
    d, _ = _search(samples, train, 1)
    return _summary(d[:, 0], int(torch.as_tensor(samples[0]).numel()))


def memorization_audit(samples, train, threshold: float = 1 / 3, k: int = 3) -> dict[str, object]:
    """Everything of :func:`nn_ratio`, :func:`memorization_fraction` and :func:`distance_summary` from ONE search of
    the ``k`` (>= 2) nearest training points (a memory-mapped set is streamed once): keys ``ratios``,
    ``memorized_fraction``, ``distance_summary``, ``dist`` and ``idx`` (Q, k)."""
    _check_threshold(threshold)
    index = train if isinstance(train, NeighborIndex) else NeighborIndex(train)
    d, i = _search(samples, index, max(2, int(k)))
    r = _distinct_ratio(samples, index, d, i)
    return {
        "ratios": r,
        "memorized_fraction": float((r < threshold).double().mean()),
        "distance_summary": _summary(d[:, 0], int(torch.as_tensor(samples[0]).numel())),
        "dist": d,
        "idx": i,
    }
