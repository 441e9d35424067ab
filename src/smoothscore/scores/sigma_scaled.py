"""The exact minimiser of Paper B's code's unconditioned loss, as a score field (the ``"sigma_scaled"`` counterpart
of :class:`~smoothscore.scores.unconditional.UnconditionalEmpiricalScore`).

Paper B's official code (``XinyuZhou2001/smoothing_the_score``, ``Code/losses.py`` with score_sde's NCSN++,
``conditional=False, scale_by_sigma=True``) trains a network ``F(x)`` that never sees sigma, by

    L[F] = E_i E_j E_z |F(mu_j + sigma_i z) + z|^2,    i uniform over the levels, j uniform over the training set,

and samples with ``s(x, sigma_i) = F(x) / sigma_i``, sigma_i the sampler's *scheduled* level. The minimiser is the
posterior mean ``F*(x) = -E[z | x]`` under the joint law of (level, centre) given ``x``:

    F*(x) = sum_{i,j} w_ij (mu_j - x) / sigma_i,     w_ij ∝ q_i sigma_i^{-d} exp(-|x - mu_j|^2 / (2 sigma_i^2)),

the ``weighting="uniform"`` mixture of :mod:`~smoothscore.scores.unconditional` with components ``1/sigma_i``
instead of ``1/sigma_i^2``. :meth:`SigmaScaledEmpiricalScore.score` returns ``F*(x) / sigma``. Why it matters
(docs/paper-b.md): with the sigma-free p_MN score a scheduled step ``sigma_i^2 s`` overshoots by
``sigma_i^2 / sigma*^2`` when the sample's own level sigma* lags the schedule; with ``F*/sigma_i`` the predictor
moves by ``~ (sigma_i^2 - sigma_{i+1}^2)/sigma_i * |z|``, contracting the level error, and the Langevin corrector
pulls sigma* toward the schedule.
"""

from __future__ import annotations

import torch

from .._checks import bcast
from ..errors import ConfigError
from .unconditional import UnconditionalEmpiricalScore


class SigmaScaledEmpiricalScore(UnconditionalEmpiricalScore):
    """``score(x, sigma) = F*(x) / sigma`` with ``F* = -E[z | x]`` the exact minimiser of ``E |F(x~) + z|^2`` over
    the training set and the levels (module doc). Levels as in the parent (``sigmas`` discrete, equally likely, or
    the continuous log-uniform range); ``temperature`` / ``k_neighbors`` as in the parent. ``mode`` is always
    ``"exact"``; ``tolerance`` is not offered (the certificate of the parent bounds the p_MN score)."""

    conditioned = False  # the network (here: the minimiser) sees no sigma ...
    needs_sigma = True  # ... but the field divides by the sigma it is given

    def __init__(self, train, sigmas=None, **kw):
        for bad in ("weighting", "mode", "tolerance"):
            if kw.get(bad) is not None:
                raise ConfigError(f"SigmaScaledEmpiricalScore fixes {bad}; do not pass it")
            kw.pop(bad, None)
        super().__init__(train, sigmas, "uniform", mode="exact", **kw)
        self._comp = 1.0 / self.levels
        self._b_max = float(self._comp.max())

    def network_output(self, x) -> torch.Tensor:
        """``F*(x) = -E[z | x]`` (what the network is trained to output), shape of ``x``."""
        x, f = self._run(x, "score")
        return f.reshape(x.shape).to(self.dtype)

    def score(self, x, sigma) -> torch.Tensor:
        """``F*(x) / sigma`` with sigma the caller's (scheduled) level, float or ``(N,)``."""
        x, s = self.prepare(x, sigma, need_sigma=True)
        return self.network_output(x) / bcast(s, x)

    def log_prob(self, x, sigma=None):
        raise ConfigError("F*/sigma is not the gradient of a potential; SigmaScaledEmpiricalScore has no log_prob")
