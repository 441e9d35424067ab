"""PCA-locality denoiser of Lukoianov et al., "Locality in image diffusion models emerges from data statistics"
(arXiv 2509.09672; read from ottogin/locality-in-diffusion-models, models/pca_locality.py and utils/wiener.py), in
the project's VE convention ``x = y + sigma * eps``.

With ``Sigma = U diag(lambda) U^T`` the training set's covariance over all ``D = C*H*W`` coordinates (unbiased,
``n - 1``), the Wiener filter at noise level sigma is ``W = U diag(lambda / (lambda + sigma^2)) U^T`` (their
``alpha LA / (beta + alpha LA)`` with ``alpha = 1 / (1 + sigma^2)``, ``beta = 1 - alpha``). The locality mask is
``M[i, p] = W[i, p] / W[i, i]`` (rows normalised by the diagonal; ``|W[i, i]| < 1e-6`` leaves the row as is),
binarised to ``|M| >= threshold * max|M|`` when ``mask_threshold > 0`` (their default 0.02; configs use 0.03-0.05).
Every output coordinate ``p`` has its own softmax over the training images:

    d_j(p) = sum_i M[i, p] (x_i - y_{j,i})^2,  w_j(p) = softmax_j(-d_j(p) / (2 sigma^2 T)),  D_p = sum_j w_j(p) y_{j,p}

(their ``delta @ mask`` with ``delta = (x_t - sqrt(alpha) y)^2``, ``logits = -delta_mask / (2 beta T)``, which is
this formula after ``x_VE = x_t / sqrt(alpha)``). A mask of all ones gives every pixel the full distance: the ESF.
One softmax runs over the whole training set (streamed log-sum-exp, :class:`~smoothscore.scores.local.
StreamedSoftmax`); the reference code's ``WeightedStreamingSoftmax`` instead sums per-chunk softmaxes, which is
exact only when the training set fits in one chunk. ``mask=`` may also be ``"ones"`` (the ESF limit, computed
without the ``D x D`` product: GoldDiff's golden subset on the optimal denoiser), a fixed ``(D, D)`` tensor or a
callable ``sigma -> (D, D)`` (for tests and ablations).

``golden=`` (:class:`GoldenSubset`) switches on GoldDiff's golden subset (Shang et al., ICML 2026;
``shangxinyi/GoldDiff``, methods/base.py ``_get_knn_subset_and_distances``): an **approximate, uncertified** mode
that restricts each query's softmax to a data-dependent subset (module :mod:`smoothscore.scores.golden_subset`).
"""

from __future__ import annotations

import torch

from .._checks import check_points
from ..errors import ConfigError, ShapeError
from .base import ScoreField
from .local import DEFAULT_BLOCK_ELEMENTS, StreamedSoftmax


def wiener_mask(eigvals, eigvecs, sigma: float, threshold: float, eps: float = 1e-6) -> torch.Tensor:
    """Lukoianov et al.'s locality mask at ``sigma`` (module docstring): ``W = U diag(l / (l + sigma^2)) U^T``,
    rows divided by their diagonal, binarised at ``threshold * max|M|`` when ``threshold > 0``."""
    shrink = eigvals / (eigvals + sigma * sigma)
    w = (eigvecs * shrink) @ eigvecs.T
    den = torch.diagonal(w).clone()[:, None]
    den[den.abs() < eps] = 1.0
    m = w / den
    if threshold > 0:
        m = (m.abs() >= m.abs().max() * threshold).to(m.dtype)
    return m


