"""Bootstrap intervals over samples (Efron's percentile bootstrap) for sample-set statistics.

A statistic of ``n`` samples (a memorized fraction, a median nearest-neighbour distance, a Frechet distance) is
recomputed on ``n_boot`` resamples drawn with replacement; the two-sided ``level`` interval is the
``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the recomputed values. The resampling indices come from a
fixed generator (``numpy.random.default_rng(seed)``, ``seed = 0`` unless given), so the same samples always give the
same interval on every machine. The interval measures the uncertainty from the finite number of *samples*; the
seed-to-seed spread of trained networks is judged separately (:mod:`smoothscore.verdict`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..errors import ConfigError
from ..search.neighbors import nearest_neighbors
from .distances import frechet_distance
from .memorization import nn_ratio

#: default confidence level and number of resamples
LEVEL = 0.9
N_BOOT = 1000


def _indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    if n < 1:
        raise ConfigError("a bootstrap interval needs at least one sample")
    if n_boot < 1:
        raise ConfigError(f"n_boot must be at least 1; got {n_boot}")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _interval(stats: np.ndarray, level: float) -> list[float]:
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1); got {level}")
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return [float("nan"), float("nan")]
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float], n: int, *, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0
) -> list[float]:
    """Percentile interval of ``statistic(idx)`` over ``n_boot`` index resamples ``idx`` of ``range(n)``."""
    idx = _indices(n, n_boot, seed)
    return _interval(np.array([statistic(i) for i in idx], dtype=np.float64), level)


def _values(x) -> np.ndarray:
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    return a.reshape(-1)


def mean_interval(per_sample, *, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0) -> list[float]:
    """Interval of the mean of per-sample values (e.g. 0/1 memorization indicators -> memorized fraction)."""
    v = _values(per_sample)
    return _interval(v[_indices(v.size, n_boot, seed)].mean(1), level)


def median_interval(per_sample, *, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0) -> list[float]:
    """Interval of the median of per-sample values (e.g. nearest-neighbour distances)."""
    v = _values(per_sample)
    return _interval(np.median(v[_indices(v.size, n_boot, seed)], axis=1), level)


def memorized_fraction_interval(samples, train, threshold: float = 1 / 3, **kw) -> list[float]:
    """Interval of :func:`smoothscore.metrics.memorization_fraction` (resampling the samples)."""
    return mean_interval((nn_ratio(samples, train) < threshold).double(), **kw)


def nn_distance_interval(samples, train, **kw) -> list[float]:
    """Interval of the median distance of a sample to its nearest training point (``distance_summary``'s median)."""
    d, _ = nearest_neighbors(samples, train, k=1)
    return median_interval(d[:, 0], **kw)


def frechet_interval(
    feats_samples, feats_ref, *, n_boot: int = 200, level: float = LEVEL, seed: int = 0
) -> list[float]:
    """Interval of :func:`smoothscore.metrics.frechet_distance` (resampling ``feats_samples``; the reference set is
    fixed). 200 resamples by default: each one is a matrix square root."""
    a = (
        feats_samples.detach().cpu().double()
        if isinstance(feats_samples, torch.Tensor)
        else torch.as_tensor(np.asarray(feats_samples, dtype=np.float64))
    )
    a = a.reshape(a.shape[0], -1)
    return bootstrap_interval(
        lambda i: frechet_distance(a[torch.as_tensor(i)], feats_ref), a.shape[0], n_boot=n_boot, level=level, seed=seed
    )
