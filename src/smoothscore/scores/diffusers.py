"""A locally saved `diffusers` model as a score field, in the project's sigma convention.

The project writes every score for the variance-exploding process ``x = y + sigma * eps`` (see
:mod:`smoothscore.noise`). diffusers models come with a scheduler that fixes how the network reads its input and
what it predicts; :class:`DiffusersScore` converts, per scheduler family:

* **VP** (any scheduler with ``alphas_cumprod``: DDPM, DDIM, PNDM, DPM-Solver, Euler/Heun discrete, ...). A VP
  sample is ``x_vp = sqrt(abar) y + sqrt(1 - abar) eps``; with ``x = x_vp / sqrt(abar)`` it is the VE sample at
  ``sigma^2 = (1 - abar) / abar`` (``/work/shared/spec/analytic-scores.md``). At a level ``sigma`` the network gets
  ``x_vp = x / sqrt(1 + sigma^2)`` (the ``sqrt(abar)`` input scaling, as ``EulerDiscreteScheduler.scale_model_input``)
  and the fractional timestep found by linear interpolation of ``log sigma`` between the discrete steps
  (``EulerDiscreteScheduler._sigma_to_t``; clamped to ``[0, T - 1]`` outside the trained range). Denoiser:
  ``epsilon``: ``D = x - sigma * eps_hat``; ``sample``: ``D = x0_hat``; ``v_prediction``
  (``x0 = sqrt(abar) x_vp - sqrt(1 - abar) v``): ``D = x / (1 + sigma^2) - sigma / sqrt(1 + sigma^2) * v_hat``.
* **EDM** (``EDMEulerScheduler``, ``EDMDPMSolverMultistepScheduler``): already VE; the scheduler's own
  ``precondition_inputs`` / ``precondition_noise`` / ``precondition_outputs`` (Karras et al. 2022, Table 1) give
  ``D``. Prediction types are those the scheduler accepts (``epsilon``, ``v_prediction``).
* **VE score** (``ScoreSdeVeScheduler``, NCSN++ style): the network takes ``sigma`` as its timestep and returns the
  score itself.

The scheduler's sampling heuristics (``clip_sample``, thresholding) are not part of the model and are ignored.
Networks that also predict a variance (``2 C`` output channels) contribute their first ``C`` channels.
Loading reads safetensors only and never downloads (``local_files_only``), so no code runs when a folder is opened.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .._checks import bcast
from ..errors import CheckpointError, ConfigError, MissingDependencyError
from ..noise import timestep_of_sigma, ve_to_vp, vp_log_sigma, vp_prediction_to_denoiser
from .base import ScoreField

INSTALL_HINT = "pip install 'smoothscore[diffusers]'"
_VP_PREDICTIONS = ("epsilon", "sample", "v_prediction")


def import_diffusers():
    """Import the optional ``diffusers`` package, or raise a one-line :class:`MissingDependencyError`."""
    try:
        # lazy: optional: the diffusers extra
        import diffusers
    except ImportError:
        raise MissingDependencyError(f"diffusers is not installed; it is the optional extra: {INSTALL_HINT}") from None
    return diffusers


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None


def _component_dirs(path: Path) -> tuple[Path, Path]:
    """(model folder, scheduler folder) of a saved pipeline or of a model folder holding its scheduler config."""
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a folder (expected a saved diffusers model or pipeline)")
    if (path / "model_index.json").exists():
        index = _read_json(path / "model_index.json")
        if "unet" not in index or "scheduler" not in index:
            raise CheckpointError(f"{path}: model_index.json names no 'unet' and 'scheduler' components")
        return path / "unet", path / "scheduler"
    model_dir = path if (path / "config.json").exists() else path / "unet"
    sched_dir = path if (path / "scheduler_config.json").exists() else path / "scheduler"
    if not (model_dir / "config.json").exists():
        raise CheckpointError(f"{path}: no diffusers model config (config.json) here or in unet/")
    if not (sched_dir / "scheduler_config.json").exists():
        raise CheckpointError(f"{path}: no scheduler_config.json here or in scheduler/ (save the scheduler with it)")
    return model_dir, sched_dir


def _diffusers_class(diffusers, config_path: Path, base: type, what: str) -> type:
    name = _read_json(config_path).get("_class_name")
    cls = getattr(diffusers, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise CheckpointError(f"{config_path}: {what} class {name!r} is not a diffusers {base.__name__}")
    return cls


class _ForwardADAttention:
    """Wraps a diffusers attention processor so that forward-mode AD works: PyTorch's math attention kernel (the
    fused ones have no forward derivative) and a contiguous output (GroupNorm's forward derivative needs one)."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        # lazy: only when a diffusers UNet runs on CUDA
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.MATH):
            out = self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb=temb, **kwargs)
        return out.contiguous()


