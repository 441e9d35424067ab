"""Synthetic training sets: points on a line (Paper A Figs. 1-4), a circle (Fig. 5), a sphere, Gaussian mixtures."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._checks import as_tensor
from ..errors import ConfigError
from .dataset import Dataset, datasets


def _unit(direction, dim: int) -> torch.Tensor:
    if direction is None:
        u = torch.zeros(dim, dtype=torch.float64)
        u[0] = 1.0
        return u
    u = as_tensor(direction, "direction", dtype=torch.float64).flatten()
    if u.numel() != dim:
        raise ConfigError(f"direction must have {dim} entries; got {u.numel()}")
    n = float(u.norm())
    if not math.isfinite(n) or n == 0:
        raise ConfigError("direction must be a non-zero finite vector")
    return u / n


def line_points(
    n: int = 4,
    *,
    spacing: float = 1.0,
    positions: Sequence[float] | None = None,
    dim: int = 1,
    direction=None,
    dtype=torch.float32,
) -> torch.Tensor:
    """``n`` points evenly spaced (``spacing`` apart) and centred on a line through the origin in R^dim along
    ``direction`` (default e_1), or at the given 1-D ``positions``. Returns (n, dim)."""
    if positions is None:
        if n < 1:
            raise ConfigError("n must be positive")
        pos = (torch.arange(n, dtype=torch.float64) - (n - 1) / 2) * spacing
    else:
        pos = as_tensor(positions, "positions", dtype=torch.float64).flatten()
    return (pos[:, None] * _unit(direction, dim)).to(dtype)


def circle_points(
    n: int = 8, *, radius: float = 1.0, dim: int = 2, phase: float = 0.0, dtype=torch.float32
) -> torch.Tensor:
    """``n`` points evenly spaced on a circle of ``radius`` in the first two coordinates of R^dim."""
    if n < 1 or dim < 2:
        raise ConfigError("circle_points needs n >= 1 and dim >= 2")
    a = phase + 2 * math.pi * torch.arange(n, dtype=torch.float64) / n
    out = torch.zeros(n, dim, dtype=torch.float64)
    out[:, 0], out[:, 1] = radius * torch.cos(a), radius * torch.sin(a)
    return out.to(dtype)


def sphere_points(
    n: int,
    dim: int = 3,
    *,
    ambient_dim: int | None = None,
    radius: float = 1.0,
    generator: torch.Generator | None = None,
    method: str = "random",
    dtype=torch.float32,
) -> torch.Tensor:
    """``n`` points on the sphere S^{dim-1} of ``radius``, optionally embedded in the first ``dim`` coordinates of
    R^ambient_dim. ``method="random"``: uniform (normalised Gaussians); ``method="fibonacci"`` (dim = 3 only):
    the quasi-uniform Fibonacci lattice, evenly spread points."""
    if n < 1 or dim < 2:
        raise ConfigError("sphere_points needs n >= 1 and dim >= 2")
    if method == "fibonacci":
        if dim != 3:
            raise ConfigError("the Fibonacci lattice is defined on S^2 (dim = 3)")
        i = torch.arange(n, dtype=torch.float64) + 0.5
        zc = 1 - 2 * i / n
        phi = math.pi * (3 - math.sqrt(5)) * i
        r = (1 - zc**2).sqrt()
        z = radius * torch.stack([r * torch.cos(phi), r * torch.sin(phi), zc], 1)
    elif method == "random":
        z = torch.randn(n, dim, generator=generator, dtype=torch.float64)
        z = radius * z / z.norm(dim=1, keepdim=True)
    else:
        raise ConfigError(f"unknown sphere method {method!r}; known: random, fibonacci")
    if ambient_dim is not None:
        if ambient_dim < dim:
            raise ConfigError("ambient_dim must be >= dim")
        z = torch.cat([z, torch.zeros(n, ambient_dim - dim, dtype=torch.float64)], 1)
    return z.to(dtype)


def gaussian_mixture(
    n: int, means, stds, *, weights=None, generator: torch.Generator | None = None, dtype=torch.float32
):
    """``n`` samples of an isotropic Gaussian mixture; returns (x (n, D), component labels (n,))."""
    m = as_tensor(means, "means", dtype=torch.float64)
    if m.dim() == 1:
        m = m[:, None]
    s = as_tensor(stds, "stds", dtype=torch.float64).flatten().expand(m.shape[0])
    w = (
        torch.ones(m.shape[0], dtype=torch.float64)
        if weights is None
        else as_tensor(weights, "weights", dtype=torch.float64)
    )
    if bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ConfigError("mixture weights must be non-negative with a positive sum")
    comp = torch.multinomial(w / w.sum(), n, replacement=True, generator=generator)
    x = m[comp] + s[comp, None] * torch.randn(n, m.shape[1], generator=generator, dtype=torch.float64)
    return x.to(dtype), comp


@datasets.register("line")
def _line(n: int = 4, dim: int = 2, spacing: float = 1.0, **kw) -> Dataset:
    return Dataset(line_points(n, spacing=spacing, dim=dim, **kw), name="line", info={"n": n, "dim": dim})


@datasets.register("circle")
def _circle(n: int = 8, dim: int = 2, **kw) -> Dataset:
    return Dataset(circle_points(n, dim=dim, **kw), name="circle", info={"n": n, "dim": dim})


@datasets.register("sphere")
def _sphere(n: int = 64, dim: int = 3, seed: int = 0, **kw) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    return Dataset(sphere_points(n, dim, generator=g, **kw), name="sphere", info={"n": n, "dim": dim, "seed": seed})
