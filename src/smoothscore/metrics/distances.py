"""Distances between sample sets: Wasserstein (POT), Frechet distance (FID formula) and k-NN precision/recall."""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_points
from ..errors import ConfigError


def _np(x, name) -> np.ndarray:
    t = check_points(x, name).detach().cpu().to(torch.float64)
    return t.reshape(t.shape[0], -1).numpy()


def _subsample(a: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    if n is None or a.shape[0] <= n:
        return a
    return a[np.random.default_rng(seed).choice(a.shape[0], n, replace=False)]


def wasserstein_1d(a, b, p: int = 1) -> float:
    """W_p between two 1-D empirical distributions (uniform weights), ``ot.wasserstein_1d``."""
    # lazy: POT loads only when a Wasserstein distance is computed
    import ot

    x, y = _np(a, "a"), _np(b, "b")
    if x.shape[1] != 1 or y.shape[1] != 1:
        raise ConfigError("wasserstein_1d needs 1-D samples")
    return float(ot.wasserstein_1d(x[:, 0], y[:, 0], p=p) ** (1.0 / p))


def wasserstein_2d(a, b, *, max_points: int | None = 2000, seed: int = 0) -> float:
    """W_2 between two empirical distributions in any dimension (exact OT, ``ot.emd2`` on uniform weights); sets
    larger than ``max_points`` are subsampled (seeded)."""
    # lazy: POT loads only when a Wasserstein distance is computed
    import ot

    x, y = _subsample(_np(a, "a"), max_points, seed), _subsample(_np(b, "b"), max_points, seed + 1)
    if x.shape[1] != y.shape[1]:
        raise ConfigError("sample sets have different dimensions")
    m = ot.dist(x, y)  # squared Euclidean
    return float(np.sqrt(ot.emd2(ot.unif(len(x)), ot.unif(len(y)), m, numItermax=1_000_000)))


def frechet_distance(feats_a, feats_b) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` (Heusel et al. 2017), float64, scipy ``sqrtm``;
    a tiny ridge is added when the product is singular, and the imaginary round-off discarded."""
    # lazy: scipy loads only when it is needed
    from scipy import linalg

    a, b = _np(feats_a, "feats_a"), _np(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ConfigError("feature sets have different dimensions")
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa = np.atleast_2d(np.cov(a, rowvar=False))
    sb = np.atleast_2d(np.cov(b, rowvar=False))
    covmean = linalg.sqrtm(sa @ sb)
    if not np.isfinite(covmean).all():
        eps = 1e-6 * np.eye(sa.shape[0])
        covmean = linalg.sqrtm((sa + eps) @ (sb + eps))
    covmean = np.real(covmean)
    return float(max(0.0, ((mu_a - mu_b) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * np.trace(covmean)))


def knn_precision_recall(real_feats, fake_feats, k: int = 3) -> dict[str, float]:
    """Improved precision/recall (Kynkaanniemi et al. 2019): precision = share of fake samples inside the union of
    k-NN balls of the real ones; recall = the converse."""
    r = torch.as_tensor(_np(real_feats, "real_feats"))
    f = torch.as_tensor(_np(fake_feats, "fake_feats"))
    if k >= min(len(r), len(f)):
        raise ConfigError(f"k={k} must be smaller than both set sizes")

    def radii(x):
        d = torch.cdist(x, x)
        return d.kthvalue(k + 1, dim=1).values  # k-th neighbour excluding self

    def coverage(x, ref, rad):
        return float((torch.cdist(x, ref) <= rad[None, :]).any(1).double().mean())

    return {"precision": coverage(f, r, radii(r)), "recall": coverage(r, f, radii(f))}
