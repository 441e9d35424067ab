"""The streamed Gaussian-softmax kernel shared by the exact scores.

For centred queries ``u`` (N, D), per-query inverse variances ``inv = 1 / (sigma^2 T)`` and the centred training
points ``v_j`` of a :class:`~smoothscore.data.arrays.PointSet`, it returns

    lse_i  = LSE_j( log pi_j + (u_i . v_j - |v_j|^2 / 2) inv_i ),
    mean_i = sum_j softmax_j(...) v_j,

streaming over chunks of the training set with an online log-sum-exp, so memory is O(N D + chunk), never O(N M).
The per-query ``inv_i`` is folded into the queries. Two backends compute one chunk:

* ``"flash"`` (CPU): PyTorch's fused flash-attention kernel for CPU returns a chunk's log-sum-exp with its
  softmax-weighted values in one pass over cache-sized key blocks (no N x M logits in memory). When every query
  has the same ``inv`` (a float sigma, or a sampler's constant sigma vector) the keys and values are the centred
  rows themselves (the stored rows, no copy, when the set needs no centring), ``inv`` is the kernel's scale and
  ``log pi_j - inv |v_j|^2 / 2`` a broadcast (1, chunk) mask: ``logit_ij = inv (u_i . v_j) + mask_j``
  (head dimension D rather than D + 1; docs/numerics.md). With per-query ``inv_i`` the bias
  enters the product as one extra key column, ``logit_ij = [inv_i u_i, -inv_i] . [v_j, |v_j|^2 / 2]`` (plus
  ``[1] . [log pi_j]`` for non-uniform weights), the augmented keys kept for small sets
  (:meth:`~smoothscore.data.arrays.PointSet.keys`);
* ``"gemm"``: blocked ``logits = addmm(-inv |v|^2/2, inv u, v^T)`` straight on the stored rows (no copy when
  they need no centring), one max pass, an in-place ``exp``, ``P V`` (any device, autograd, and the only form
  used for ``log_prob``).

``"auto"`` picks flash on CPU for ``D <= FLASH_MAX_DIM`` (the crossover of ``benchmarks/bench_empirical.py``)
and gemm otherwise. Both give the same numbers to rounding (``tests/test_empirical_kernel.py``).
"""

from __future__ import annotations

import math

import torch
from torch.autograd import forward_ad

#: above this dimension the blocked GEMM form is faster than the CPU flash kernel (docs/benchmarks.md)
FLASH_MAX_DIM = 1024  # flash 1.04x / gemm 1.10x the GEMM pair at d = 784; flash ~1.5x, gemm ~1.0x at d = 3072


def _flash_op():
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return getattr(op, "default", op)


_FLASH = _flash_op()  # looked up once, not per call


def is_plain(u: torch.Tensor) -> bool:
    """False under any autodiff: ``requires_grad``, forward-mode duals and ``torch.func`` transforms (jvp/vjp/vmap),
    where the kernel must avoid in-place and ``out=`` operations, the reused scratch chunk and the flash op."""
    if u.requires_grad:
        return False
    try:
        if torch._C._functorch.is_functorch_wrapped_tensor(u):
            return False
    except AttributeError:  # pragma: no cover - older torch
        pass
    if getattr(forward_ad, "_current_level", 0) < 0:  # no dual level entered: no tangent can exist
        return True
    return forward_ad.unpack_dual(u).tangent is None


def pick_method(method: str, u: torch.Tensor, want_mean: bool) -> str:
    if not is_plain(u):
        return "gemm"
    if method != "auto":
        return method
    if u.device.type == "cpu" and want_mean and u.shape[1] <= FLASH_MAX_DIM and _FLASH is not None:
        return "flash"
    return "gemm"


def _merge(lse, acc, l_c, o_c):
    """Online merge of a chunk's (lse, weighted mean) into the running pair."""
    if lse is None:
        return l_c, o_c
    new = torch.logaddexp(lse, l_c)
    return new, acc * torch.exp(lse - new)[:, None] + o_c * torch.exp(l_c - new)[:, None]


def gaussian_stats(
    u: torch.Tensor,
    inv: torch.Tensor,
    points,
    *,
    logw: torch.Tensor | None = None,
    want_mean: bool = True,
    block_elements: int = 1 << 18,
    method: str = "auto",
):
    """``(lse (N,), mean (N, D) or None)`` over the rows of ``points`` (see module doc). ``logw``: local log mixture
    weights (n,), or None for uniform weights ``-log n_total`` (added to ``lse``)."""
    method = pick_method(method, u, want_mean) if is_plain(inv) else "gemm"  # a differentiable sigma too
    if method == "flash":
        lse, acc = _flash_stats(u, inv, points, logw)
    else:
        lw = None if logw is None else logw.to(u.dtype)
        lse, acc = _gemm_stats(u, inv, points, points.half_sq_as(u.dtype), lw, want_mean, block_elements)
    if logw is None:
        lse = lse - math.log(points.n_total)
    return lse, acc


