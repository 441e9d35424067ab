"""Memorization metrics.

Adopted standard (Paper B, Sec. 5; the paper's exact definition was unavailable): a sample is *memorized* when the
ratio of the distance to its nearest training point over the distance to the second nearest is below 1/3
(L2 in pixel space).
"""
from __future__ import annotations

from typing import Dict

import torch

from ..errors import ConfigError, EmptyDataError
from .neighbors import nearest_neighbors


def nn_ratio(samples, train) -> torch.Tensor:
    """(N,) ratio d(NN1) / d(NN2) of each sample to the training set (0 for an exact copy)."""
    if len(train) < 2:
        raise EmptyDataError("nn_ratio needs at least 2 training points")
    d, _ = nearest_neighbors(samples, train, k=2)
    return d[:, 0] / d[:, 1].clamp_min(1e-300)


def memorization_fraction(samples, train, threshold: float = 1 / 3) -> float:
    """Share of samples with ``d(NN1) / d(NN2) < threshold``."""
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold must be in (0, 1]; got {threshold}")
    return float((nn_ratio(samples, train) < threshold).double().mean())


def distance_summary(samples, train) -> Dict[str, float]:
    """Statistics of each sample's distance to its nearest training point (also divided by sqrt(dim), the
    per-coordinate scale comparable to a noise level sigma)."""
    d, _ = nearest_neighbors(samples, train, k=1)
    d = d[:, 0]
    dim = int(torch.as_tensor(samples[0]).numel())
    q = torch.quantile(d, torch.tensor([0.1, 0.5, 0.9], dtype=d.dtype))
    return {"mean": float(d.mean()), "median": float(q[1]), "q10": float(q[0]), "q90": float(q[2]),
            "min": float(d.min()), "max": float(d.max()), "median_per_sqrt_dim": float(q[1]) / dim ** 0.5,
            "dim": dim}
