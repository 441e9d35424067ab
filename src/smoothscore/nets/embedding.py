"""Noise-level embeddings for conditioned networks (the unconditioned variants have none at all)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import UnknownNameError


class SigmaEmbedding(nn.Module):
    """Features of the noise input ``c_noise`` (the parameterisation computes it, e.g. EDM's ``log(sigma) / 4``).

    ``kind="fourier"``: random Fourier features ``[cos, sin](2 pi f c_noise)`` with fixed frequencies (Tancik et al.);
    ``kind="log_sigma"``: the scalar ``c_noise`` itself repeated. Output dimension ``dim``.
    """

    def __init__(self, dim: int = 64, kind: str = "fourier", scale: float = 4.0, seed: int = 0):
        super().__init__()
        if kind not in ("fourier", "log_sigma"):
            raise UnknownNameError(f"unknown sigma embedding {kind!r}; known: fourier, log_sigma")
        self.kind, self.dim = kind, dim
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("freqs", torch.randn(max(1, dim // 2), generator=g) * scale, persistent=True)

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        c = c_noise.to(self.freqs.dtype)[:, None]
        if self.kind == "log_sigma":
            return c.expand(-1, self.dim)
        a = 2 * math.pi * c * self.freqs[None, :]
        return torch.cat([a.cos(), a.sin()], dim=1)
