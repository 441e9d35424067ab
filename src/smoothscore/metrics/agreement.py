"""How well one denoiser explains another (``/work/shared/spec/analytic-scores.md``, "How well an analytic denoiser
explains a network"). All functions take batches ``(N, *dims)`` and flatten each sample over its ``D`` entries.

* :func:`r_squared` (Lukoianov et al., ottogin/locality-in-diffusion-models, metrics.py): for a reference
  (network) prediction ``b`` and a candidate (analytic) ``a``, ``r^2 = 1 - sum (a - b)^2 / (D Var(b))`` with the
  (population) variance of ``b`` over its D entries; per sample. 1 = identical, 0 = no better than the reference's
  own mean pixel value, negative = worse.
* :func:`cosine_similarity`: per-sample cosine of the flattened vectors. Applied to *scores* (``D - x`` at the same
  x and sigma), as Kamb & Ganguli's patch-size calibration does.
* :func:`pearson_r` (Kamb & Ganguli, eval_script.py): each flattened sample centred by its own mean and normalised;
  r is their dot product (used on final samples started from the same noise; they report the median over seeds).
* :func:`denoiser_agreement`: r^2 of the denoisers and cosine of the scores of two fields at the same (x, sigma).
"""

from __future__ import annotations

import torch

from ..errors import ShapeError


def _pair(a, b):
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape or a.dim() < 1 or a.shape[0] == 0:
        raise ShapeError(f"need two batches of the same shape (N, *dims); got {tuple(a.shape)} and {tuple(b.shape)}")
    return a.reshape(a.shape[0], -1).double(), b.reshape(b.shape[0], -1).double()


def r_squared(analytic, reference) -> torch.Tensor:
    """Per-sample ``1 - sum (a - b)^2 / (D Var(b))`` (float64, shape (N,)); ``reference`` is the network's output."""
    a, b = _pair(analytic, reference)
    var = b.var(dim=1, unbiased=False).clamp_min(torch.finfo(torch.float64).tiny)
    return 1 - ((a - b) ** 2).mean(1) / var


def cosine_similarity(a, b) -> torch.Tensor:
    """Per-sample cosine similarity of the flattened vectors (float64, (N,)); 0 when either vector is zero."""
    a, b = _pair(a, b)
    den = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(den > 0, (a * b).sum(1) / den.clamp_min(1e-300), torch.zeros_like(den))


def pearson_r(a, b) -> torch.Tensor:
    """Per-sample Pearson correlation of the flattened samples (each centred by its mean), float64 (N,)."""
    a, b = _pair(a, b)
    return cosine_similarity(a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True))


def denoiser_agreement(analytic, reference, x, sigma) -> dict[str, torch.Tensor]:
    """``{"r2": r^2 of the denoisers, "cosine": cosine of the scores (D - x)}`` per sample, for two score fields
    (``reference`` the network) evaluated at the same ``x`` and ``sigma`` (float or (N,))."""
    with torch.no_grad():
        xr = torch.as_tensor(x)
        da = analytic.denoise(x, sigma).detach().cpu().double()
        db = reference.denoise(x, sigma).detach().cpu().double()
    x64 = xr.detach().cpu().double()
    return {"r2": r_squared(da, db), "cosine": cosine_similarity(da - x64, db - x64)}
