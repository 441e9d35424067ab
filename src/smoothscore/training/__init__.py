"""Training: losses (Paper A and Paper B objectives), KNN neighbour cache, trainer with resume and torchrun."""

from .knn import KNNCache, default_encoder
from .losses import ConditionedDSM, FixedTimeRegression, SigmaSampler, TWeightedDSM, UnconditionedDSM, losses
from .score_net import train_score_net
from .temperature_loss import TemperatureKNNLoss
from .trainer import TrainConfig, Trainer, TrainResult, train

__all__ = [
    "losses",
    "ConditionedDSM",
    "UnconditionedDSM",
    "TWeightedDSM",
    "FixedTimeRegression",
    "TemperatureKNNLoss",
    "SigmaSampler",
    "KNNCache",
    "default_encoder",
    "TrainConfig",
    "Trainer",
    "TrainResult",
    "train",
    "train_score_net",
]
