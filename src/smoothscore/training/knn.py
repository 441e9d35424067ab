"""Neighbour lists of every training sample, computed once per data set (FAISS) and cached, so that a temperature-
smoothing training step does no search over the whole set (Paper B, Sec. 4.2 and Table 2).

``space="pixel"``: L2 in pixel space. ``space="feature"``: cosine distance between encoder features (the paper uses
512-d ImageNet ResNet-18 features; offline, the default encoder is the project's own small classifier trained on the
same data — :func:`smoothscore.metrics.quality.train_feature_classifier` — or any callable ``images -> (N, F)``).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from .._checks import check_points
from ..errors import ConfigError


class KNNCache:
    def __init__(self, train, k: int = 10, *, space: str = "pixel", encoder: Optional[Callable] = None,
                 cache_dir: Optional[str | Path] = None):
        import faiss

        x = check_points(train, "train").detach().cpu().float()
        if not 1 <= k <= x.shape[0]:
            raise ConfigError(f"k must be in [1, {x.shape[0]}]; got {k}")
        if space not in ("pixel", "feature"):
            raise ConfigError(f"unknown KNN space {space!r}; known: pixel, feature")
        self.train, self.k, self.space = x, int(k), space
        key = hashlib.sha1(x.numpy().tobytes() + f"{k}{space}".encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"knn-{key}.npy" if cache_dir else None
        if path is not None and path.exists():
            self.index = torch.as_tensor(np.load(path, allow_pickle=False)).long()
            return
        if space == "pixel":
            feats = x.reshape(x.shape[0], -1).numpy()
            feats = np.ascontiguousarray(feats - feats.mean(0), dtype=np.float32)
            index = faiss.IndexFlatL2(feats.shape[1])
        else:
            if encoder is None:
                raise ConfigError("space='feature' needs an encoder (images -> features)")
            with torch.no_grad():
                f = torch.as_tensor(encoder(x)).float()
            f = f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)
            feats = np.ascontiguousarray(f.numpy(), dtype=np.float32)
            index = faiss.IndexFlatIP(feats.shape[1])  # cosine similarity on normalised features
        index.add(feats)
        _, idx = index.search(feats, self.k)
        # make sure each sample is its own first neighbour (ties with duplicates may reorder)
        idx = torch.as_tensor(idx).long()
        own = torch.arange(x.shape[0])
        has_self = (idx == own[:, None]).any(1)
        idx[~has_self, -1] = own[~has_self]
        self.index = idx
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, self.index.numpy())

    def neighbors_of(self, idx: torch.Tensor) -> torch.Tensor:
        """Images of the K nearest training samples of training samples ``idx``: (B, K, *dims)."""
        return self.train[self.index[idx.cpu()]]