def _uniform(inv: torch.Tensor) -> float | None:
    """The common value of ``inv`` when all queries share it (one reduction), else None."""
    n = inv.shape[0]
    if n == 0:
        return None
    if n == 1 or inv.stride(0) == 0:
        return inv[0].item()
    lo, hi = torch.aminmax(inv)
    lo = lo.item()
    return lo if lo == hi.item() else None


def _flash_stats(u, inv, points, logw):
    """The fused CPU flash-attention kernel over the set's chunks: with a common ``inv``, keys = values = the
    centred rows, ``scale = inv`` and the mask ``log pi - inv |v|^2/2``; otherwise augmented keys
    ``[v, |v|^2/2, (log pi)]`` (:meth:`~smoothscore.data.arrays.PointSet.keys`: built once and kept for a small
    set) against the queries ``[inv u, -inv, (1)]``."""
    op = _FLASH
    one = _uniform(inv)
    if one is not None:
        n_q, D = u.shape
        q = u.contiguous().view(1, 1, n_q, D)
        hs = points.half_sq_as(u.dtype)
        lw = None if logw is None else logw.to(u.dtype)
        lse = acc = None
        for a, v in points.chunks(u.dtype, reuse=True):
            b = a + v.shape[0]
            mask = hs[a:b] * -one if lw is None else torch.add(lw[a:b], hs[a:b], alpha=-one)
            k = v.contiguous().view(1, 1, b - a, D)
            o, l_c = op(q, k, k, attn_mask=mask.view(1, 1, 1, b - a), scale=one)[:2]
            lse, acc = _merge(lse, acc, l_c.view(n_q), o.view(n_q, D))
        return lse, acc
    D = u.shape[1]
    e = 1 if logw is None else 2
    q = u.new_empty(u.shape[0], D + e)
    torch.mul(u, inv[:, None], out=q[:, :D])
    torch.neg(inv, out=q[:, D])
    if logw is not None:
        q[:, D + 1] = 1.0
    q = q.view(1, 1, *q.shape)
    lse = acc = None
    for _, k in points.keys(u.dtype, logw):
        k = k.view(1, 1, *k.shape)
        o, l_c = op(q, k, k, scale=1.0)[:2]
        lse, acc = _merge(lse, acc, l_c.view(-1), o.view(o.shape[2], -1)[:, :D])
    return lse, acc


def _gemm_stats(u, inv, points, hs, lw, want_mean, block_elements):
    """Blocked ``logits = (inv u) V^T - inv |v|^2/2 (+ log pi)`` (one addmm), online max, in-place exp, ``P V``."""
    n_q, D = u.shape
    grad = not is_plain(u) or not is_plain(inv)
    qu = u * inv[:, None]
    qb = max(1, min(n_q, 1024))
    cb = max(256, block_elements // qb)  # (256 queries, 1024 rows) at the default: docs/benchmarks.md
    blocks = [(a0, min(n_q, a0 + qb)) for a0 in range(0, n_q, qb)]
    ms = [torch.full((b0 - a0,), -math.inf, dtype=u.dtype, device=u.device) for a0, b0 in blocks]
    ss = [torch.zeros_like(m) for m in ms]
    accs = [u.new_zeros(b0 - a0, D) if want_mean else None for a0, b0 in blocks]
    for a, v in points.chunks(u.dtype, reuse=not grad):
        for c0 in range(0, v.shape[0], cb):
            vc = v[c0 : c0 + cb]
            hc = hs[a + c0 : a + c0 + vc.shape[0]]
            for i, (a0, b0) in enumerate(blocks):
                bias = torch.outer(-inv[a0:b0], hc)
                if lw is not None:
                    bias = bias + lw[a + c0 : a + c0 + vc.shape[0]]
                logits = torch.addmm(bias, qu[a0:b0], vc.T)
                m_new = torch.maximum(ms[i], logits.amax(1))
                scale = torch.exp(ms[i] - m_new)
                p = torch.exp(logits - m_new[:, None]) if grad else logits.sub_(m_new[:, None]).exp_()
                ss[i] = ss[i] * scale + p.sum(1)
                if want_mean:
                    accs[i] = torch.addmm(accs[i] * scale[:, None], p, vc)
                ms[i] = m_new
    lse = torch.cat([mi + torch.log(si) for mi, si in zip(ms, ss)])
    mean = torch.cat([ai / si[:, None] for ai, si in zip(accs, ss)]) if want_mean else None
    return lse, mean
