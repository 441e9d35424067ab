"""The score-field contract shared by exact, smoothed, analytic and neural scores.

A *score field* is any object with ``score(x, sigma) -> Tensor`` (same shape as ``x``; ``x`` is ``(N, *dims)``,
``sigma`` a float or an ``(N,)`` tensor). Fields may also provide ``denoise(x, sigma)``, the posterior mean, since
``score = (denoise - x) / sigma**2`` (Tweedie). :class:`ScoreField` derives either one from the other, so a subclass
implements exactly one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .._checks import bcast, check_queries, check_sigma
from ..device import resolve_device, resolve_dtype
from ..errors import SigmaError


class ScoreField:
    """Base class. Subclasses set ``self.dtype``, ``self.device``, ``self.data_shape`` and override ``score`` or
    ``denoise``. ``conditioned = False`` marks fields that ignore sigma (Paper B's noise-unconditional scores)."""

    conditioned: bool = True
    dtype: torch.dtype = torch.float32
    device: torch.device = torch.device("cpu")
    data_shape: Sequence[int] | None = None

    def _init_placement(self, dtype, device) -> None:
        self.dtype = resolve_dtype(dtype)
        self.device = resolve_device(device)

    def prepare(self, x, sigma=None, *, need_sigma: bool = True):
        """Validate and move inputs: returns ``(x, sigma_vec)`` with sigma as an ``(N,)`` tensor (or None)."""
        if self.data_shape is not None:
            x = check_queries(x, self.data_shape, dtype=self.dtype, device=self.device)
        else:
            x = check_queries(x, torch.as_tensor(x).shape[1:], dtype=self.dtype, device=self.device)
        if sigma is None:
            if need_sigma:
                raise SigmaError(f"{type(self).__name__} needs a noise level sigma")
            return x, None
        return x, check_sigma(sigma, x.shape[0], dtype=self.dtype, device=self.device)

    def score(self, x, sigma) -> torch.Tensor:
        if type(self).denoise is ScoreField.denoise:
            raise TypeError(f"{type(self).__name__} must implement score() or denoise()")
        x, s = self.prepare(x, sigma)
        return (self.denoise(x, s) - x) / bcast(s, x) ** 2

    def denoise(self, x, sigma) -> torch.Tensor:
        if type(self).score is ScoreField.score:
            raise TypeError(f"{type(self).__name__} must implement score() or denoise()")
        x, s = self.prepare(x, sigma)
        return x + bcast(s, x) ** 2 * self.score(x, s)

    def __call__(self, x, sigma) -> torch.Tensor:
        return self.score(x, sigma)


class FunctionScore(ScoreField):
    """Wrap a plain function ``f(x, sigma) -> score`` (or a denoiser with ``kind="denoiser"``) into the contract."""

    def __init__(self, fn: Callable, *, kind: str = "score", conditioned: bool = True, dtype="float32", device="auto"):
        self._init_placement(dtype, device)
        self.fn, self.kind, self.conditioned = fn, kind, conditioned

    def score(self, x, sigma):
        x, s = self.prepare(x, sigma)
        out = self.fn(x, s)
        return (out - x) / bcast(s, x) ** 2 if self.kind == "denoiser" else out

    def denoise(self, x, sigma):
        x, s = self.prepare(x, sigma)
        out = self.fn(x, s)
        return out if self.kind == "denoiser" else x + bcast(s, x) ** 2 * out
