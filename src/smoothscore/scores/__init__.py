"""Score fields: exact, smoothed, analytic and neural (see :mod:`smoothscore.scores.base` for the contract)."""

from .base import FunctionScore, ScoreField
from .closed_form import ClosedFormSmoothedScore
from .empirical import EmpiricalScore
from .knn_score import KNNScore
from .local import EquivariantLocalScore, LocalEmpiricalScore

__all__ = ["ScoreField", "FunctionScore", "EmpiricalScore"]
__all__ += ["LocalEmpiricalScore", "EquivariantLocalScore", "KNNScore", "ClosedFormSmoothedScore"]
