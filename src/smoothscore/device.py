"""Device and dtype selection, chosen once and respected everywhere (``auto`` = CUDA when present)."""

from __future__ import annotations

import contextlib

import torch

from .errors import ConfigError

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "fp32": torch.float32,
    "fp64": torch.float64,
    "double": torch.float64,
    "float": torch.float32,
}


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None -> CUDA if available else CPU; otherwise the named device (checked)."""
    if isinstance(spec, torch.device):
        return spec
    if spec is None or spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"invalid device {spec!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} requested but CUDA is not available")
    return dev


def resolve_dtype(spec: str | torch.dtype | None = "float32") -> torch.dtype:
    """``"float32"`` (default) or ``"float64"`` (also accepts a torch dtype)."""
    if spec is None:
        return torch.float32
    if isinstance(spec, torch.dtype):
        if spec not in (torch.float32, torch.float64):
            raise ConfigError(f"unsupported dtype {spec}; use float32 or float64")
        return spec
    try:
        return _DTYPES[str(spec).lower()]
    except KeyError:
        raise ConfigError(f"unknown dtype {spec!r}; use 'float32' or 'float64'") from None


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return str(device)


@contextlib.contextmanager
def intra_op_threads(n: int | None):
    """Run a block with ``n`` intra-op CPU threads (``torch.set_num_threads``), restoring the previous count after;
    ``None`` leaves the setting alone. GPU work is unaffected."""
    if n is None:
        yield
        return
    if int(n) < 1:
        raise ConfigError(f"threads must be at least 1; got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
