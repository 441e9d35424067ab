"""A trained network as a score field (the contract every sampler and metric takes).

``sigma_min`` / ``sigma_max`` are the noise levels the network was trained on (from its checkpoint; None when the
checkpoint or the model does not record them).

Unconditioned models (Paper B's noise unconditioning) with the sigma-free ``param="score"`` ignore sigma (it may be
omitted); with Paper B's ``"sigma_scaled"`` the network ignores sigma but the score is ``F(x) / sigma``."""

from __future__ import annotations

from pathlib import Path

import torch

from ..nets.checkpoint import load_score_model
from .base import ScoreField


class NeuralScore(ScoreField):
    def __init__(self, model: torch.nn.Module, *, data_shape=None, dtype="float32", device="auto"):
        self._init_placement(dtype, device)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.conditioned = bool(getattr(model, "conditioned", True))
        self.needs_sigma = bool(getattr(model, "needs_sigma", self.conditioned))
        self.param = getattr(model, "param", None)
        cfg = getattr(model, "config", {}) or {}
        self.data_shape = tuple(data_shape or cfg.get("data_shape") or ()) or None
        rng = getattr(model, "sigma_range", None)
        self.sigma_min, self.sigma_max = (float(v) for v in rng) if rng else (None, None)

    def score(self, x, sigma=None) -> torch.Tensor:
        x, s = self.prepare(x, sigma, need_sigma=self.needs_sigma)
        return self.model(x, s) if self.needs_sigma else self.model(x)

    def denoise(self, x, sigma) -> torch.Tensor:
        x, s = self.prepare(x, sigma)
        return x + (s * s).reshape(-1, *([1] * (x.dim() - 1))) * self.score(x, s)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, ema: bool = True, dtype="float32", device="auto") -> NeuralScore:
        """Rebuild the model from a training checkpoint folder (safetensors; no code is executed)."""
        return cls(load_score_model(path, ema=ema), dtype=dtype, device=device)
