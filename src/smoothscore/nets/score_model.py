"""A network and a parameterisation (a row of :mod:`smoothscore.nets.precond`) as one score model.

``ScoreModel(net, param)`` turns a network ``F`` into a score ``s(x, sigma)`` by applying the row ``param`` of the
EDM preconditioning table (Karras et al. 2022, Eq. 7), kept apart from the architecture as EDM keeps it. Networks
with a noise input take ``c_noise`` (the row computes it); networks without one (Paper B's noise unconditioning)
take ``x`` only and accept the rows ``"sigma_scaled"`` (``F(x) / sigma``, Paper B's code, the default) and
``"score"`` (the sigma-free ``F(x)``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .precond import Precond, preconds

PARAMS = tuple(preconds.names())
#: the unconditioned parameterisation Paper B's code uses (``s = F(x) / sigma_scheduled``); build_model's default
UNCONDITIONED_PAPER_PARAM = "sigma_scaled"
#: the sigma-free unconditioned parameterisation (``s = F(x)``), kept as an option
UNCONDITIONED_SIGMA_FREE_PARAM = "score"
UNCONDITIONED_PARAMS = (UNCONDITIONED_PAPER_PARAM, UNCONDITIONED_SIGMA_FREE_PARAM)


class ScoreModel(nn.Module):
    """Score ``s(x, sigma)`` of ``net`` under the parameterisation ``param`` (a registered :class:`Precond` row).

    Attributes: ``precond`` (the row), ``conditioned`` (the network has a noise input), ``needs_sigma`` (the score
    depends on the caller's sigma), ``config`` (rebuilds the model, see :func:`~smoothscore.nets.build_model`) and
    ``sigma_range`` (``(sigma_min, sigma_max)`` the model was trained on, or None when unknown).
    """

    def __init__(
        self,
        net: nn.Module,
        param: str = "sigma_score",
        sigma_data: float = 0.5,
        config: dict[str, Any] | None = None,
    ):
        super().__init__()
        if param not in PARAMS:
            raise ConfigError(f"unknown parameterisation {param!r}; known: {', '.join(PARAMS)}")
        self.precond: Precond = preconds.get(param)
        self.conditioned = bool(getattr(net, "conditioned", True))
        if self.conditioned not in self.precond.conditioned:
            if self.conditioned:
                raise ConfigError(
                    f"param={param!r} is for unconditioned networks; use 'sigma_score' for a conditioned one"
                )
            raise ConfigError(
                f"an unconditioned network takes param={UNCONDITIONED_PAPER_PARAM!r} (F(x)/sigma, Paper B's code) or "
                f"{UNCONDITIONED_SIGMA_FREE_PARAM!r} (F(x)); got {param!r}"
            )
        #: whether the score needs the caller's sigma (conditioned nets, or a row whose scalings depend on sigma)
        self.needs_sigma = self.conditioned or self.precond.sigma_dependent
        self.net, self.param, self.sigma_data = net, param, float(sigma_data)
        self.config = dict(config or {})
        self.sigma_range: tuple[float, float] | None = None

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        if not self.needs_sigma:
            return self.net(x)
        if sigma is None:
            raise ConfigError(f"a score model with param={self.param!r} needs sigma")
        return self.precond.apply(self.net, x, sigma, self.sigma_data, self.conditioned)

    def penalized_parameters(self):
        return (
            self.net.penalized_parameters()
            if hasattr(self.net, "penalized_parameters")
            else [p for p in self.parameters() if p.dim() > 1]
        )
