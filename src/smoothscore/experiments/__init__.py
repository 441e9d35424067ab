"""Experiments, registered by name (see :mod:`.base`), one module per paper figure/table, grouped by paper:

* :mod:`.chen` — Paper A (Chen 2025, smoothed empirical scores interpolate along the data's subspace);
* :mod:`.zhou` — Paper B (Zhou et al. 2026, noise unconditioning and temperature smoothing), with the exact-ESF
  memorization baseline both papers start from;
* :mod:`.zoo` — beyond both papers: the denoiser zoo, what explains a trained network, the memorization phase.

Each package keeps its shared pieces in named modules (no experiment imports another experiment's module); every
module is discovered by :func:`smoothscore.experiments.base.load_all`.
"""

from .base import Claim, RunContext, experiment, experiments, load_all, resolve_names

__all__ = ["Claim", "RunContext", "experiment", "experiments", "load_all", "resolve_names"]
