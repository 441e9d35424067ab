"""Local and equivariant-local score machines (LS, ELS) of Kamb & Ganguli, "An analytic theory of creativity in
convolutional diffusion models" (ICML 2025), in the project's VE convention ``x = y + sigma * eps``
(definitions: ``/work/shared/spec/analytic-scores.md``; read from Kambm/convolutional_diffusion, utils/idealscore.py).

Both are per-pixel posterior means over *patches* instead of whole images. With ``P(p)`` the ``k x k`` window
centred on output pixel ``p`` (``k`` odd, ``d = k // 2``):

* LS (their Eq. for the local score machine): training image ``j`` is compared at the same location only,
  ``d_j(p) = sum_{q in P(p)} sum_c (x_{c,q} - y_{j,c,q})^2`` (positions outside the image contribute 0),
  ``w_j(p) = softmax_j(-d_j(p) / (2 sigma^2))`` and ``D_c(p) = sum_j w_j(p) y_{j,c,p}``. A window covering the
  whole image from every centre (``k >= 2 max(H, W) - 1``) gives exactly the ESF.
* ELS (their equivariant local score machine): the softmax runs over patches of every training image at every
  location, ``w_{j,q}(p) = softmax_{(j,q)}(-|x_{P(p)} - y_{j,P(q)}|^2 / (2 sigma^2))``,
  ``D_c(p) = sum_{j,q} w_{j,q}(p) y_{j,c,q}``. Boundary (``padding``):

  - ``"zeros"`` (**adopted** name; the border-aware variant, matches zero-padded networks such as
    :class:`smoothscore.nets.UNet`): per axis, a pixel at distance >= d from both edges is *free* on that axis
    (candidate centres range over every position of that axis whose window fits inside), otherwise it is *fixed*
    (candidates only at its own coordinate on that axis, windows zero padded identically). Interior pixels: every
    fully-inside patch; a pixel at distance a < d from one edge: windows at distance a from that edge anywhere along
    it; corner blocks (both axes fixed): the same absolute position, i.e. the LS. Consequently ``k >= H, W`` is the
    LS with zero padding and ``k = 1`` is a 1-D ESF over every pixel value (C-vector) of every image.
  - ``"circular"``: the query window wraps around (circular padding); candidates are every fully-inside patch
    (needs ``k <= H, W``). Matches circular-padded networks.

``patch_size`` is an odd int, or a callable ``k(sigma)`` (e.g. :class:`~smoothscore.scores.patch_calibration.
PatchSizeSchedule`); queries are grouped by their k.

Streaming. Every softmax is a per-query (per output pixel) log-sum-exp streamed over chunks of training images
(running max + rescaled sums, :class:`StreamedSoftmax`), so memory is bounded by ``block_elements`` logits (plus
the chunk's unfolded patches), never by the training-set size. LS distances are direct squared differences
(box-summed with an integral image: any k costs the same); ELS distances use the GEMM form
``u.v - |v|^2 / 2`` on images centred by the training set's per-channel mean (the ``|u|^2`` term cancels per
query). ``dtype="float64"`` for exact work.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .._checks import check_points
from ..errors import ConfigError, ShapeError
from .base import ScoreField

#: default number of logits held at once (memory knob; results do not depend on it)
DEFAULT_BLOCK_ELEMENTS = 1 << 22


class StreamedSoftmax:
    """Running log-sum-exp over candidate chunks for a fixed set of query slots (shape ``slots``).

    ``update(logits, combine)``: ``logits`` has shape ``(*slots, B)``; ``combine(p)`` maps the rescaled weights
    ``p`` (same shape) to the weighted sum of candidate values, shape ``(*slots, C)``. ``mean()`` is the softmax
    average ``sum w v``; it equals one softmax over the union of all chunks (not an average of per-chunk softmaxes).
    """

    def __init__(self, slots, channels: int, dtype, device):
        self.m = torch.full(tuple(slots), -math.inf, dtype=dtype, device=device)
        self.s = torch.zeros(tuple(slots), dtype=dtype, device=device)
        self.acc = torch.zeros((*slots, channels), dtype=dtype, device=device)

    def update(self, logits: torch.Tensor, combine: Callable[[torch.Tensor], torch.Tensor]) -> None:
        m_new = torch.maximum(self.m, logits.amax(-1))
        scale = torch.exp(self.m - m_new)
        p = torch.exp(logits - m_new[..., None])
        self.s = self.s * scale + p.sum(-1)
        self.acc = self.acc * scale[..., None] + combine(p)
        self.m = m_new

    def mean(self) -> torch.Tensor:
        return self.acc / self.s[..., None]


def _odd_k(k) -> int:
    k = int(k)
    if k < 1 or k % 2 == 0:
        raise ConfigError(f"patch_size must be an odd positive integer; got {k}")
    return k


def _window_sums(m: torch.Tensor, k: int) -> torch.Tensor:
    """Sum of ``m`` (..., H, W) over the k x k window centred on every pixel, outside the image counting 0
    (integral image with clamped bounds: O(HW) for any k)."""
    h, w = m.shape[-2:]
    r = k // 2
    out = m
    for axis, n in ((-2, h), (-1, w)):
        c = F.pad(out.cumsum(axis), (0, 0, 1, 0) if axis == -2 else (1, 0))
        i = torch.arange(n, device=m.device)
        hi, lo = (i + r).clamp(max=n - 1) + 1, (i - r).clamp(min=0)
        out = c.index_select(axis, hi) - c.index_select(axis, lo)
    return out


class _PatchField(ScoreField):
    """Shared set-up of LS and ELS: training images ``(n, C, H, W)``, patch size, dtype, device, blocks."""

    def __init__(self, train, patch_size, *, dtype, device, block_elements):
        self._init_placement(dtype, device)
        y = check_points(train, "train", dtype=torch.float64, device=self.device)
        self.data_shape = tuple(y.shape[1:])
        if y.dim() == 3:
            y = y[:, None]
        if y.dim() != 4:
            raise ShapeError(f"train must be images (n, C, H, W) or (n, H, W); got {tuple(y.shape)}")
        self.n_train, self.channels, self.height, self.width = y.shape
        self.center = y.mean(dim=(0, 2, 3)).to(self.dtype)  # per-channel mean
        self.train = y.to(self.dtype)
        self._v = self.train - self.center[:, None, None]  # centred images
        if callable(patch_size):
            self.patch_size = patch_size
        else:
            self.patch_size = _odd_k(patch_size)
        if int(block_elements) < 1:
            raise ConfigError("block_elements must be positive")
        self.block_elements = int(block_elements)

    def _ks(self, s: torch.Tensor) -> torch.Tensor:
        if callable(self.patch_size):
            ks = torch.as_tensor(self.patch_size(s), device="cpu").reshape(-1).expand(s.shape[0]).long()
        else:
            ks = torch.full((s.shape[0],), self.patch_size, dtype=torch.long)
        for k in ks.unique().tolist():
            _odd_k(k)
        return ks

    def denoise(self, x, sigma) -> torch.Tensor:
        x, s = self.prepare(x, sigma)
        u = x.reshape(x.shape[0], self.channels, self.height, self.width) - self.center[:, None, None]
        out = torch.empty_like(u)
        ks = self._ks(s)
        for k in ks.unique().tolist():
            sel = torch.nonzero(ks == k).flatten().to(self.device)
            out[sel] = self._denoise_k(u[sel], s[sel], int(k))
        return (out + self.center[:, None, None]).reshape(x.shape)

    # LS: same-location softmax for the pixels selected by ``mask`` (H, W) (all pixels by default)
    def _local(self, u: torch.Tensor, s: torch.Tensor, k: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        n, (c, h, w) = u.shape[0], u.shape[1:]
        pix = torch.arange(h * w, device=self.device) if mask is None else torch.nonzero(mask.flatten()).flatten()
        inv = (1.0 / (2 * s * s))[:, None, None]
        per_pair = c * h * w
        qb = max(1, min(n, self.block_elements // per_pair))
        out = torch.empty((n, c, pix.numel()), dtype=self.dtype, device=self.device)
        for a in range(0, n, qb):
            ub = u[a : a + qb]
            bb = max(1, min(self.n_train, self.block_elements // (ub.shape[0] * per_pair)))
            acc = StreamedSoftmax((ub.shape[0], pix.numel()), c, self.dtype, self.device)
            for b in range(0, self.n_train, bb):
                v = self._v[b : b + bb]  # (B, C, H, W)
                d2 = ((ub[:, None] - v[None]) ** 2).sum(2)  # (Q, B, H, W)
                dist = _window_sums(d2, k).flatten(2)[:, :, pix]  # (Q, B, P)
                vals = v.flatten(2)[:, :, pix]  # (B, C, P)
                acc.update((-dist * inv[a : a + qb]).transpose(1, 2), lambda p: torch.einsum("qpb,bcp->qpc", p, vals))  # noqa: B023
            out[a : a + qb] = acc.mean().transpose(1, 2)
        return out

    def __repr__(self) -> str:
        k = "callable" if callable(self.patch_size) else self.patch_size
        return (
            f"{type(self).__name__}(n={self.n_train}, shape={self.data_shape}, patch_size={k}, "
            f"dtype={self.dtype}, device={self.device})"
        )


class LocalEmpiricalScore(_PatchField):
    """Local score machine (LS, Kamb & Ganguli) of ``train`` (``(n, C, H, W)`` or ``(n, H, W)``):
    ``D_c(p) = sum_j softmax_j(-|x_{P(p)} - y_{j,P(p)}|^2 / (2 sigma^2)) y_{j,c,p}`` (window zero padded; module
    docstring). ``patch_size``: odd int or callable of sigma; ``k >= 2 max(H, W) - 1`` is the exact ESF.

    Args: ``dtype`` ("float32" / "float64"), ``device`` ("auto" = CUDA when present), ``block_elements`` (values
    held per streamed block: query images x training images x C x H x W)."""

    def __init__(
        self, train, patch_size, *, dtype="float32", device="auto", block_elements: int = DEFAULT_BLOCK_ELEMENTS
    ):
        super().__init__(train, patch_size, dtype=dtype, device=device, block_elements=block_elements)

    def _denoise_k(self, u, s, k):
        return self._local(u, s, k).reshape(u.shape)


class EquivariantLocalScore(_PatchField):
    """Equivariant local score machine (ELS, Kamb & Ganguli) of ``train``:
    ``D_c(p) = sum_{j,q} softmax_{(j,q)}(-|x_{P(p)} - y_{j,P(q)}|^2 / (2 sigma^2)) y_{j,c,q}`` over patches of every
    training image at every location (module docstring: the two boundary rules). ``padding``: ``"zeros"`` (border-aware,
    **adopted** default; ``k >= H, W`` is the LS, ``k = 1`` a 1-D ESF over pixel values) or ``"circular"``.

    Args: as :class:`LocalEmpiricalScore`; ``block_elements`` bounds the logits of one streamed block
    (query pixels x candidate patches; one query image against one training image is the minimum)."""

    def __init__(
        self,
        train,
        patch_size,
        *,
        padding: str = "zeros",
        dtype="float32",
        device="auto",
        block_elements: int = DEFAULT_BLOCK_ELEMENTS,
    ):
        super().__init__(train, patch_size, dtype=dtype, device=device, block_elements=block_elements)
        if padding not in ("zeros", "circular"):
            raise ConfigError(f"padding must be 'zeros' or 'circular'; got {padding!r}")
        self.padding = padding
        if padding == "circular" and not callable(self.patch_size) and self.patch_size > min(self.height, self.width):
            raise ConfigError(f"circular ELS needs patch_size <= image size {min(self.height, self.width)}")

    def _axis(self, n: int, d: int):
        """(free positions, fixed positions) of one axis: free = at distance >= d from both edges."""
        i = torch.arange(n, device=self.device)
        free = (i >= d) & (i <= n - 1 - d)
        return i[free], i[~free]

    def _denoise_k(self, u, s, k):
        n, (c, h, w) = u.shape[0], u.shape[1:]
        d = k // 2
        rows_free, rows_fixed = self._axis(h, d)
        cols_free, cols_fixed = self._axis(w, d)
        out = torch.empty((n, c, h, w), dtype=self.dtype, device=self.device)
        if self.padding == "circular":
            if k > min(h, w):
                raise ConfigError(f"circular ELS needs patch_size <= image size {min(h, w)}; got {k}")
            q = F.unfold(F.pad(u, (d, d, d, d), mode="circular"), k)  # (N, P, H*W)
            cand = (rows_free[:, None] * w + cols_free[None, :]).flatten()
            return self._patch_softmax(q[:, None], s, k, [cand]).reshape(n, c, h, w)
        # interior block: every fully-inside patch
        groups = []  # (query centres (G, m), candidate centres (G, m_c)): here the same sets
        if rows_free.numel() and cols_free.numel():
            cen = (rows_free[:, None] * w + cols_free[None, :]).flatten()
            groups.append((cen[None], cen[None]))
        if rows_fixed.numel() and cols_free.numel():  # near top/bottom edges: fixed row, free column
            cen = rows_fixed[:, None] * w + cols_free[None, :]  # (G, m)
            groups.append((cen, cen))
        if rows_free.numel() and cols_fixed.numel():  # near left/right edges: fixed column, free row
            cen = rows_free[None, :] * w + cols_fixed[:, None]  # (G, m)
            groups.append((cen, cen))
        qp = F.unfold(F.pad(u, (d, d, d, d)), k)  # (N, P, H*W)
        flat = out.view(n, c, h * w)
        for qcen, ccen in groups:
            q = qp[:, :, qcen.flatten()].reshape(n, qp.shape[1], *qcen.shape).permute(0, 2, 1, 3)  # (N, G, P, m)
            flat[:, :, qcen.flatten()] = self._patch_softmax(q, s, k, list(ccen))
        if rows_fixed.numel() and cols_fixed.numel():  # corner blocks: same absolute position (LS)
            mask = torch.zeros(h, w, dtype=torch.bool, device=self.device)
            mask[rows_fixed[:, None], cols_fixed[None, :]] = True
            flat[:, :, torch.nonzero(mask.flatten()).flatten()] = self._local(u, s, k, mask)
        return out

    def _patch_softmax(self, q: torch.Tensor, s: torch.Tensor, k: int, cands) -> torch.Tensor:
        """Streamed ELS softmax. ``q`` (N, G, P, m): query patches of G groups with m query pixels each;
        ``cands[g]``: (m_c,) candidate centres (flat indices) of group g in every training image. Returns the
        averaged centre values (N, C, G * m) in group order."""
        n, g_n, p_dim, m = q.shape
        cen = torch.stack(list(cands))  # (G, m_c)
        mc = cen.shape[1]
        d = k // 2
        inv = (1.0 / (s * s))[:, None, None]
        per_img = g_n * m * mc
        qb = max(1, min(n, self.block_elements // per_img))
        out = torch.empty((n, self.channels, g_n * m), dtype=self.dtype, device=self.device)
        for a in range(0, n, qb):
            qq = q[a : a + qb].transpose(2, 3)  # (Q, G, m, P)
            bb = max(1, min(self.n_train, self.block_elements // (qq.shape[0] * per_img)))
            acc = StreamedSoftmax((qq.shape[0], g_n, m), self.channels, self.dtype, self.device)
            for b in range(0, self.n_train, bb):
                v = self._v[b : b + bb]
                vp = F.unfold(F.pad(v, (d, d, d, d)), k)[:, :, cen]  # (B, P, G, m_c)
                vp = vp.permute(2, 1, 0, 3).reshape(g_n, p_dim, -1)  # (G, P, B*m_c)
                half = 0.5 * (vp * vp).sum(1)  # (G, B*m_c)
                vals = v.flatten(2)[:, :, cen].permute(2, 0, 3, 1).reshape(g_n, -1, self.channels)
                logits = (torch.einsum("qgmp,gpb->qgmb", qq, vp) - half[None, :, None]) * inv[a : a + qb, :, :, None]
                acc.update(logits, lambda p: torch.einsum("qgmb,gbc->qgmc", p, vals))  # noqa: B023
            out[a : a + qb] = acc.mean().reshape(qq.shape[0], g_n * m, self.channels).transpose(1, 2)
        return out
