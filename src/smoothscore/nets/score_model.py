"""Score parameterisations, kept apart from architectures (as EDM keeps preconditioning apart).

``ScoreModel(net, param)`` turns a network ``F(x, sigma)`` into a score ``s(x, sigma)``:

* ``"score"``: ``s = F(x, sigma)`` (unconditioned networks: ``s = F(x)``, no sigma anywhere — Paper B Eq. 9);
* ``"sigma_score"``: ``s = F(x, sigma) / sigma`` (the network predicts ``sigma * score = -eps``);
* ``"edm"``: EDM preconditioning (Karras et al. 2022, Table 1): ``D = c_skip x + c_out F(c_in x, sigma)``,
  ``s = (D - x) / sigma^2`` with ``c_skip = sd^2/(sigma^2+sd^2)``, ``c_out = sigma sd / sqrt(sigma^2+sd^2)``,
  ``c_in = 1/sqrt(sigma^2+sd^2)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConfigError

PARAMS = ("score", "sigma_score", "edm")


class ScoreModel(nn.Module):
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
        self.conditioned = bool(getattr(net, "conditioned", True))
        if not self.conditioned and param != "score":
            raise ConfigError("an unconditioned network outputs the score itself: use param='score'")
        self.net, self.param, self.sigma_data = net, param, float(sigma_data)
        self.config = dict(config or {})

    def _bc(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return v.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        if not self.conditioned:
            return self.net(x)
        if sigma is None:
            raise ConfigError("a conditioned score model needs sigma")
        s = self._bc(sigma, x)
        if self.param == "score":
            return self.net(x, sigma)
        if self.param == "sigma_score":
            return self.net(x, sigma) / s
        sd = self.sigma_data
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / (s**2 + sd**2).sqrt()
        c_in = 1 / (s**2 + sd**2).sqrt()
        d = c_skip * x + c_out * self.net(c_in * x, sigma)
        return (d - x) / s**2

    def penalized_parameters(self):
        return (
            self.net.penalized_parameters()
            if hasattr(self.net, "penalized_parameters")
            else [p for p in self.parameters() if p.dim() > 1]
        )
