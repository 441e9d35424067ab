"""Training objectives, each a small class that states how sigma is drawn and how it is weighted (EDM style).

The denoising objectives are ``c E_sigma E_eps [lambda(sigma) |s(x0 + sigma eps, sigma) + eps / sigma|^2]``
(Vincent 2011; Song & Ermon 2019 Eq. 2; Karras et al. 2022 Eq. 8 in score form): ``sigmas`` draws sigma,
``weight`` is the named ``lambda(sigma)`` and ``scale`` the constant ``c``. The residual is evaluated as
``(lambda(sigma) / sigma^2) |sigma s + eps|^2``, the same number without dividing ``eps`` by a small sigma; for
``lambda = sigma^2`` the factor is exactly 1.

Every loss has two parts so that multi-process training draws exactly the noise of single-process training:
``draw(n, shape, generator)`` draws the random quantities for a global batch of ``n`` clean samples (the trainer
slices them per rank), and ``compute(model, x0, idx, noise)`` returns the mean loss over the local batch.
``idx`` are the training-set indices of ``x0`` (used by the KNN temperature target).
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..noise import log_uniform_sigmas
from ..registry import Registry
from ..scores.empirical import EmpiricalScore

losses: Registry = Registry("loss")


def _bc(v, x):
    return v.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)


def model_score(model, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``model(x, sigma)`` when the model's score needs sigma (conditioned, or unconditioned ``sigma_scaled``),
    else ``model(x)`` (sigma-free unconditioned nets and plain modules without ``needs_sigma``/``conditioned``)."""
    inner = getattr(model, "module", model)  # DistributedDataParallel keeps the attributes on .module
    need = getattr(inner, "needs_sigma", getattr(inner, "conditioned", False))
    return model(x, sigma) if need else model(x)


def sigma_squared(sigma: torch.Tensor) -> torch.Tensor:
    """``lambda(sigma) = sigma^2``: the weight of Song & Ermon (2019) and of Paper B Eqs. 8-9 (Paper A's ``t``)."""
    return sigma**2


class SigmaSampler:
    """Noise levels: ``n_levels`` discrete levels log-uniform on [sigma_min, sigma_max] (Paper B trains on N = 1000),
    or continuous log-uniform when ``n_levels`` is None."""

    def __init__(self, sigma_min: float, sigma_max: float, n_levels: int | None = None):
        if not (0 < sigma_min <= sigma_max):
            raise ConfigError(f"need 0 < sigma_min <= sigma_max; got {sigma_min}, {sigma_max}")
        self.sigma_min, self.sigma_max, self.n_levels = float(sigma_min), float(sigma_max), n_levels
        if n_levels is not None:
            self.levels = torch.logspace(
                math.log10(sigma_min), math.log10(sigma_max), int(n_levels), dtype=torch.float64
            )

    @property
    def sigma_range(self) -> tuple[float, float]:
        return self.sigma_min, self.sigma_max

    def __call__(self, n: int, generator) -> torch.Tensor:
        if self.n_levels is None:
            return log_uniform_sigmas(n, self.sigma_min, self.sigma_max, generator=generator, dtype=torch.float64)
        i = torch.randint(0, int(self.n_levels), (n,), generator=generator)
        return self.levels[i]


class UniformT:
    """Noise levels with ``t = sigma^2`` uniform on ``[t_min, t_max]`` (Paper A's time average)."""

    def __init__(self, t_min: float, t_max: float):
        if not (0 < t_min <= t_max):
            raise ConfigError(f"need 0 < t_min <= t_max; got {t_min}, {t_max}")
        self.t_min, self.t_max = float(t_min), float(t_max)

    @property
    def sigma_range(self) -> tuple[float, float]:
        return math.sqrt(self.t_min), math.sqrt(self.t_max)

    def __call__(self, n: int, generator) -> torch.Tensor:
        t = self.t_min + (self.t_max - self.t_min) * torch.rand(n, generator=generator, dtype=torch.float64)
        return t.sqrt()


class DSMBase:
    """Denoising score matching: ``scale * E[lambda(sigma) |s + eps / sigma|^2]`` with sigma from ``sigmas`` and
    ``lambda`` = ``weight`` (module docstring). ``draw`` gives sigma per sample and Gaussian noise ``eps``."""

    conditioned = True
    #: lambda(sigma), the per-level weight
    weight = staticmethod(sigma_squared)
    #: the constant in front (1/2 in Paper B Eq. 8)
    scale = 0.5

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0, n_levels: int | None = 1000):
        self.sigmas = SigmaSampler(sigma_min, sigma_max, n_levels)

    @property
    def sigma_range(self) -> tuple[float, float]:
        """``(sigma_min, sigma_max)`` of the levels this loss trains on."""
        return self.sigmas.sigma_range

    def draw(self, n: int, shape, generator) -> dict[str, torch.Tensor]:
        sigma = self.sigmas(n, generator)
        return {"sigma": sigma, "eps": torch.randn((n, *shape), generator=generator, dtype=torch.float64)}

    def _noisy(self, x0, noise):
        sigma = noise["sigma"].to(x0.device, x0.dtype)
        eps = noise["eps"].to(x0.device, x0.dtype)
        return x0 + _bc(sigma, x0) * eps, sigma, eps

    def _dsm(self, s, sigma, eps):
        """Per sample: ``scale lambda(sigma) |s + eps / sigma|^2`` as ``scale (lambda / sigma^2) |sigma s + eps|^2``."""
        r = _bc(sigma, s) * s + eps
        w = self.weight(sigma) / sigma**2
        return self.scale * r.reshape(r.shape[0], -1).pow(2).sum(1) * w


