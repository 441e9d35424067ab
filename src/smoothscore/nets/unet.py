"""A small UNet for images from 8x8 to 64x64. Conditioned: an embedding of the noise input ``c_noise`` added in
every residual block.
Unconditioned (Paper B, Sec. 4.1): the embedding is removed entirely — no module, no input, no division by sigma."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .embedding import SigmaEmbedding


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int | None):
        super().__init__()
        self.n1, self.c1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.n2, self.c2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout) if emb_dim else None
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb=None):
        h = self.c1(F.silu(self.n1(x)))
        if self.emb is not None:
            h = h + self.emb(emb)[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    """Two resolution levels below the input (one for 8x8), ``base`` channels doubling per level."""

    def __init__(
        self,
        channels: int = 1,
        size: int = 16,
        base: int = 32,
        conditioned: bool = True,
        embedding: str = "fourier",
        emb_dim: int = 64,
    ):
        super().__init__()
        if size < 8 or size > 64 or size % 4:
            raise ConfigError(f"UNet supports square images 8..64 (multiple of 4); got {size}")
        self.conditioned = conditioned
        e = emb_dim if conditioned else None
        self.emb = (
            nn.Sequential(SigmaEmbedding(emb_dim, embedding), nn.Linear(emb_dim, emb_dim), nn.SiLU())
            if conditioned
            else None
        )
        levels = 1 if size <= 8 else 2
        chs = [base * 2**i for i in range(levels + 1)]
        self.inp = nn.Conv2d(channels, base, 3, padding=1)
        self.down = nn.ModuleList(ResBlock(chs[i], chs[i + 1], e) for i in range(levels))
        self.mid = ResBlock(chs[-1], chs[-1], e)
        self.up = nn.ModuleList(ResBlock(chs[i + 1] * 2, chs[i], e) for i in reversed(range(levels)))
        self.out = nn.Sequential(_norm(base), nn.SiLU(), nn.Conv2d(base, channels, 3, padding=1))

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.emb(c_noise.to(x.dtype)) if self.conditioned else None
        h = self.inp(x)
        skips = []
        for blk in self.down:
            h = blk(h, emb)
            skips.append(h)
            h = F.avg_pool2d(h, 2)
        h = self.mid(h, emb)
        for blk in self.up:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = blk(torch.cat([h, skips.pop()], 1), emb)
        return self.out(h)

    def penalized_parameters(self):
        return [p for n, p in self.named_parameters() if p.dim() > 1]
