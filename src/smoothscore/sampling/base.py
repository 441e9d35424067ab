"""Sampler registry and the one driver every sampler goes through (k-diffusion style signature).

A sampler is a function ``step_fn(field, x, sigmas, *, generator, hook, **options) -> x`` registered in
:data:`samplers`; it calls ``hook(i, sigma, sigma_next, x, denoised)`` after every step. :func:`sample` validates
inputs, handles snapshots, callbacks and the progress bar. Adding a sampler = a new module in this package that
registers itself (modules are imported automatically by ``smoothscore.sampling``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .._checks import as_tensor, check_finite
from ..errors import ShapeError, SigmaError
from ..io import live_display
from ..registry import Registry

samplers: Registry = Registry("sampler")


@dataclass
class SampleResult:
    """Final samples plus snapshots ``{requested_sigma: x at the nearest grid sigma}``."""

    x: torch.Tensor
    snapshots: dict[float, torch.Tensor] = field(default_factory=dict)
    snapshot_grid_sigmas: dict[float, float] = field(default_factory=dict)


def sigma_vec(sigma: float, x: torch.Tensor) -> torch.Tensor:
    """A float noise level as an ``(N,)`` tensor matching ``x`` (what score fields receive)."""
    return torch.full((x.shape[0],), float(sigma), dtype=x.dtype, device=x.device)


def to_d(field_, x: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PF-ODE derivative ``dx/dsigma = -sigma * score(x, sigma)`` (VE; EDM Eq. 4 with s = 1) and the denoised
    estimate ``x + sigma^2 score``."""
    s = field_.score(x, sigma_vec(sigma, x)).to(x.dtype)
    return -sigma * s, x + sigma * sigma * s


def check_sigmas(sigmas) -> torch.Tensor:
    s = as_tensor(sigmas, "sigmas", dtype=torch.float64).flatten().cpu()
    if s.numel() < 2:
        raise SigmaError("sigmas must hold at least 2 noise levels")
    if not bool(torch.isfinite(s).all()) or bool((s < 0).any()):
        raise SigmaError("sigmas must be finite and non-negative")
    if bool((s[1:] >= s[:-1]).any()):
        raise SigmaError("sigmas must be strictly decreasing")
    if bool((s[:-1] == 0).any()):
        raise SigmaError("only the last sigma may be 0")
    return s


def sample(
    field_,
    x_init,
    sigmas,
    *,
    method: str = "heun",
    generator: torch.Generator | None = None,
    progress: bool = False,
    snapshot_sigmas: Sequence[float] | None = None,
    callback: Callable[[dict], None] | None = None,
    **options,
):
    """Run sampler ``method`` from ``x_init`` (already at noise level ``sigmas[0]``) down the ``sigmas`` grid.

    Methods: ``euler``, ``heun`` (probability-flow ODE), ``em`` (reverse SDE, Euler-Maruyama), ``pc``
    (reverse-diffusion predictor + Langevin corrector), and any registered later (e.g. ``sigma_star``).
    If the last sigma is 0 the final step goes to the denoiser. Returns the final tensor, or a
    :class:`SampleResult` when ``snapshot_sigmas`` is given: for each requested sigma the samples at the grid level
    nearest to it (``snapshot_grid_sigmas`` says which).
    """
    fn = samplers.get(method)
    s = check_sigmas(sigmas)
    if not isinstance(x_init, torch.Tensor):
        x_init = as_tensor(x_init, "x_init")
    if x_init.dim() < 2 or x_init.shape[0] == 0:
        raise ShapeError(f"x_init must have shape (N, *dims) with N > 0; got {tuple(x_init.shape)}")
    check_finite(x_init, "x_init")
    dtype = getattr(field_, "dtype", x_init.dtype)
    device = getattr(field_, "device", x_init.device)
    x = x_init.to(dtype=dtype, device=device).clone()

    snaps: dict[int, list] = {}
    grid_of: dict[float, float] = {}
    if snapshot_sigmas is not None:
        for req in snapshot_sigmas:
            j = int((s - float(req)).abs().argmin())
            snaps.setdefault(j, []).append(float(req))
            grid_of[float(req)] = float(s[j])
    result = SampleResult(x=x, snapshot_grid_sigmas=grid_of)
    for req in snaps.get(0, []):
        result.snapshots[req] = x.detach().clone()

    bar = None
    if progress:
        # lazy: rich loads only when a progress bar is shown
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn(f"[bold]sampling ({method})"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeRemainingColumn(),
            transient=True,
            disable=not live_display(),
        )
        task = bar.add_task(method, total=len(s) - 1)
        bar.start()

    def hook(i: int, sigma: float, sigma_next: float, x_new: torch.Tensor, denoised: torch.Tensor | None):
        for req in snaps.get(i + 1, []):
            result.snapshots[req] = x_new.detach().clone()
        if callback is not None:
            callback({"i": i, "sigma": sigma, "sigma_next": sigma_next, "x": x_new, "denoised": denoised})
        if bar is not None:
            bar.advance(task)

    try:
        with torch.no_grad():
            out = fn(field_, x, [float(v) for v in s], generator=generator, hook=hook, **options)
    finally:
        if bar is not None:
            bar.stop()
    if snapshot_sigmas is None:
        return out
    result.x = out
    return result


def randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise like ``x``, drawn on the generator's device then moved (reproducible on CPU)."""
    gdev = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=gdev).to(x.device)