@losses.register("dsm")
class ConditionedDSM(DSMBase):
    """Paper B Eq. 8: ``E_i E [(sigma_i^2 / 2) |s(x, sigma_i) + (x - mu) / sigma_i^2|^2]``, sigma_i from ``n_levels``
    log-uniform levels (``n_levels=None``: continuous log-uniform)."""

    def compute(self, model, x0, idx, noise):
        x, sigma, eps = self._noisy(x0, noise)
        return self._dsm(model(x, sigma), sigma, eps).mean()


losses.register("dsm_continuous", lambda **kw: ConditionedDSM(**{"n_levels": None, **kw}))


@losses.register("unconditioned")
class UnconditionedDSM(DSMBase):
    """Paper B Eq. 9: the same targets and weights, but the network sees no noise level.

    With the sigma-free ``s = F(x)`` (``param="score"``) the minimiser is the score of the unified mixture ``p_MN``
    (sigma^2-weighted mixture over the levels). With Paper B's code's ``s = F(x) / sigma`` (``param="sigma_scaled"``,
    the model's ``needs_sigma``) the loss is ``1/2 |F(x~) + z|^2`` (``Code/losses.py``) and the minimiser is
    ``F* = -E[z | x~]`` (:class:`~smoothscore.scores.unconditional.SigmaScaledEmpiricalScore`)."""

    conditioned = False

    def compute(self, model, x0, idx, noise):
        x, sigma, eps = self._noisy(x0, noise)
        return self._dsm(model_score(model, x, sigma), sigma, eps).mean()


@losses.register("t_weighted")
class TWeightedDSM(DSMBase):
    """Paper A's objective: the average over t of ``L_t[f] = t E|f - s_t|^2``, which equals t-weighted denoising
    score matching ``E_t E |sqrt(t) f(x, t) + eps|^2`` up to a constant: ``lambda(sigma) = t = sigma^2``, scale 1.
    t uniform on [t_min, t_max] (``distribution="uniform_t"``) or sigma log-uniform (``"log_uniform"``)."""

    scale = 1.0

    def __init__(self, t_min: float = 1e-5, t_max: float = 1.0, distribution: str = "uniform_t"):
        if distribution not in ("uniform_t", "log_uniform"):
            raise ConfigError(f"unknown t distribution {distribution!r}")
        self.t_min, self.t_max, self.distribution = float(t_min), float(t_max), distribution
        self.sigmas = (
            UniformT(t_min, t_max)
            if distribution == "uniform_t"
            else SigmaSampler(math.sqrt(t_min), math.sqrt(t_max), None)
        )

    def compute(self, model, x0, idx, noise):
        x, sigma, eps = self._noisy(x0, noise)
        return self._dsm(model(x, sigma), sigma, eps).mean()


@losses.register("fixed_t")
class FixedTimeRegression:
    """Paper A, Fig. 2 protocol: at one fixed t, regress onto the exact ESF,
    ``L_t[f] = t E_{x ~ p_t} |f(x) - s_t(x)|^2``, plus ``weight_decay / 2 * sum |W|^2`` on weights only (biases
    unpenalised). ``scale="t2"`` uses ``t^2 E|f - s_t|^2`` (= t L_t) instead."""

    conditioned = False

    @property
    def sigma_range(self) -> tuple[float, float]:
        return math.sqrt(self.t), math.sqrt(self.t)

    def __init__(self, train, t: float, weight_decay: float = 0.0, scale: str = "t", dtype="float64"):
        if t <= 0:
            raise ConfigError("t must be positive")
        if scale not in ("t", "t2"):
            raise ConfigError("scale must be 't' or 't2'")
        self.t, self.weight_decay, self.scale = float(t), float(weight_decay), scale
        self.esf = EmpiricalScore(train, dtype=dtype, device="cpu")

    def draw(self, n, shape, generator):
        return {"eps": torch.randn((n, *shape), generator=generator, dtype=torch.float64)}

    def compute(self, model, x0, idx, noise):
        x = x0.double() + math.sqrt(self.t) * noise["eps"].to(x0.device)
        target = self.esf.score(x.cpu(), math.sqrt(self.t)).to(x0.device, x0.dtype)
        x = x.to(x0.dtype)
        f = model_score(model, x, torch.full((x.shape[0],), math.sqrt(self.t), dtype=x.dtype, device=x.device))
        w = self.t if self.scale == "t" else self.t**2
        data = w * (f - target).reshape(x.shape[0], -1).pow(2).sum(1).mean()
        if self.weight_decay:
            pen = sum(p.pow(2).sum() for p in model.penalized_parameters())
            data = data + 0.5 * self.weight_decay * pen
        return data
