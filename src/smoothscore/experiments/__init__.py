"""Experiments: one module per paper figure/table, each registered by name (see :mod:`.base`).

Modules here are discovered automatically by :func:`smoothscore.experiments.base.load_all`.
"""

from .base import Claim, RunContext, experiment, experiments, load_all, resolve_names

__all__ = ["Claim", "RunContext", "experiment", "experiments", "load_all", "resolve_names"]
