"""Input validation shared by every module: each raises a specific :mod:`smoothscore.errors` exception."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .errors import EmptyDataError, NonFiniteError, ShapeError, SigmaError


def as_tensor(x, name: str, *, dtype: torch.dtype | None = None, device: torch.device | None = None) -> torch.Tensor:
    """Convert array-likes to a floating tensor (no copy when already right)."""
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as e:
            raise ShapeError(f"{name}: cannot convert to a tensor ({e})") from None
    if not torch.is_floating_point(t):
        t = t.to(torch.get_default_dtype())
    if dtype is not None or device is not None:
        t = t.to(dtype=dtype or t.dtype, device=device or t.device)
    return t


def check_finite(t: torch.Tensor, name: str) -> torch.Tensor:
    # fast path: one reduction (NaN/Inf propagate through the sum; an overflowing sum falls to the exact check),
    # ~10x cheaper than isfinite().all() — this runs on every score call
    if t.numel() and bool(torch.isfinite(t.sum())):
        return t
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise NonFiniteError(f"{name} contains {bad} NaN/Inf value(s)")
    return t


def check_points(x, name: str = "train", *, dtype=None, device=None, min_dims: int = 2) -> torch.Tensor:
    """A non-empty, finite (M, *dims) tensor (1-D input is read as M points in R^1 when min_dims == 2)."""
    t = as_tensor(x, name, dtype=dtype, device=device)
    if t.dim() == 1 and min_dims == 2:
        t = t[:, None]
    if t.dim() < min_dims:
        raise ShapeError(f"{name} must have shape (N, *dims); got {tuple(t.shape)}")
    if t.shape[0] == 0 or t[0].numel() == 0:
        raise EmptyDataError(f"{name} is empty (shape {tuple(t.shape)})")
    return check_finite(t, name)


def check_queries(x, trailing: Sequence[int], name: str = "x", *, dtype=None, device=None) -> torch.Tensor:
    """Queries (N, *trailing) matching the data's trailing shape."""
    t = as_tensor(x, name, dtype=dtype, device=device)
    trailing = tuple(trailing)
    if t.dim() == len(trailing) and t.dim() == 1 and trailing == (1,):
        t = t[:, None]
    if tuple(t.shape[1:]) != trailing:
        raise ShapeError(f"{name} must have shape (N, {', '.join(map(str, trailing))}); got {tuple(t.shape)}")
    return check_finite(t, name)


def check_sigma(sigma, n: int, *, dtype: torch.dtype, device: torch.device, name: str = "sigma") -> torch.Tensor:
    """A float or an (n,) tensor of positive finite noise levels -> (n,) tensor."""
    if isinstance(sigma, (int, float)):
        s = torch.full((n,), float(sigma), dtype=dtype, device=device)
    else:
        s = as_tensor(sigma, name, dtype=dtype, device=device)
        if s.dim() == 0:
            s = s.expand(n)
        elif s.dim() != 1 or s.shape[0] != n:
            raise ShapeError(f"{name} must be a float or have shape ({n},); got {tuple(s.shape)}")
    if not bool(torch.isfinite(s).all()) or bool((s <= 0).any()):
        raise SigmaError(f"{name} must be positive and finite; got min {float(s.min()) if s.numel() else 'n/a'}")
    return s


def bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape an (N,) per-sample vector to broadcast against x of shape (N, *dims)."""
    return v.reshape(v.shape[0], *([1] * (x.dim() - 1)))
