"""Parameterisations as rows of EDM's preconditioning table (Karras et al. 2022, Table 1 and Eq. 7).

A network ``F`` becomes a score through four scalings of the noise level ``sigma``::

    out(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma))

and ``out`` is either the score itself (``output="score"``) or a denoiser ``D``, whose score is
``(D - x) / sigma^2`` (Eq. 3). A row without ``c_noise`` is for networks with no noise input (Paper B's noise
unconditioning): ``F(c_in x)``. Rows (``sd`` = ``sigma_data``):

============== ======== ================== ======================== ====================== ==============
row            output   c_skip             c_out                    c_in                   c_noise
============== ======== ================== ======================== ====================== ==============
score          score    0                  1                        1                      log(sigma)/4
sigma_score    score    0                  1/sigma                  1                      log(sigma)/4
sigma_scaled   score    0                  1/sigma                  1                      (none)
edm            denoiser sd^2/(s^2+sd^2)    s sd/sqrt(s^2+sd^2)      1/sqrt(s^2+sd^2)       log(sigma)/4
============== ======== ================== ======================== ====================== ==============

``score`` on a network without a noise input is the sigma-free ``s = F(x)`` (Paper B Eq. 9 read literally).
``sigma_scaled`` is ``s = F(x) / sigma`` with ``sigma`` the level the caller gives (the sampler's scheduled level),
what Paper B's code runs (score_sde's NCSN++ with ``conditional=False, scale_by_sigma=True``). ``sigma_score``
predicts ``sigma * score = -eps`` (score_sde's ``scale_by_sigma`` with a noise input). ``edm`` is EDM's own row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..registry import Registry

preconds: Registry = Registry("parameterisation")

Scaling = Callable[[torch.Tensor, float], torch.Tensor]


def _zero(s: torch.Tensor, sd: float) -> torch.Tensor:
    return torch.zeros_like(s)


def _one(s: torch.Tensor, sd: float) -> torch.Tensor:
    return torch.ones_like(s)


def _sigma(s: torch.Tensor, sd: float) -> torch.Tensor:
    return s


def log_sigma_over_4(s: torch.Tensor, sd: float = 0.5) -> torch.Tensor:
    """EDM's noise input ``c_noise = log(sigma) / 4`` (Table 1)."""
    return s.log() / 4


def _edm_skip(s, sd):
    return sd**2 / (s**2 + sd**2)


def _edm_out(s, sd):
    return s * sd / (s**2 + sd**2).sqrt()


def _edm_in(s, sd):
    return 1 / (s**2 + sd**2).sqrt()


@dataclass(frozen=True)
class Precond:
    """One row of the table: scalings as pure functions ``f(sigma, sigma_data)`` of a per-sample ``sigma`` tensor.

    ``c_skip=None`` means 0 (nothing added), ``c_out=None`` / ``c_in=None`` mean 1 (no multiplication), so those
    rows do no arithmetic there. ``c_out_denominator``, when given, replaces ``c_out`` by its reciprocal: the
    network output is *divided* by it (``F / sigma`` rounds once, ``(1 / sigma) * F`` twice). ``c_noise=None``: the
    network takes no noise input. ``conditioned`` lists the network kinds the row accepts (True: with a noise
    input, False: without). ``uses`` names who runs it.
    """

    name: str
    output: str  # "score" or "denoiser"
    c_skip: Scaling | None
    c_out: Scaling | None
    c_in: Scaling | None
    c_noise: Scaling | None
    conditioned: tuple[bool, ...]
    uses: str = ""
    c_out_denominator: Scaling | None = None

    @property
    def sigma_dependent(self) -> bool:
        """Whether the score of a network *without* a noise input still depends on sigma (through the scalings)."""
        scalings = (self.c_skip, self.c_out, self.c_in, self.c_out_denominator)
        return any(f is not None for f in scalings) or self.output == "denoiser"

    def scalings(self, sigma: torch.Tensor, sigma_data: float = 0.5) -> dict[str, torch.Tensor]:
        """The four scalings at ``sigma`` (absent ones filled with their neutral value 0 / 1 / none)."""
        pick = lambda f, default: (f or default)(sigma, sigma_data)  # noqa: E731
        c_out = 1 / self.c_out_denominator(sigma, sigma_data) if self.c_out_denominator else pick(self.c_out, _one)
        out = {"c_skip": pick(self.c_skip, _zero), "c_out": c_out, "c_in": pick(self.c_in, _one)}
        out["c_noise"] = self.c_noise(sigma, sigma_data) if self.c_noise else None
        return out

    def apply(self, net, x: torch.Tensor, sigma: torch.Tensor | None, sigma_data: float, conditioned: bool):
        """The score ``s(x, sigma)`` of network ``net`` under this row (Eq. 7; denoisers through Eq. 3).

        ``sigma`` has one entry per sample; ``conditioned`` says whether ``net`` takes the noise input."""
        s = sigma.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)
        h = x if self.c_in is None else self.c_in(s, sigma_data) * x
        if conditioned:
            c_noise = (self.c_noise or log_sigma_over_4)(sigma.to(x.dtype), sigma_data)
            f = net(h, c_noise)
        else:
            f = net(h)
        if self.c_out_denominator is not None:
            out = f / self.c_out_denominator(s, sigma_data)
        else:
            out = f if self.c_out is None else self.c_out(s, sigma_data) * f
        if self.c_skip is not None:
            out = self.c_skip(s, sigma_data) * x + out
        return (out - x) / s**2 if self.output == "denoiser" else out


preconds.register(
    "score",
    Precond("score", "score", None, None, None, log_sigma_over_4, (True, False), "sigma-free Paper B Eq. 9; NCSN"),
)
preconds.register(
    "sigma_score",
    Precond(
        "sigma_score",
        "score",
        None,
        None,
        None,
        log_sigma_over_4,
        (True,),
        "score_sde scale_by_sigma (NCSN++ conditioned)",
        c_out_denominator=_sigma,
    ),
)
preconds.register(
    "sigma_scaled",
    Precond(
        "sigma_scaled",
        "score",
        None,
        None,
        None,
        None,
        (False,),
        "Paper B's code (smoothing_the_score: NCSN++ conditional=False, scale_by_sigma=True)",
        c_out_denominator=_sigma,
    ),
)
preconds.register(
    "edm",
    Precond("edm", "denoiser", _edm_skip, _edm_out, _edm_in, log_sigma_over_4, (True,), "EDM (Karras et al. 2022)"),
)
