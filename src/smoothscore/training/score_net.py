"""Train one score network: build it with seeded weights, fit it with a loss, return its EMA weights as a field.

The one training entry point of the experiments and of ``smoothscore train``. The network is described by a dict
(``model``: architecture name of :func:`smoothscore.nets.build_model`, plus ``conditioning``, ``param`` and the
architecture's own keys, :data:`ARCH_KEYS`); its weights are initialised from ``init_seed`` inside
``torch.random.fork_rng`` (the global RNG is neither read nor advanced), and batches and loss noise come from
``config.seed`` (:class:`~smoothscore.training.trainer.Trainer`). A loss is built by name from the loss registry
(:func:`loss_from_registry`).
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..nets import build_model
from ..scores.neural import NeuralScore
from .losses import losses
from .trainer import TrainConfig, train

__all__ = ["ARCH_KEYS", "TrainedNet", "build_seeded", "loss_from_registry", "net_kwargs", "train_score_net"]

#: the :func:`~smoothscore.nets.build_model` keywords each architecture takes from a network description
ARCH_KEYS = {"mlp": ("width", "depth", "embedding"), "two-layer": ("width",), "unet": ("base", "embedding")}


def net_kwargs(arch: str, cfg: dict) -> dict:
    """The keys of ``cfg`` that architecture ``arch`` takes (:data:`ARCH_KEYS`; ``None`` values left out)."""
    return {k: cfg[k] for k in ARCH_KEYS.get(arch, ()) if cfg.get(k) is not None}


def build_seeded(net, data_shape, init_seed: int) -> torch.nn.Module:
    """The network ``net`` describes for data of ``data_shape`` (a dict as in the module docstring, or a callable
    ``() -> nn.Module``), its weights drawn from ``init_seed`` without touching the global RNG's state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(init_seed))
        if callable(net):
            return net()
        arch = net.get("model", "mlp")
        return build_model(
            arch,
            tuple(data_shape),
            conditioning=net.get("conditioning", "sigma"),
            param=net.get("param"),
            **net_kwargs(arch, net),
        )


@dataclass
class TrainedNet:
    """A trained network: the final weights (``model``), their EMA (``ema``), steps done, the ``(step, loss)``
    history and the seconds the fit took."""

    model: torch.nn.Module
    ema: torch.nn.Module
    step: int
    history: list
    seconds: float

    def field(self, *, dtype="float32", device="cpu", data_shape=None) -> NeuralScore:
        """The EMA network as a score field."""
        return NeuralScore(self.ema, data_shape=data_shape, dtype=dtype, device=device)

    def info(self) -> dict:
        """``train_seconds``, ``final_loss`` (None without history) and ``parameters`` (count)."""
        return {
            "train_seconds": round(self.seconds, 2),
            "final_loss": self.history[-1][1] if self.history else None,
            "parameters": sum(p.numel() for p in self.model.parameters()),
        }


def train_score_net(
    net,
    loss,
    data,
    config: TrainConfig,
    *,
    init_seed: int | None = None,
    device="cpu",
    progress: bool = False,
    hooks=(),
    out_dir=None,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainedNet:
    """Build ``net`` (:func:`build_seeded` from ``init_seed``; a ``torch.nn.Module`` already built is trained as it
    is) for ``data`` (a tensor ``(N, ...)`` or a Dataset) and fit it with ``loss`` and ``config``
    (:func:`smoothscore.training.train`; ``out_dir`` / ``resume`` / ``overwrite`` checkpoint as there: a model to
    resume is built the same way and then loaded)."""
    x = getattr(data, "x", data)
    if isinstance(net, torch.nn.Module):
        model = net
    elif init_seed is None:
        raise ConfigError("train_score_net: a network to build needs init_seed (its weights' random seed)")
    else:
        model = build_seeded(net, x.shape[1:], init_seed)
    t0 = time.perf_counter()
    checkpoint = {"out_dir": out_dir, "resume": resume, "overwrite": overwrite}
    res = train(model, loss, x, config, device=device, progress=progress, hooks=hooks, **checkpoint)
    return TrainedNet(res.model, res.ema, res.step, res.history, time.perf_counter() - t0)


def loss_from_registry(name: str, data, **options):
    """Loss ``name`` of the registry (:data:`smoothscore.training.losses`), given each of ``options`` its
    constructor names, plus ``train=data`` and ``t_min = sigma_min^2`` / ``t_max = sigma_max^2`` (the variance form
    of the noise range) where it takes them; a constructor taking only ``**kwargs`` gets the noise range
    (``sigma_min``, ``sigma_max``). :class:`ConfigError` when it needs an argument none of these supplies."""
    factory = losses.get(name)
    offered = dict(options, train=data)
    if options.get("sigma_min") is not None and options.get("sigma_max") is not None:
        offered.update(t_min=float(options["sigma_min"]) ** 2, t_max=float(options["sigma_max"]) ** 2)
    params = inspect.signature(factory).parameters
    named = {n: p for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    if not named and any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return factory(**{k: offered[k] for k in ("sigma_min", "sigma_max") if k in offered})
    missing = [n for n, p in named.items() if p.default is p.empty and n not in offered]
    if missing:
        raise ConfigError(
            f"loss {name!r} needs {', '.join(missing)}, which a plain training run does not set "
            "(its protocol is an experiment of its own)"
        )
    return factory(**{n: offered[n] for n in named if n in offered})
