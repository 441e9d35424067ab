"""Metrics: memorization, distances between sample sets; ``expansiveness`` and ``quality``
submodules are loaded on first use (``smoothscore.metrics.expansiveness``)."""

import importlib as _importlib

from .distances import frechet_distance, knn_precision_recall, wasserstein_1d, wasserstein_2d
from .memorization import distance_summary, memorization_audit, memorization_fraction, nn_ratio

__all__ = [
    "nn_ratio",
    "memorization_fraction",
    "distance_summary",
    "memorization_audit",
    "wasserstein_1d",
    "wasserstein_2d",
    "frechet_distance",
    "knn_precision_recall",
]


def __getattr__(name):
    if name in ("expansiveness", "quality"):
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
