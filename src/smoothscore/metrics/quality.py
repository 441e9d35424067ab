"""Sample quality in the feature space of a classifier the project trains on the same data.

Paper B reports FID against the training set and against a test set (Inception features); here, offline and for
small images, the features are the penultimate layer of a compact CNN trained on the training images' labels (or,
without labels, a denoising autoencoder's code). On these features:

* Frechet distance to the training set and to a held-out test set, and their ratio FD_test / FD_train (the paper
  reads a smaller ratio as better generalisation);
* improved k-NN precision / recall (Kynkaanniemi et al. 2019) against the training set;
* the classifier's mean confidence (max softmax) on the samples.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_points
from ..device import resolve_dtype
from ..errors import ConfigError
from ..io import atomic_write
from .distances import frechet_distance, knn_precision_recall


class FeatureClassifier(nn.Module):
    """conv(32) -> pool -> conv(64) -> pool -> linear(feat_dim) features -> linear(n_out) head."""

    def __init__(self, channels: int, size: int, n_out: int, feat_dim: int = 32, autoencoder: bool = False):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.GroupNorm(8, 32),
            nn.SiLU(),
            nn.AvgPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.GroupNorm(8, 64),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(64 * 16, feat_dim),
            nn.SiLU(),
        )
        self.head = nn.Linear(feat_dim, n_out)
        self.autoencoder = autoencoder
        self.meta = {
            "channels": channels,
            "size": size,
            "n_out": n_out,
            "feat_dim": feat_dim,
            "autoencoder": autoencoder,
        }

    def features(self, x: torch.Tensor) -> torch.Tensor:
        was = self.training
        self.eval()
        with torch.no_grad():
            dt = self.head.weight.dtype  # float32, or float64 for a classifier trained with dtype="float64"
            out = torch.cat([self.body(x[i : i + 512].to(dt)) for i in range(0, x.shape[0], 512)])
        self.train(was)
        return out

    def forward(self, x):
        return self.head(self.body(x))


def _key(x: torch.Tensor, labels, seed: int, steps: int, dtype: torch.dtype = torch.float32) -> str:
    h = hashlib.sha1(x.detach().cpu().float().numpy().tobytes())
    if labels is not None:
        h.update(labels.cpu().numpy().tobytes())
    h.update(f"{seed}-{steps}".encode() + (b"" if dtype == torch.float32 else str(dtype).encode()))
    return h.hexdigest()[:16]


def train_feature_classifier(
    data,
    *,
    steps: int = 400,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    dtype: str = "float32",
) -> FeatureClassifier:
    """Train the feature network on ``data`` (Dataset or tensor of images (N, C, H, W)); classifier with labels,
    denoising autoencoder without. Cached as safetensors in ``cache_dir`` (keyed by data and settings).
    ``dtype="float64"`` trains (and later computes features) in float64, so that the features -- and the Frechet
    distances and feature-space neighbours built on them -- do not depend on the machine's float32 rounding."""
    dt = resolve_dtype(dtype)  # ConfigError for anything but float32 / float64
    x = data.x if hasattr(data, "x") else data
    labels = getattr(data, "labels", None)
    x = check_points(x, "data").to(dt)
    if x.dim() != 4:
        raise ConfigError(f"the feature classifier needs images (N, C, H, W); got {tuple(x.shape)}")
    ae = labels is None or torch.unique(labels).numel() < 2
    if not ae:
        classes, y = torch.unique(labels, return_inverse=True)
        n_out = classes.numel()
    else:
        y, n_out = None, x[0].numel()
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = FeatureClassifier(x.shape[1], x.shape[2], n_out, autoencoder=ae).to(x.dtype)
    key = _key(x, labels, seed, steps, dt)
    path = Path(cache_dir) / f"feature-classifier-{key}.safetensors" if cache_dir else None
    if path is not None and path.exists():
        # lazy: safetensors loads only when a file is read or written
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(path)))
        return model.eval()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=g)
        xb = x[idx]
        # light augmentation: small shifts and noise, so features are not tied to exact pixels
        shift = torch.randint(-1, 2, (2,), generator=g).tolist()
        xb = torch.roll(xb, shifts=shift, dims=(2, 3)) + 0.05 * torch.randn(xb.shape, generator=g).to(x.dtype)
        out = model(xb)
        loss = F.mse_loss(out, x[idx].flatten(1)) if ae else F.cross_entropy(out, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    if path is not None:
        # lazy: safetensors loads only when a file is read or written
        from safetensors.torch import save_file

        atomic_write(path, lambda tmp: save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp))
    return model


@dataclass
class QualityScorer:
    """Feature-space quality of samples against a training and a test set (see module docstring)."""

    model: FeatureClassifier
    train_feats: torch.Tensor
    test_feats: torch.Tensor | None = None

    @classmethod
    def fit(cls, train, test=None, **kw) -> QualityScorer:
        m = train_feature_classifier(train, **kw)
        tx = train.x if hasattr(train, "x") else train
        te = None if test is None else m.features(test.x if hasattr(test, "x") else test)
        return cls(m, m.features(tx), te)

    def __call__(self, samples: torch.Tensor, k: int = 3) -> dict[str, float]:
        f = self.model.features(samples)
        out = {"fd_train": frechet_distance(f, self.train_feats)}
        if self.test_feats is not None:
            out["fd_test"] = frechet_distance(f, self.test_feats)
            out["fd_ratio"] = out["fd_test"] / max(out["fd_train"], 1e-12)
        kk = min(k, f.shape[0] - 1, self.train_feats.shape[0] - 1)
        out.update(knn_precision_recall(self.train_feats, f, k=kk))
        if not self.model.autoencoder:
            with torch.no_grad():
                out["confidence"] = float(torch.softmax(self.model.head(f), 1).max(1).values.mean())
        return out

    def accuracy(self, x: torch.Tensor, labels: torch.Tensor, classes: torch.Tensor) -> float:
        with torch.no_grad():
            pred = self.model.head(self.model.features(x)).argmax(1)
        return float((classes[pred] == labels).float().mean())
