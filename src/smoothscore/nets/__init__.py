"""Score networks (with or without a noise input) and their parameterisations; ``build_model`` by name."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..errors import ConfigError
from ..registry import Registry
from .embedding import SigmaEmbedding
from .mlp import MLP, TwoLayerReLU
from .precond import Precond, preconds
from .score_model import UNCONDITIONED_PAPER_PARAM, UNCONDITIONED_SIGMA_FREE_PARAM, ScoreModel
from .unet import UNet

models: Registry = Registry("model")


@models.register("two-layer")
def _two_layer(data_shape, conditioned, width: int = 256, **_):
    return TwoLayerReLU(int(math.prod(data_shape)), width, conditioned=conditioned)


@models.register("mlp")
def _mlp(data_shape, conditioned, width: int = 256, depth: int = 2, embedding: str = "fourier", **_):
    return MLP(int(math.prod(data_shape)), width, depth, conditioned=conditioned, embedding=embedding)


@models.register("unet")
def _unet(data_shape, conditioned, base: int = 32, embedding: str = "fourier", **_):
    if len(data_shape) != 3 or data_shape[1] != data_shape[2]:
        raise ConfigError(f"unet needs square images (C, H, H); got data shape {tuple(data_shape)}")
    return UNet(data_shape[0], data_shape[1], base=base, conditioned=conditioned, embedding=embedding)


def build_model(
    name: str,
    data_shape: Sequence[int],
    *,
    conditioning: str = "sigma",
    param: str | None = None,
    sigma_data: float = 0.5,
    **kw,
) -> ScoreModel:
    """Build a :class:`ScoreModel` by architecture name (``two-layer``, ``mlp``, ``unet``).

    ``conditioning``: ``"sigma"`` (noise input) or ``"none"`` (Paper B's noise unconditioning). ``param`` defaults to
    ``"sigma_score"`` when conditioned and ``"sigma_scaled"`` (:data:`UNCONDITIONED_PAPER_PARAM`, Paper B's code:
    ``F(x) / sigma``) otherwise; ``param="score"`` keeps the sigma-free ``F(x)``; the rows are those of
    :data:`~smoothscore.nets.precond.preconds`. The returned model's ``config`` rebuilds it.
    """
    if conditioning not in ("sigma", "none"):
        raise ConfigError(f"conditioning must be 'sigma' or 'none'; got {conditioning!r}")
    cond = conditioning == "sigma"
    param = param or ("sigma_score" if cond else UNCONDITIONED_PAPER_PARAM)
    net = models.get(name)(tuple(data_shape), cond, **kw)
    cfg = {
        "name": name,
        "data_shape": list(data_shape),
        "conditioning": conditioning,
        "param": param,
        "sigma_data": sigma_data,
        "kwargs": kw,
    }
    return ScoreModel(net, param, sigma_data, config=cfg)


__all__ = [
    "models",
    "build_model",
    "ScoreModel",
    "Precond",
    "preconds",
    "UNCONDITIONED_PAPER_PARAM",
    "UNCONDITIONED_SIGMA_FREE_PARAM",
    "TwoLayerReLU",
    "MLP",
    "UNet",
    "SigmaEmbedding",
]
