"""smoothscore: smoothed empirical scores, memorization and interpolation in diffusion models.

Implements Chen, "On the Interpolation Effect of Score Smoothing in Diffusion Models" (arXiv 2502.19499) and
Zhou, Zhang, Wright, "Smoothing the Score Function for Generalization in Diffusion Models" (arXiv 2601.19285).

Public names are resolved lazily so that ``import smoothscore`` stays fast::

    import smoothscore as ss
    ss.EmpiricalScore(train, temperature=1.0)
    ss.SmoothedPLScore(points, kappa, direction=None)
    ss.UnconditionalEmpiricalScore(train, sigmas=None)
    ss.sigma_schedule("edm", 18, 0.002, 80.0)
    ss.sample(field, x_init, sigmas, method="heun")
    ss.metrics.memorization_fraction(samples, train)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    # scores
    "ScoreField": "smoothscore.scores.base",
    "FunctionScore": "smoothscore.scores.base",
    "DiffusersScore": "smoothscore.scores.diffusers",
    "EmpiricalScore": "smoothscore.scores.empirical",
    "GaussianScore": "smoothscore.scores.gaussian",
    "SmoothedPLScore": "smoothscore.scores.smoothed_pl",
    "UnconditionalEmpiricalScore": "smoothscore.scores.unconditional",
    "SigmaScaledEmpiricalScore": "smoothscore.scores.sigma_scaled",
    "NeuralScore": "smoothscore.scores.neural",
    "LocalEmpiricalScore": "smoothscore.scores.local",
    "EquivariantLocalScore": "smoothscore.scores.local",
    "KNNScore": "smoothscore.scores.knn_score",
    "ClosedFormSmoothedScore": "smoothscore.scores.closed_form",
    # noise
    "sigma_schedule": "smoothscore.noise",
    "t_to_sigma": "smoothscore.noise",
    "sigma_to_t": "smoothscore.noise",
    # sampling
    "sample": "smoothscore.sampling",
    # errors
    "SmoothScoreError": "smoothscore.errors",
}
_SUBMODULES = {
    "metrics",
    "data",
    "theory",
    "nets",
    "training",
    "sampling",
    "search",
    "scores",
    "experiments",
    "noise",
    "errors",
    "report",
}

__all__ = sorted(set(_LAZY) | _SUBMODULES)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"smoothscore.{name}")
    raise AttributeError(f"module 'smoothscore' has no attribute {name!r}")


def __dir__():
    return __all__
