"""Score fields: exact, smoothed, analytic and neural (see :mod:`smoothscore.scores.base` for the contract)."""
from .base import FunctionScore, ScoreField
from .empirical import EmpiricalScore

__all__ = ["ScoreField", "FunctionScore", "EmpiricalScore"]
