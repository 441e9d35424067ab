"""Patch size per noise level for the LS / ELS (Kamb & Ganguli's calibration; ``analytic-scores.md``).

For a trained network: run its own deterministic sampler from a few seeds; at every step evaluate the machine for
each k of a grid at the network's current x; keep the k that maximises the cosine similarity of the full flattened
score vectors (network vs machine, i.e. of ``D - x`` at the same sigma), averaged over the seed's samples; the k per
step is the median over seeds. :class:`PatchSizeSchedule` turns the table into ``patch_size`` for
:class:`~smoothscore.scores.local.LocalEmpiricalScore` / :class:`~smoothscore.scores.local.EquivariantLocalScore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..metrics.agreement import cosine_similarity
from ..sampling import sample
from .local import EquivariantLocalScore, LocalEmpiricalScore


@dataclass
class PatchSizeSchedule:
    """Piecewise-constant ``k(sigma)``: the k of the calibration level nearest to sigma in log scale."""

    sigmas: list[float]
    ks: list[int]

    def __post_init__(self):
        if not self.sigmas or len(self.sigmas) != len(self.ks) or min(self.sigmas) <= 0:
            raise ConfigError("PatchSizeSchedule needs as many positive sigmas as ks (at least one)")

    def __call__(self, sigma) -> torch.Tensor:
        s = torch.as_tensor(sigma, dtype=torch.float64).detach().cpu().reshape(-1).clamp_min(1e-300)
        grid = torch.log(torch.tensor(self.sigmas, dtype=torch.float64))
        j = (torch.log(s)[:, None] - grid[None]).abs().argmin(1)
        return torch.tensor(self.ks, dtype=torch.long)[j]

    def as_dict(self) -> dict[str, list]:
        return {"sigmas": list(self.sigmas), "ks": list(self.ks)}


def calibrate_patch_size(
    network,
    train,
    x_inits: Sequence[torch.Tensor],
    sigmas,
    *,
    ks=(3, 5, 7, 9, 11, 13, 15),
    machine: str = "els",
    padding: str = "zeros",
    method: str = "heun",
    dtype="float32",
    device="auto",
) -> tuple:
    """Calibrate the patch size of ``machine`` (``"els"`` or ``"ls"``) to ``network`` (a score field).

    ``x_inits``: one batch of initial noises per seed (at ``sigmas[0]``); ``sigmas``: the sampler's decreasing grid
    (a final 0 is skipped for the calibration). Returns ``(schedule, table)``: a :class:`PatchSizeSchedule` over the
    grid's positive levels and ``table = {"sigmas", "ks", "cosine": (seeds, levels, len(ks)) list}``.
    """
    if machine not in ("els", "ls"):
        raise ConfigError(f"machine must be 'els' or 'ls'; got {machine!r}")
    ks = [int(k) for k in ks]
    if not ks or not x_inits:
        raise ConfigError("calibrate_patch_size needs at least one k and one seed")
    sig = [float(s) for s in sigmas]
    levels = [s for s in sig if s > 0]
    fields = [
        EquivariantLocalScore(train, k, padding=padding, dtype=dtype, device=device)
        if machine == "els"
        else LocalEmpiricalScore(train, k, dtype=dtype, device=device)
        for k in ks
    ]
    cos = torch.zeros(len(x_inits), len(levels), len(ks), dtype=torch.float64)
    for si, x0 in enumerate(x_inits):
        states = [x0]
        sample(network, x0, sig, method=method, callback=lambda info: states.append(info["x"].detach()))  # noqa: B023
        for li, level in enumerate(levels):
            x = states[li]
            with torch.no_grad():
                d_net = network.denoise(x, level).detach().cpu().double() - x.detach().cpu().double()
                for ki, f in enumerate(fields):
                    d_m = f.denoise(x, level).detach().cpu().double() - x.detach().cpu().double()
                    cos[si, li, ki] = cosine_similarity(d_m, d_net).mean()
    best = torch.tensor(ks)[cos.argmax(2)]  # (seeds, levels)
    per_level = best.median(dim=0).values  # median over seeds (lower middle)
    return PatchSizeSchedule(levels, per_level.tolist()), {"sigmas": levels, "ks": ks, "cosine": cos.tolist()}