class DiffusersScore(ScoreField):
    """A diffusers noise-prediction network and its scheduler as a VE score field (see the module docstring).

    Args:
        model: a diffusers model called as ``model(x, timestep).sample`` (e.g. ``UNet2DModel``).
        scheduler: its scheduler (only its configuration and noise table are used).
        data_shape: ``(C, H, W)``; default from the model config (``in_channels``, ``sample_size``).
        dtype: ``"float32"`` or ``"float64"`` (the network is cast to it).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.

    Attributes:
        kind: ``"vp"``, ``"edm"`` or ``"ve"``.
        prediction_type: what the network predicts (``epsilon``, ``sample``, ``v_prediction``, or ``score``).
        sigma_min: smallest noise level the model was trained on (VE units).
        sigma_max: largest noise level the model was trained on (VE units).
    """

    def __init__(self, model, scheduler, *, data_shape=None, dtype="float32", device="auto"):
        diffusers = import_diffusers()
        self._init_placement(dtype, device)
        level = diffusers.utils.logging.get_verbosity()
        diffusers.utils.logging.set_verbosity_error()  # no "modules kept in float32" notice for a plain cast
        try:
            self.model = model.to(device=self.device, dtype=self.dtype).eval()
        finally:
            diffusers.utils.logging.set_verbosity(level)
        self.scheduler = scheduler
        cfg = dict(getattr(model, "config", {}) or {})
        if data_shape is None and "in_channels" in cfg and cfg.get("sample_size") is not None:
            size = cfg["sample_size"]
            hw = (size, size) if isinstance(size, int) else tuple(size)
            data_shape = (cfg["in_channels"], *hw)
        self.data_shape = tuple(data_shape) if data_shape is not None else None
        scfg = scheduler.config
        self.prediction_type = str(scfg.get("prediction_type", "epsilon"))
        if hasattr(scheduler, "alphas_cumprod"):
            self.kind = "vp"
            if self.prediction_type not in _VP_PREDICTIONS:
                raise ConfigError(
                    f"VP prediction_type {self.prediction_type!r} unsupported; use one of {_VP_PREDICTIONS}"
                )
            abar = torch.as_tensor(scheduler.alphas_cumprod, dtype=torch.float64)
            self._log_sigmas = vp_log_sigma(abar).to(self.device)
            if not bool((self._log_sigmas[1:] > self._log_sigmas[:-1]).all()):
                raise ConfigError("the scheduler's alphas_cumprod must decrease strictly")
            self._continuous = scfg.get("timestep_type", "discrete") == "continuous"
            self.sigma_min, self.sigma_max = (float(self._log_sigmas[i].exp()) for i in (0, -1))
        elif hasattr(scheduler, "precondition_outputs"):
            self.kind = "edm"
            self.sigma_min, self.sigma_max = float(scfg["sigma_min"]), float(scfg["sigma_max"])
        elif type(scheduler).__name__ == "ScoreSdeVeScheduler":
            self.kind, self.prediction_type = "ve", "score"
            self.sigma_min, self.sigma_max = float(scfg["sigma_min"]), float(scfg["sigma_max"])
        else:
            raise ConfigError(
                f"scheduler {type(scheduler).__name__} is not supported: use a VP scheduler "
                "(with alphas_cumprod), an EDM scheduler or ScoreSdeVeScheduler"
            )

    @classmethod
    def from_pretrained(cls, path: str | Path, *, dtype="float32", device="auto") -> DiffusersScore:
        """Open a saved ``DDPMPipeline``-style folder (``model_index.json``, ``unet/``, ``scheduler/``) or a model
        folder (``config.json`` + weights) holding ``scheduler_config.json`` (or a ``scheduler/`` subfolder).

        Only safetensors weights are read and nothing is downloaded.

        Raises:
            MissingDependencyError: diffusers is not installed.
            CheckpointError: the folder is not a readable diffusers model with a scheduler.
        """
        diffusers = import_diffusers()
        model_dir, sched_dir = _component_dirs(Path(path))
        model_cls = _diffusers_class(diffusers, model_dir / "config.json", diffusers.ModelMixin, "model")
        sched_cls = _diffusers_class(diffusers, sched_dir / "scheduler_config.json", diffusers.ConfigMixin, "scheduler")
        try:
            model = model_cls.from_pretrained(model_dir, use_safetensors=True, local_files_only=True)
            scheduler = sched_cls.from_pretrained(sched_dir, local_files_only=True)
        except (OSError, ValueError, TypeError) as e:
            raise CheckpointError(f"cannot load the diffusers model in {path}: {str(e).splitlines()[0]}") from None
        return cls(model, scheduler, dtype=dtype, device=device)

    # ------------------------------------------------------------------ noise-level conversion
    def sigma_to_timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The model's (fractional) timestep for VE levels ``sigma``: interpolation of ``log sigma`` between the
        discrete steps for VP schedules (clamped to the trained range), ``sigma`` itself for VE-score models and
        the scheduler's ``c_noise`` for EDM ones."""
        sigma = torch.as_tensor(sigma, device=self.device)
        if self.kind == "ve":
            return sigma
        if self.kind == "edm":
            return self.scheduler.precondition_noise(sigma)
        if self._continuous:
            return 0.25 * sigma.log()
        return timestep_of_sigma(sigma, self._log_sigmas)

    def timestep_sigmas(self, timesteps) -> torch.Tensor:
        """VE levels ``sqrt((1 - abar_t) / abar_t)`` of integer timesteps (VP schedules), float64 on the CPU."""
        if self.kind != "vp":
            raise ConfigError(f"timestep_sigmas needs a VP scheduler; this model is {self.kind}")
        return self._log_sigmas.cpu()[torch.as_tensor(timesteps, dtype=torch.long)].exp()

    def _net(self, x_in: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        timestep = timestep.to(x_in.dtype)
        # Forward-mode AD (torch.func.jvp, used by the expansiveness measures) is not implemented by PyTorch's fused
        # attention kernels. The first call that fails that way switches this model's attention processors to the
        # plain "math" kernel (_use_math_attention) and is repeated; ordinary calls keep the fused kernel. A failure
        # after the switch (or in a model without attention processors) is another error and propagates.
        try:
            out = self.model(x_in, timestep).sample
        except NotImplementedError:
            if not self._use_math_attention():
                raise
            out = self.model(x_in, timestep).sample
        c = x_in.shape[1]
        return out[:, :c] if out.shape[1] == 2 * c else out

    def _use_math_attention(self) -> bool:
        """Wrap every attention processor not yet wrapped in :class:`_ForwardADAttention`; True if any was."""
        switched = False
        for m in self.model.modules():
            if hasattr(m, "set_processor") and not isinstance(m.processor, _ForwardADAttention):
                m.set_processor(_ForwardADAttention(m.processor))
                switched = True
        return switched

    # ------------------------------------------------------------------ the score-field contract
    def denoise(self, x, sigma) -> torch.Tensor:
        """Posterior mean ``D(x, sigma)`` in the VE convention (conversion per scheduler family: module docstring)."""
        x, s = self.prepare(x, sigma)
        sb = bcast(s, x)
        if self.kind == "ve":
            return x + sb**2 * self._net(x, s)
        if self.kind == "edm":
            out = self._net(self.scheduler.precondition_inputs(x, sb), self.sigma_to_timestep(s))
            return self.scheduler.precondition_outputs(x, out, sb)
        out = self._net(ve_to_vp(x, sb), self.sigma_to_timestep(s))
        return vp_prediction_to_denoiser(out, x, sb, self.prediction_type)

    def score(self, x, sigma) -> torch.Tensor:
        """``(D(x, sigma) - x) / sigma^2``; for VE-score models the network's output itself."""
        x, s = self.prepare(x, sigma)
        if self.kind == "ve":
            return self._net(x, s)
        return (self.denoise(x, s) - x) / bcast(s, x) ** 2
