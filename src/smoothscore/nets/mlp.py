"""Fully connected score networks: Paper A's two-layer ReLU network and a deeper ReLU MLP, each with or without a
noise input (one option)."""

from __future__ import annotations

import torch
from torch import nn

from .embedding import SigmaEmbedding


class TwoLayerReLU(nn.Module):
    """``f(x) = sum_i a_i relu(w_i . x + b_i) + c`` (Paper A, Sec. 3; Savarese et al. 2019). Weight decay on
    ``w``/``a`` (not on biases) makes it represent functions at a cost ~ ``int |f''|``.

    ``conditioned=True`` appends the noise input ``c_noise`` to the input (one extra coordinate).
    """

    def __init__(self, in_dim: int = 1, width: int = 256, out_dim: int | None = None, conditioned: bool = False):
        super().__init__()
        self.conditioned = conditioned
        self.hidden = nn.Linear(in_dim + (1 if conditioned else 0), width)
        self.out = nn.Linear(width, out_dim or in_dim)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor | None = None) -> torch.Tensor:
        h = x.reshape(x.shape[0], -1)
        if self.conditioned:
            h = torch.cat([h, c_noise.to(h.dtype)[:, None]], 1)
        return self.out(torch.relu(self.hidden(h))).reshape(x.shape)

    def penalized_parameters(self):
        """Weights subject to weight decay (biases are not penalised)."""
        return [self.hidden.weight, self.out.weight]


class MLP(nn.Module):
    """ReLU MLP with ``depth`` hidden layers of ``width``. Conditioned: an embedding of the noise input ``c_noise``
    (Fourier or raw features) is concatenated to the input of every hidden layer. Unconditioned: no noise input
    exists."""

    def __init__(
        self,
        dim: int,
        width: int = 256,
        depth: int = 2,
        conditioned: bool = True,
        embedding: str = "fourier",
        emb_dim: int = 32,
    ):
        super().__init__()
        self.conditioned = conditioned
        e = emb_dim if conditioned else 0
        self.emb = SigmaEmbedding(emb_dim, embedding) if conditioned else None
        dims = [dim] + [width] * depth
        self.layers = nn.ModuleList(nn.Linear(a + e, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(width + e, dim)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor | None = None) -> torch.Tensor:
        h = x.reshape(x.shape[0], -1)
        emb = self.emb(c_noise).to(h.dtype) if self.conditioned else None
        for lin in self.layers:
            h = torch.relu(lin(h if emb is None else torch.cat([h, emb], 1)))
        return self.out(h if emb is None else torch.cat([h, emb], 1)).reshape(x.shape)

    def penalized_parameters(self):
        return [m.weight for m in self.layers] + [self.out.weight]
