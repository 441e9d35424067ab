"""Temperature smoothing (Paper B, Sec. 4.2, Eqs. 10-11).

Above ``sigma_collapse`` the loss is the unconditioned Eq. 9. Below it, the target is the temperature-smoothed
score over the K nearest training samples of the *clean* sample mu (neighbour lists precomputed once,
:class:`~smoothscore.training.knn.KNNCache`; the target is
:func:`smoothscore.scores.temperature.temperature_target`):

    score_T(x) = sum_{j <= K} w_j(x; T) * c_j(x),     w = softmax_j(f_j / T),     T_i = max(sigma_collapse / sigma_i, 1)

Adopted variant (default, ``variant="sigma_star"``): optimal-level log-weights
``f_j = -(d - 2) ln sigma*_j - |x - mu_j|^2 / (2 sigma*_j^2)`` with ``sigma*_j^2 = |x - mu_j|^2 / (d - 2)`` and
component scores ``c_j = -(x - mu_j) / sigma*_j^2`` (Eq. 10 as written). ``variant="scheduled"`` (the authors'
code): log-weights ``-(d / (2T)) log(|x - mu_j|^2 / d)`` and component scores at the scheduled level,
``c_j = -(x - mu_j) / sigma_i^2``. The loss is weighted by ``sigma_i^2 / 2`` like Eq. 9 (adopted: the paper's
``1/2 |s - score_T|^2`` leaves the scale between the two regimes unstated; the sigma^2 weight keeps both regimes
on one scale).
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..scores.temperature import temperature_target
from .knn import KNNCache
from .losses import UnconditionedDSM, _bc, losses, model_score


@losses.register("temperature")
class TemperatureKNNLoss(UnconditionedDSM):
    """Eq. 11: Eq. 9 for ``sigma_i > sigma_collapse``; ``sigma_i^2/2 |s(x) - score_T(x)|^2`` below, with
    ``T_i = max(sigma_collapse / sigma_i, 1)`` and the K nearest training samples of the clean sample."""

    def __init__(
        self,
        train=None,
        *,
        knn: KNNCache | None = None,
        k: int = 10,
        sigma_collapse: float = 1.0,
        space: str = "pixel",
        encoder=None,
        variant: str = "sigma_star",
        sigma_min: float = 0.01,
        sigma_max: float = 50.0,
        n_levels=1000,
    ):
        super().__init__(sigma_min, sigma_max, n_levels)
        if knn is None:
            if train is None:
                raise ConfigError("temperature loss needs the training set (or a KNNCache)")
            knn = KNNCache(train, k=k, space=space, encoder=encoder)
        self.knn, self.sigma_collapse, self.variant = knn, float(sigma_collapse), variant
        temperature_target(torch.zeros(1, 3), torch.ones(1, 1, 3), torch.ones(1), torch.ones(1), variant)  # validate

    def compute(self, model, x0, idx, noise):
        x, sigma, eps = self._noisy(x0, noise)
        s = model_score(model, x, sigma)
        r_plain = _bc(sigma, s) * s + eps
        low = sigma <= self.sigma_collapse
        if bool(low.any()):
            neigh = self.knn.neighbors_of(idx[low]).to(x.device, x.dtype)
            T = (self.sigma_collapse / sigma[low]).clamp_min(1.0)
            tgt = temperature_target(x[low], neigh, sigma[low], T, self.variant)
            r_low = _bc(sigma[low], tgt) * (s[low] - tgt)
            r = r_plain.clone()
            r[low] = r_low
        else:
            r = r_plain
        w = self.weight(sigma) / sigma**2  # lambda(sigma) / sigma^2 (= 1 for the sigma^2 weight)
        return (self.scale * r.reshape(r.shape[0], -1).pow(2).sum(1) * w).mean()
