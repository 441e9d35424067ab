"""Memorization metrics.

Adopted standard (Paper B, Sec. 5; the paper's exact definition was unavailable): a sample is *memorized* when the
ratio of the distance to its nearest training point over the distance to the second nearest is below 1/3
(L2 in pixel space).
"""

from __future__ import annotations

import torch

from ..errors import ConfigError, EmptyDataError
from .neighbors import NeighborIndex


def _search(samples, train, k: int):
    """``train`` is a training set (tensor, array, memory map, ``.npy`` path) or a built :class:`NeighborIndex`
    (reused: a streamed set is then read once for several metrics)."""
    index = train if isinstance(train, NeighborIndex) else NeighborIndex(train)
    if index.n < k:
        raise EmptyDataError(f"this metric needs at least {k} training points; got {index.n}")
    return index.search(samples, k)


def _ratio(d: torch.Tensor) -> torch.Tensor:
    return d[:, 0] / d[:, 1].clamp_min(1e-300)


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
    """(N,) ratio d(NN1) / d(NN2) of each sample to the training set (0 for an exact copy)."""
    return _ratio(_search(samples, train, 2)[0])


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
    d, i = _search(samples, train, max(2, int(k)))
    r = _ratio(d)
    return {
        "ratios": r,
        "memorized_fraction": float((r < threshold).double().mean()),
        "distance_summary": _summary(d[:, 0], int(torch.as_tensor(samples[0]).numel())),
        "dist": d,
        "idx": i,
    }