class PCALocalityScore(ScoreField):
    """PCA-locality denoiser of ``train`` (``(n, *dims)``; module docstring, Lukoianov et al. Eq. of the
    Wiener-mask-weighted per-pixel softmax).

    Args: ``mask_threshold`` (0 keeps the real-valued normalised mask), ``temperature`` T of the softmax,
    ``mask`` (``"wiener"``, a fixed ``(D, D)`` tensor, or a callable of sigma), ``golden`` (None for the exact
    field; a :class:`~smoothscore.scores.golden_subset.GoldenSubset` for GoldDiff's approximate mode), ``dtype``,
    ``device``, ``block_elements`` (values held per streamed block: queries x training images x D)."""

    def __init__(
        self,
        train,
        *,
        mask_threshold: float = 0.02,
        temperature: float = 1.0,
        mask="wiener",
        golden=None,
        dtype="float32",
        device="auto",
        block_elements: int = DEFAULT_BLOCK_ELEMENTS,
    ):
        self._init_placement(dtype, device)
        y = check_points(train, "train", dtype=torch.float64, device=self.device)
        self.data_shape = tuple(y.shape[1:])
        self.n_train, self.dim = y.shape[0], int(y[0].numel())
        if not float(mask_threshold) >= 0 or float(mask_threshold) >= 1:
            raise ConfigError(f"mask_threshold must be in [0, 1); got {mask_threshold}")
        if not float(temperature) > 0:
            raise ConfigError(f"temperature must be positive; got {temperature}")
        if int(block_elements) < 1:
            raise ConfigError("block_elements must be positive")
        self.mask_threshold, self.temperature = float(mask_threshold), float(temperature)
        self.block_elements = int(block_elements)
        flat = y.reshape(self.n_train, -1)
        self.train = flat.to(self.dtype)
        if isinstance(mask, str) and mask not in ("wiener", "ones"):
            raise ConfigError(f"mask must be 'wiener', 'ones', a (D, D) tensor or a callable; got {mask!r}")
        if isinstance(mask, str) and mask == "wiener":
            if self.n_train < 2:
                raise ConfigError("the Wiener mask needs at least 2 training images (a covariance)")
            lam, vec = torch.linalg.eigh(torch.cov(flat.T))
            self._eig = (lam.clamp_min(0), vec)
        elif not isinstance(mask, str) and not callable(mask):
            self._check_mask(torch.as_tensor(mask))
        self.mask = mask
        self._masks: dict[float, torch.Tensor] = {}
        self.golden = golden
        if golden is not None:
            golden.bind(self.train, self.data_shape)

    def _check_mask(self, m: torch.Tensor) -> torch.Tensor:
        if tuple(m.shape) != (self.dim, self.dim):
            raise ShapeError(f"mask must have shape ({self.dim}, {self.dim}); got {tuple(m.shape)}")
        return m.to(device=self.device, dtype=self.dtype)

    def mask_at(self, sigma: float) -> torch.Tensor:
        """The ``(D, D)`` locality mask used at noise level ``sigma`` (cached per sigma)."""
        key = float(sigma)
        if isinstance(self.mask, str) and self.mask == "ones":
            return torch.ones(self.dim, self.dim, dtype=self.dtype, device=self.device)
        if key not in self._masks:
            if isinstance(self.mask, str):
                lam, vec = self._eig
                m = wiener_mask(lam, vec, key, self.mask_threshold)
            elif callable(self.mask):
                m = torch.as_tensor(self.mask(key))
            else:
                m = torch.as_tensor(self.mask)
            if len(self._masks) > 64:
                self._masks.clear()
            self._masks[key] = self._check_mask(m)
        return self._masks[key]

    def denoise(self, x, sigma) -> torch.Tensor:
        x, s = self.prepare(x, sigma)
        q = x.reshape(x.shape[0], -1)
        out = torch.empty_like(q)
        for val in s.unique().tolist():
            sel = torch.nonzero(s == val).flatten()
            m = None if isinstance(self.mask, str) and self.mask == "ones" else self.mask_at(val)
            if self.golden is None:
                out[sel] = self._softmax_all(q[sel], val, m)
            else:
                idx = self.golden.select(q[sel], val)  # (Q, K) training indices
                out[sel] = self._softmax_subset(q[sel], val, m, idx)
        return out.reshape(x.shape)

    def _logits(self, q, cand, sigma, m):
        """``-sum_i M[i, p] (q_i - y_i)^2 / (2 sigma^2 T)`` as ``(Q, D, B)``; ``cand`` (B, D) or (Q, B, D)."""
        delta = (q[:, None] - cand) ** 2
        inv = 1.0 / (2 * sigma * sigma * self.temperature)
        if m is None:  # mask of ones: every coordinate gets the full distance (ESF)
            return (-delta.sum(-1) * inv)[:, None, :].expand(-1, q.shape[1], -1)
        return -(delta @ m).transpose(1, 2) * inv

    def _softmax_all(self, q, sigma, m):
        n, d = q.shape
        qb = max(1, min(n, self.block_elements // d))
        out = torch.empty_like(q)
        for a in range(0, n, qb):
            qq = q[a : a + qb]
            bb = max(1, min(self.n_train, self.block_elements // (qq.shape[0] * d)))
            acc = StreamedSoftmax((qq.shape[0], d), 1, self.dtype, self.device)
            for b in range(0, self.n_train, bb):
                y = self.train[b : b + bb]
                acc.update(self._logits(qq, y, sigma, m), lambda p: torch.einsum("qdb,bd->qd", p, y)[..., None])  # noqa: B023
            out[a : a + qb] = acc.mean()[..., 0]
        return out

    def _softmax_subset(self, q, sigma, m, idx):
        n, d = q.shape
        k = idx.shape[1]
        if m is None:  # ESF mask: one softmax per query over its subset
            y = self.train[idx]  # (Q, K, D)
            w = torch.softmax(-((q[:, None] - y) ** 2).sum(-1) / (2 * sigma * sigma * self.temperature), dim=1)
            return torch.einsum("qk,qkd->qd", w, y)
        bb = max(1, min(k, self.block_elements // (n * d)))
        acc = StreamedSoftmax((n, d), 1, self.dtype, self.device)
        for b in range(0, k, bb):
            y = self.train[idx[:, b : b + bb]]  # (Q, B, D)
            acc.update(self._logits(q, y, sigma, m), lambda p: torch.einsum("qdb,qbd->qd", p, y)[..., None])  # noqa: B023
        return acc.mean()[..., 0]

    def __repr__(self) -> str:
        mode = "exact" if self.golden is None else f"golden-subset (approximate) {self.golden!r}"
        return (
            f"PCALocalityScore(n={self.n_train}, shape={self.data_shape}, mask_threshold={self.mask_threshold}, "
            f"{mode}, dtype={self.dtype})"
        )
