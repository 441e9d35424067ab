"""Expansiveness of a sampler step (Paper B, Sec. 3.2).

``gamma_ex`` (mirror pairs): take the two closest training points mu_0, mu_1 and x with ``|x - mu_0| = C |x - mu_1|``;
mirror x across the bisecting hyperplane of (mu_0, mu_1) to y (the two distances swap); take one sampling step
from each; ``gamma_ex = |y' - x'| / |y - x|``. For the ESF and the step ``x + eta s(x)`` with two centres, symmetry
gives exactly ``y' - x' = (1 - eta/sigma^2)(y - x) + (eta/sigma^2) (1 - a)/(1 + a) (mu_0 - mu_1)``, a = w_0(x)/w_1(x)
(:func:`two_point_esf_gamma`); the paper's ``|eta (mu_0 - mu_1)| / |y - x| |1 - 2/(a+1)|`` is its second term.

Local alternative (adopted): the spectral norm of ``I + eta J`` (J the Jacobian of the score at x) by power
iteration on ``(I + eta J)^T (I + eta J)`` with ``torch.func.jvp`` / ``torch.func.vjp`` — no dense Jacobian.
Scores act sample-wise, so one batched jvp/vjp gives every sample's product at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..errors import ConfigError, ShapeError
from ..search.neighbors import NeighborIndex


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def mirror_pair(mu0, mu1, ratio: float, perp: float, *, generator: torch.Generator | None = None):
    """Points ``x`` (``|x - mu0| = ratio |x - mu1|``, at distance ``perp`` from the mu0-mu1 line along a random
    orthogonal direction) and its mirror ``y`` across the bisecting hyperplane. ``mu0``/``mu1``: ``(N, *dims)``
    batches (or single points). Returns ``(x, y)`` shaped like ``mu0``."""
    m0, m1 = torch.as_tensor(mu0), torch.as_tensor(mu1)
    if m0.shape != m1.shape:
        raise ShapeError(f"mu0 and mu1 must have one shape; got {tuple(m0.shape)}, {tuple(m1.shape)}")
    if not 0 < ratio:
        raise ConfigError(f"ratio must be positive; got {ratio}")
    a0, a1 = (m0[None], m1[None]) if m0.dim() == 1 else (m0, m1)
    f0, f1 = _flat(a0).double(), _flat(a1).double()
    e = f0 - f1
    D = e.norm(dim=1, keepdim=True)
    if bool((D == 0).any()):
        raise ConfigError("mu0 and mu1 coincide")
    e = e / D
    z = torch.randn(f0.shape, generator=generator, dtype=torch.float64)
    z = z - (z * e).sum(1, keepdim=True) * e
    p = perp * z / z.norm(dim=1, keepdim=True)
    # a = signed offset along e from the midpoint: (a - D/2)^2 + perp^2 = ratio^2 ((a + D/2)^2 + perp^2)
    c2 = ratio * ratio
    A, B, C = 1 - c2, -D * (1 + c2), (1 - c2) * (D * D / 4 + perp * perp)
    if abs(1 - c2) < 1e-12:
        a = torch.zeros_like(D)
    else:
        disc = B * B - 4 * A * C
        if bool((disc < 0).any()):
            raise ConfigError(f"distance ratio {ratio} is unreachable at perpendicular offset {perp}")
        disc = disc.sqrt()
        a = (-B - disc) / (2 * A) if c2 < 1 else (-B + disc) / (2 * A)
    mid = 0.5 * (f0 + f1)
    x, y = mid + a * e + p, mid - a * e + p
    x, y = x.reshape(a0.shape).to(a0.dtype), y.reshape(a0.shape).to(a0.dtype)
    return (x[0], y[0]) if m0.dim() == 1 else (x, y)


def score_step(field, sigma: float, eta: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """One sampler step ``x -> x + eta s(x, sigma)`` (reverse-diffusion mean with ``eta = sigma^2 - sigma'^2``,
    Euler PF-ODE with ``eta = sigma (sigma - sigma')``, sigma* step with ``eta = alpha sigma*^2``)."""

    def step(x: torch.Tensor) -> torch.Tensor:
        s = torch.full((x.shape[0],), float(sigma), dtype=x.dtype, device=x.device)
        return x + eta * field.score(x, s).to(x.dtype)

    return step


def gamma_ex(step: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mirror-pair expansion ratio ``|step(y) - step(x)| / |y - x|`` per pair, shape ``(N,)``."""
    if x.shape != y.shape:
        raise ShapeError(f"x and y must have one shape; got {tuple(x.shape)}, {tuple(y.shape)}")
    with torch.no_grad():
        num = _flat(step(y) - step(x)).double().norm(dim=1)
    return num / _flat(y - x).double().norm(dim=1)


def two_point_esf_gamma(x, y, mu0, mu1, sigma: float, eta: float) -> torch.Tensor:
    """Exact gamma_ex of the step ``x + eta s(x)`` for the two-centre ESF (module doc), shape ``(N,)``."""
    fx, fy, f0, f1 = (
        _flat(
            torch.as_tensor(t).reshape(-1, *torch.as_tensor(mu0).shape[-1:])
            if torch.as_tensor(t).dim() == 1
            else torch.as_tensor(t)
        ).double()
        for t in (x, y, mu0, mu1)
    )
    log_a = ((fx - f1) ** 2).sum(1) / (2 * sigma**2) - ((fx - f0) ** 2).sum(1) / (2 * sigma**2)
    a = torch.exp(log_a)
    k = eta / sigma**2
    diff = (1 - k) * (fy - fx) + k * ((1 - a) / (1 + a))[:, None] * (f0 - f1)
    return diff.norm(dim=1) / (fy - fx).norm(dim=1)


def spectral_norm(
    field,
    x: torch.Tensor,
    sigma: float,
    eta: float,
    *,
    n_iter: int = 30,
    generator: torch.Generator | None = None,
    tol: float = 1e-4,
) -> torch.Tensor:
    """Largest singular value of ``I + eta J(x)`` per sample, ``(N,)``, by power iteration on
    ``M^T M`` using ``torch.func.jvp`` (``M v``) and ``torch.func.vjp`` (``M^T u``). Needs a differentiable field."""
    # lazy: torch.func loads only for Jacobian products
    from torch.func import jvp, vjp

    if n_iter < 1:
        raise ConfigError("n_iter must be >= 1")
    x = x.detach()
    s = torch.full((x.shape[0],), float(sigma), dtype=x.dtype, device=x.device)

    def step(z):
        return z + eta * field.score(z, s).to(z.dtype)

    v = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    v = v / _flat(v).norm(dim=1).reshape(-1, *([1] * (x.dim() - 1)))
    _, pull = vjp(step, x)
    est = None
    for _ in range(n_iter):
        _, mv = jvp(step, (x,), (v,))
        (mtmv,) = pull(mv)
        nrm = _flat(mtmv).norm(dim=1)
        est = nrm.clamp_min(0).sqrt()
        lam = nrm.clamp_min(1e-300).reshape(-1, *([1] * (x.dim() - 1)))
        resid = _flat(mtmv / lam - v).norm(dim=1)  # eigen-residual of M^T M; eigenvalue error ~ resid^2
        v = mtmv / lam
        if bool((resid <= tol).all()):
            break
    return est.detach().double()


def closest_pairs(train: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n`` training points with the smallest nearest-neighbour gap and their nearest neighbours
    ``(mu0, mu1)`` (each pair once), the pairs gamma_ex is evaluated on."""
    dist, idx = NeighborIndex(train).search(train, 2)
    order = dist[:, 1].argsort()
    seen, i0, i1 = set(), [], []
    for a in order.tolist():
        b = int(idx[a, 1])
        if (min(a, b), max(a, b)) in seen:
            continue
        seen.add((min(a, b), max(a, b)))
        i0.append(a)
        i1.append(b)
        if len(i0) == n:
            break
    return train[i0], train[i1]


def expansiveness_profile(
    field,
    train: torch.Tensor,
    sigmas,
    *,
    eta_factor: float = 0.5,
    ratio: float = 0.9,
    n_queries: int = 16,
    iters: int = 15,
    generator: torch.Generator | None = None,
    typical: bool = True,
) -> dict:
    """Median gamma_ex and median spectral norms of ``I + eta J`` per noise level for the step
    ``x + eta s(x, sigma)``, ``eta = eta_factor sigma^2``.

    gamma_ex: mirror pairs on the ``n_queries`` closest training pairs with ``|x - mu0| = ratio |x - mu1|`` and
    perpendicular offset ``sigma sqrt(d)`` (NaN where that ratio is unreachable). ``spectral_norm``: at
    ``x = mu + sigma z`` for ``n_queries`` training points ``mu``. ``spectral_norm_switching``: on the switching
    surface of the same closest pairs (equidistant points, ``ratio = 1``, same perpendicular offset), where the ESF's
    softmax changes hands. ``typical=False`` skips the norm at typical points (NaN there). Returns
    ``{"sigma", "gamma_ex", "spectral_norm", "spectral_norm_switching"}`` (lists over ``sigmas``)."""
    dtype = getattr(field, "dtype", torch.float32)
    tr = torch.as_tensor(train).to(dtype)
    d = tr[0].numel()
    n = min(n_queries, tr.shape[0] // 2)
    mu0, mu1 = closest_pairs(tr, n)
    pick = torch.randperm(tr.shape[0], generator=generator)[:n_queries]
    out = {"sigma": [float(s) for s in sigmas], "gamma_ex": [], "spectral_norm": [], "spectral_norm_switching": []}
    for s in out["sigma"]:
        eta = eta_factor * s * s
        try:
            x, y = mirror_pair(mu0, mu1, ratio, s * math.sqrt(d), generator=generator)
            out["gamma_ex"].append(float(gamma_ex(score_step(field, s, eta), x, y).median()))
        except ConfigError:
            out["gamma_ex"].append(float("nan"))
        if typical:
            z = torch.randn(tr[pick].shape, generator=generator, dtype=dtype)
            sn = spectral_norm(field, tr[pick] + s * z, s, eta, n_iter=iters, generator=generator)
            out["spectral_norm"].append(float(sn.median()))
        else:
            out["spectral_norm"].append(float("nan"))
        xs, _ = mirror_pair(mu0, mu1, 1.0, s * math.sqrt(d), generator=generator)
        sw = spectral_norm(field, xs.to(dtype), s, eta, n_iter=iters, generator=generator)
        out["spectral_norm_switching"].append(float(sw.median()))
    return out


def esf_jacobian_norm_bound(sigma: float) -> float:
    """``|J| <= 1/sigma^2`` scale of the conditioned ESF Jacobian ``-(1/sigma^2)[I - Cov_w/sigma^2]`` away from ties
    (reference scale for plots)."""
    return 1.0 / (sigma * sigma) if sigma > 0 else math.inf
