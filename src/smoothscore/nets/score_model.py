"""Score parameterisations, kept apart from architectures (as EDM keeps preconditioning apart).

``ScoreModel(net, param)`` turns a network ``F(x, sigma)`` into a score ``s(x, sigma)``:

* ``"score"``: ``s = F(x, sigma)`` (unconditioned networks: ``s = F(x)``, no sigma anywhere — the *sigma-free*
  reading of Paper B Eq. 9);
* ``"sigma_scaled"`` (unconditioned networks only; :data:`UNCONDITIONED_PAPER_PARAM`): ``s(x, sigma) = F(x) / sigma``
  with ``sigma`` the level the *caller* gives (the sampler's scheduled level). The network never sees sigma. This is
  what Paper B's official code runs (``XinyuZhou2001/smoothing_the_score``: score_sde's NCSN++ with
  ``conditional=False, scale_by_sigma=True``; ``Code/losses.py`` trains ``sigma^2 |F/sigma + z/sigma|^2 =
  |F(x~) + z|^2``). It matters at sampling: the predictor step ``(s_i^2 - s_{i+1}^2) F/s_i`` contracts a level error
  instead of overshooting by ``s_i^2 / sigma*^2``, and the Langevin corrector pulls the sample's own level toward the
  schedule. In the EDM scalings table it is ``c_skip = 0, c_out = 1/sigma`` on the *score*, ``c_in = 1``, no
  ``c_noise`` (the network has no noise input);
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

PARAMS = ("score", "sigma_score", "edm", "sigma_scaled")
#: the unconditioned parameterisation Paper B's code uses (``s = F(x) / sigma_scheduled``); build_model's default
UNCONDITIONED_PAPER_PARAM = "sigma_scaled"
#: the sigma-free unconditioned parameterisation (``s = F(x)``), kept as an option
UNCONDITIONED_SIGMA_FREE_PARAM = "score"
UNCONDITIONED_PARAMS = (UNCONDITIONED_PAPER_PARAM, UNCONDITIONED_SIGMA_FREE_PARAM)


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
        if not self.conditioned and param not in UNCONDITIONED_PARAMS:
            raise ConfigError(
                f"an unconditioned network takes param={UNCONDITIONED_PAPER_PARAM!r} (F(x)/sigma, Paper B's code) or "
                f"{UNCONDITIONED_SIGMA_FREE_PARAM!r} (F(x)); got {param!r}"
            )
        if self.conditioned and param == UNCONDITIONED_PAPER_PARAM:
            raise ConfigError(f"param={param!r} is for unconditioned networks; use 'sigma_score' for a conditioned one")
        #: whether the score needs the caller's sigma (conditioned nets, or an unconditioned net divided by sigma)
        self.needs_sigma = self.conditioned or param == UNCONDITIONED_PAPER_PARAM
        self.net, self.param, self.sigma_data = net, param, float(sigma_data)
        self.config = dict(config or {})

    def _bc(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return v.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        if not self.needs_sigma:
            return self.net(x)
        if sigma is None:
            raise ConfigError(f"a score model with param={self.param!r} needs sigma")
        s = self._bc(sigma, x)
        if not self.conditioned:  # sigma_scaled: the net sees x only, the field divides by the given sigma
            return self.net(x) / s
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
