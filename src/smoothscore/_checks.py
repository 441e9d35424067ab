"""Input validation shared by every module: each raises a specific :mod:`smoothscore.errors` exception."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Number
from typing import Any

import numpy as np
import torch

from .errors import ConfigError, EmptyDataError, NonFiniteError, ShapeError, SigmaError, UnknownNameError, did_you_mean


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
    # fast path: one reduction read back as a Python float (NaN/Inf propagate through the sum; a sum of finite
    # values that overflows to Inf falls through to the exact element-wise check, so finite input is never
    # rejected), ~10x cheaper than isfinite().all() — this runs on every score call
    if t.numel() and math.isfinite(t.sum().item()):
        return t
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise NonFiniteError(f"{name} contains {bad} NaN/Inf value(s)")
    return t


def check_points(
    x, name: str = "train", *, dtype=None, device=None, min_dims: int = 2, min_points: int = 1
) -> torch.Tensor:
    """A non-empty, finite (M, *dims) tensor (1-D input is read as M points in R^1 when min_dims == 2) with at least
    ``min_points`` points (:class:`EmptyDataError` otherwise)."""
    t = as_tensor(x, name, dtype=dtype, device=device)
    if t.dim() == 1 and min_dims == 2:
        t = t[:, None]
    if t.dim() < min_dims:
        raise ShapeError(f"{name} must have shape (N, *dims); got {tuple(t.shape)}")
    if t.shape[0] == 0 or t[0].numel() == 0:
        raise EmptyDataError(f"{name} is empty (shape {tuple(t.shape)})")
    if t.shape[0] < min_points:
        raise EmptyDataError(f"{name} has {t.shape[0]} point(s); at least {min_points} are needed")
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
    if isinstance(sigma, (int, float)) and dtype in (torch.float32, torch.float64) and 1e-30 < sigma < 1e30:
        # fast path (every sampler step): positive, finite and exactly so after rounding to float32/float64
        return torch.full((n,), float(sigma), dtype=dtype, device=device)
    if isinstance(sigma, (int, float)):
        if not float(sigma) <= torch.finfo(dtype).max:  # NaN, or overflows the dtype
            raise SigmaError(f"{name} must be positive and finite; got {sigma}")
        s = torch.full((n,), float(sigma), dtype=dtype, device=device)
    else:
        s = as_tensor(sigma, name, dtype=dtype, device=device)
        if s.dim() == 0:
            s = s.expand(n)
        elif s.dim() != 1 or s.shape[0] != n:
            raise ShapeError(f"{name} must be a float or have shape ({n},); got {tuple(s.shape)}")
    if s.numel():
        lo, hi = torch.aminmax(s)  # one reduction; NaN propagates to both and fails both comparisons
        lo, hi = lo.item(), hi.item()
        if not (lo > 0 and hi < math.inf):
            raise SigmaError(f"{name} must be positive and finite; got min {lo}, max {hi}")
    return s


def check_positive(value, name: str, *, error=ConfigError) -> float:
    """A positive finite float (``error`` is raised otherwise: :class:`SigmaError` for noise levels)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise error(f"{name} must be a positive number; got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise error(f"{name} must be positive and finite; got {value!r}")
    return v


def check_k(k, n: int, name: str = "K", what: str = "the data set") -> int:
    """An integer neighbour count ``1 <= k <= n``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= n:
        raise ConfigError(f"{name} must be an integer in [1, {n}] ({what} has {n} points); got {k!r}")
    return int(k)


def check_preset(presets: Mapping[str, Any], preset: str, experiment: str) -> str:
    """``preset`` when ``experiment`` defines it; :class:`~smoothscore.errors.ConfigError` with "did you mean"."""
    if preset not in presets:
        raise ConfigError(
            f"experiment {experiment!r} has no preset {preset!r}{did_you_mean(preset, presets)}; "
            f"presets: {', '.join(presets)}"
        )
    return preset


def _is_number(v: Any) -> bool:
    return isinstance(v, Number) and not isinstance(v, bool)


def check_overrides(configs: Mapping[str, Mapping[str, Any]], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``--set KEY=VALUE`` overrides against the preset configs they will update.

    ``configs`` maps each selected experiment to its chosen preset's config. A key no selected experiment has is
    an :class:`~smoothscore.errors.UnknownNameError` (with "did you mean"); a value whose type does not fit the
    preset's (a string where a number is expected, a number where a flag is, a list where a number is, ...) a
    :class:`~smoothscore.errors.ConfigError`, as is a non-finite number. ``None`` preset values accept anything.
    Returns the overrides, with integral floats given for integer keys turned into ints."""
    known = sorted({k for c in configs.values() for k in c})
    out = dict(overrides)
    for key, value in overrides.items():
        owners = {n: c[key] for n, c in configs.items() if key in c}
        if not owners:
            where = ", ".join(configs) or "the selected experiments"
            raise UnknownNameError(
                f"--set {key}: unknown key for {where}{did_you_mean(key, known)}; keys: {', '.join(known)}"
            )
        if _is_number(value) and not math.isfinite(float(value)):
            raise ConfigError(f"--set {key}={value}: not a finite number")
        for exp, ref in owners.items():
            if ref is None:
                continue
            ok = (
                (
                    _is_number(ref)
                    and _is_number(value)
                    and not (isinstance(ref, int) and isinstance(value, float) and not float(value).is_integer())
                )
                or (isinstance(ref, bool) and isinstance(value, bool))
                or (isinstance(ref, str) and isinstance(value, str))
                or (isinstance(ref, (list, tuple)) and isinstance(value, list))
                or (isinstance(ref, dict) and isinstance(value, dict))
            )
            if not ok:
                want = (
                    "an integer"
                    if isinstance(ref, int) and not isinstance(ref, bool)
                    else "a number"
                    if _is_number(ref)
                    else "true or false"
                    if isinstance(ref, bool)
                    else f"a {type(ref).__name__}"
                )
                raise ConfigError(f"--set {key}={value!r}: {exp} expects {want} (preset value {ref!r})")
            if isinstance(ref, int) and not isinstance(ref, bool) and isinstance(value, float):
                out[key] = int(value)
    return out


def bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape an (N,) per-sample vector to broadcast against x of shape (N, *dims)."""
    return v.reshape(v.shape[0], *([1] * (x.dim() - 1)))
