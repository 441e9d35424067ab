"""The score-field contract shared by exact, smoothed, analytic and neural scores.

A *score field* is any object with ``score(x, sigma) -> Tensor`` (same shape as ``x``; ``x`` is ``(N, *dims)``,
``sigma`` a float or an ``(N,)`` tensor). Fields may also provide ``denoise(x, sigma)``, the posterior mean, since
``score = (denoise - x) / sigma**2`` (Tweedie). :class:`ScoreField` derives either one from the other, so a subclass
implements exactly one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .. import noise
from .._checks import bcast, check_queries, check_sigma
from ..device import resolve_device, resolve_dtype
from ..errors import ConfigError, SigmaError


class ScoreField:
    """Base class. Subclasses set ``self.dtype``, ``self.device``, ``self.data_shape`` and override ``score`` or
    ``denoise``. ``conditioned = False`` marks fields that ignore sigma (Paper B's noise-unconditional scores)."""

    conditioned: bool = True
    dtype: torch.dtype = torch.float32
    device: torch.device = torch.device("cpu")
    data_shape: Sequence[int] | None = None

    def _init_placement(self, dtype, device) -> None:
        self.dtype = resolve_dtype(dtype)
        self.device = resolve_device(device)

    def prepare(self, x, sigma=None, *, need_sigma: bool = True):
        """Validate and move inputs: returns ``(x, sigma_vec)`` with sigma as an ``(N,)`` tensor (or None)."""
        if self.data_shape is not None:
            x = check_queries(x, self.data_shape, dtype=self.dtype, device=self.device)
        else:
            x = check_queries(x, torch.as_tensor(x).shape[1:], dtype=self.dtype, device=self.device)
        if sigma is None:
            if need_sigma:
                raise SigmaError(f"{type(self).__name__} needs a noise level sigma")
            return x, None
        return x, check_sigma(sigma, x.shape[0], dtype=self.dtype, device=self.device)

    def score(self, x, sigma) -> torch.Tensor:
        if type(self).denoise is ScoreField.denoise:
            raise TypeError(f"{type(self).__name__} must implement score() or denoise()")
        x, s = self.prepare(x, sigma)
        return (self.denoise(x, s) - x) / bcast(s, x) ** 2

    def denoise(self, x, sigma) -> torch.Tensor:
        if type(self).score is ScoreField.score:
            raise TypeError(f"{type(self).__name__} must implement score() or denoise()")
        x, s = self.prepare(x, sigma)
        return x + bcast(s, x) ** 2 * self.score(x, s)

    def __call__(self, x, sigma) -> torch.Tensor:
        return self.score(x, sigma)


class FunctionScore(ScoreField):
    """Wrap a plain function ``f(x, sigma) -> score`` (or a denoiser with ``kind="denoiser"``) into the contract;
    :meth:`from_vp` wraps a VP model ``f(t, x_t)``."""

    def __init__(self, fn: Callable, *, kind: str = "score", conditioned: bool = True, dtype="float32", device="auto"):
        if kind not in ("score", "denoiser"):
            raise ConfigError(f"kind must be 'score' or 'denoiser'; got {kind!r}")
        self._init_placement(dtype, device)
        self.fn, self.kind, self.conditioned = fn, kind, conditioned

    @classmethod
    def from_vp(
        cls, fn: Callable, *, alpha_bar=None, schedule=None, prediction: str = "eps", dtype="float32", device="auto"
    ) -> FunctionScore:
        """A VE score field from a VP model ``fn(t, x_t)`` of another codebase (DDPM, DDIM, score_sde VP, ...).

        At a VE level ``sigma`` the model gets ``x_t = x / sqrt(1 + sigma^2)`` (:func:`~smoothscore.noise.ve_to_vp`)
        and the timestep ``t`` of ``sigma``:

        * ``alpha_bar``: a discrete schedule ``abar[t]``, ``t = 0..T-1`` (decreasing); ``t`` is fractional, the
          linear interpolation of ``log sigma`` between the two neighbouring steps, clamped to ``[0, T - 1]``
          (:func:`~smoothscore.noise.timestep_of_sigma`, as diffusers' Euler schedulers); a model that takes integer
          steps only rounds it itself;
        * ``schedule``: a continuous one, any object with ``sigma_inv(sigma) -> t`` (e.g.
          :class:`~smoothscore.noise.VPProcess`, score_sde's VPSDE for ``beta_min=0.1, beta_d=19.9``).

        ``t`` is passed as a float64 tensor, one per sample. ``prediction``: what ``fn`` returns — ``"eps"``
        (``s = -eps_hat / sigma``), ``"score"`` (the VP score; ``s_VE = sqrt(abar) s_VP``), ``"x0"`` or ``"v"``
        (the denoiser, :func:`~smoothscore.noise.vp_prediction_to_denoiser`); diffusers' names are accepted.
        """
        if (alpha_bar is None) == (schedule is None):
            raise ConfigError("from_vp needs exactly one of alpha_bar= (discrete) or schedule= (continuous)")
        if prediction != "score" and prediction not in noise.VP_PREDICTIONS:
            known = ", ".join(["score", *noise.VP_PREDICTIONS])
            raise ConfigError(f"unknown prediction {prediction!r}; known: {known}")
        if alpha_bar is not None:
            log_sigmas = noise.vp_log_sigma(alpha_bar).reshape(-1)
            if len(log_sigmas) < 2 or not bool((log_sigmas[1:] > log_sigmas[:-1]).all()):
                raise ConfigError("alpha_bar must hold at least two steps and decrease strictly")

            def t_of(sigma):
                return noise.timestep_of_sigma(sigma.cpu(), log_sigmas).to(sigma.device)

        else:
            if not callable(getattr(schedule, "sigma_inv", None)):
                raise ConfigError("schedule must have sigma_inv(sigma) -> t (e.g. smoothscore.noise.VPProcess)")

            def t_of(sigma):
                return torch.as_tensor(schedule.sigma_inv(sigma.to(torch.float64))).to(sigma.device)

        kind = "score" if prediction in ("score", "eps", "epsilon") else "denoiser"

        def ve_fn(x, sigma):
            sb = bcast(sigma, x)
            out = fn(t_of(sigma), noise.ve_to_vp(x, sb))
            if prediction == "score":
                return noise.vp_score_to_ve(out, sb)
            if kind == "score":
                return noise.eps_to_score(out, sb)
            return noise.vp_prediction_to_denoiser(out, x, sb, prediction)

        return cls(ve_fn, kind=kind, dtype=dtype, device=device)

    def score(self, x, sigma):
        x, s = self.prepare(x, sigma)
        out = self.fn(x, s)
        return (out - x) / bcast(s, x) ** 2 if self.kind == "denoiser" else out

    def denoise(self, x, sigma):
        x, s = self.prepare(x, sigma)
        out = self.fn(x, s)
        return out if self.kind == "denoiser" else x + bcast(s, x) ** 2 * out
