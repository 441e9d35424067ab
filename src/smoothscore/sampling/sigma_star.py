"""Adaptive sigma* sampler for noise-unconditional scores (Paper B, Sec. 4.1, the fix for the PF-ODE overshoot).

A scheduled sampler moves by ``(sigma_n^2 - sigma_{n+1}^2) s(x_n)`` while an unconditional model acts at the
sample's *real* noise level ``sigma_n* = |x_n - mu*| / sqrt(d)`` (mu* the nearest training point); when
``sigma_n >> sigma_n*`` the step overshoots. This sampler replaces the scheduled level by sigma_n*, found by one
nearest-neighbour search per step (:class:`~smoothscore.search.NeighborIndex`):

    x_{n+1} = x_n + alpha sigma_n*^2 s(x_n)  [+ noise * sqrt(alpha) sigma_n* z].

The number of steps is ``n_steps`` (default: one per interval of the ``sigmas`` grid, whose values are otherwise
unused). A sample exactly on a training point has ``sigma* = 0`` and stays put (guard).

Step guard. The step size ``alpha sigma*^2`` is sized for a score that scales as ``(mu* - x) / sigma*^2``
(the exact score moves a fraction ~alpha of the way to the data). A barely trained network's output instead grows
with ``|x|``, so the step grows like ``|x|^3`` and overflows within a few steps (docs/paper-b.md).
The sampler descends sigma*, so without noise a step that *raises* a sample's sigma* (moves it away from the
training set) or is non-finite is undone and that sample's step size halved (backtracking, one NN search per step);
with ``noise > 0`` only non-finite steps are undone. Exact scores never trigger it in the tests.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..search.neighbors import NeighborIndex
from .base import randn_like, samplers


def sample_sigma_star(x: torch.Tensor, index: NeighborIndex) -> torch.Tensor:
    """``|x - mu_nn| / sqrt(d)`` per sample, shape ``(N,)`` in ``x``'s dtype/device; 0 for a non-finite
    (diverged) sample, which then stays as it is."""
    xc = x.detach().cpu()
    ok = torch.isfinite(xc.reshape(xc.shape[0], -1)).all(1)
    dist = torch.zeros(xc.shape[0], dtype=torch.float64)
    if bool(ok.any()):
        dist[ok] = index.search(xc[ok], 1)[0][:, 0]
    return (dist / x[0].numel() ** 0.5).to(dtype=x.dtype, device=x.device)


@samplers.register("sigma_star")
def sigma_star_sampler(
    field,
    x,
    sigmas,
    *,
    generator=None,
    hook,
    train=None,
    index: NeighborIndex | None = None,
    alpha: float = 0.1,
    n_steps: int | None = None,
    noise: float = 0.0,
    **_,
):
    if index is None:
        if train is None:
            raise ConfigError("the sigma_star sampler needs train=... (or index=NeighborIndex(train))")
        index = NeighborIndex(train)
    if not (alpha > 0) or noise < 0:
        raise ConfigError(f"alpha must be positive and noise non-negative; got {alpha}, {noise}")
    n = len(sigmas) - 1 if n_steps is None else int(n_steps)
    shape = (-1, *([1] * (x.dim() - 1)))
    scale = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)  # per-sample backtracking factor
    x_prev = s_prev = None
    for i in range(n):
        s_star = sample_sigma_star(x, index)
        if x_prev is not None:
            bad = ~torch.isfinite(x.reshape(x.shape[0], -1)).all(1)
            if noise == 0:
                bad |= s_star > s_prev
            if bool(bad.any()):
                x[bad], s_star[bad] = x_prev[bad], s_prev[bad]
                scale[bad] *= 0.5
        mv = s_star > 0  # sigma* = 0: on a training point
        score = torch.zeros_like(x)
        if bool(mv.any()):
            score[mv] = torch.nan_to_num(field.score(x[mv], s_star[mv]).to(x.dtype), nan=0.0, posinf=0.0, neginf=0.0)
        s2 = (s_star**2).reshape(shape)
        den = x + s2 * score
        x_prev, s_prev = x.clone(), s_star
        x = x + (alpha * scale).reshape(shape) * s2 * score
        if noise > 0:
            x = x + noise * (alpha**0.5) * s2.sqrt() * randn_like(x, generator)
        s_now = float(s_star.median())  # the hook reports the median sigma* as both levels
        hook(min(i, len(sigmas) - 2), s_now, s_now, x, den)
    if x_prev is not None:  # the last step is checked like the others
        bad = ~torch.isfinite(x.reshape(x.shape[0], -1)).all(1)
        if noise == 0:
            bad |= sample_sigma_star(x, index) > s_prev
        x[bad] = x_prev[bad]
    return x
