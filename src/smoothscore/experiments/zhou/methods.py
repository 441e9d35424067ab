"""Paper B's (Zhou et al. 2026) training methods: conditioned DSM (Eq. 8), noise-unconditioned DSM (Eq. 9) and
temperature smoothing (Eq. 11 with the Eq. 10 target over the K nearest training samples, pixel or feature space):
their losses, networks and training through :func:`smoothscore.training.score_net.train_score_net`."""

from __future__ import annotations

import torch

from ...errors import ConfigError
from ...training import ConditionedDSM, KNNCache, TemperatureKNNLoss, TrainConfig, UnconditionedDSM
from ...training.score_net import train_score_net

METHODS = ("conditioned", "unconditioned", "temperature_pixel", "temperature_feature")
#: rows shown beside the paper's methods: ``name -> (method, config overrides)``. The sigma-free unconditioned
#: network ``s = F(x)`` against the authors' ``F(x) / sigma``; each temperature target variant ("scheduled": the
#: authors' ``Code/losses.py``; "sigma_star": Eq. 10 as written) whatever ``knn_variant`` the config names.
VARIANTS: dict[str, tuple[str, dict]] = {
    "unconditioned_sigma_free": ("unconditioned", {"uncond_param": "score"}),
    **{
        f"temperature_{space}_{v}": (f"temperature_{space}", {"knn_variant": v})
        for space in ("pixel", "feature")
        for v in ("scheduled", "sigma_star")
    },
}
ALL_METHODS = METHODS + tuple(VARIANTS)


def resolve_method(method: str, c) -> tuple[str, dict]:
    """``(method, config)`` of a :data:`VARIANTS` row (its base method and the config with its overrides);
    a method of :data:`METHODS` unchanged; anything else a ``ConfigError`` naming the known ones."""
    if method in VARIANTS:
        base, over = VARIANTS[method]
        return base, {**c, **over}
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; known: {', '.join(ALL_METHODS)}")
    return method, c


def build_loss(method: str, train: torch.Tensor, c, encoder=None, cache_dir=None):
    """The loss of ``method`` (Eq. 8, Eq. 9 or Eq. 11 with a precomputed pixel / feature KNN cache)."""
    method, c = resolve_method(method, c)
    lv = (float(c["sigma_min"]), float(c["sigma_max"]), c.get("n_levels"))
    if method == "conditioned":
        return ConditionedDSM(*lv)
    if method == "unconditioned":
        return UnconditionedDSM(*lv)
    if method in ("temperature_pixel", "temperature_feature"):
        space = method.split("_")[1]
        knn = KNNCache(
            train, k=int(c["k"]), space=space, encoder=encoder if space == "feature" else None, cache_dir=cache_dir
        )
        return TemperatureKNNLoss(
            knn=knn,
            sigma_collapse=float(c["sigma_collapse"]),
            variant=c["knn_variant"],
            sigma_min=lv[0],
            sigma_max=lv[1],
            n_levels=lv[2],
        )
    raise ConfigError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def net_spec(method: str, c, cond_param: str | None = "edm") -> dict:
    """The network of ``method`` (:func:`smoothscore.training.score_net.build_seeded`): architecture ``c["model"]``
    with its size keys; sigma-conditioned with parameterisation ``c["cond_param"]`` (default ``cond_param``: EDM
    preconditioning) for ``conditioned``, else noise-unconditioned with ``c["uncond_param"]`` (default: Paper B's
    ``F(x) / sigma``)."""
    method, c = resolve_method(method, c)
    size = {k: c[k] for k in ("width", "depth", "base") if k in c}
    if method == "conditioned":
        return {"model": c["model"], "conditioning": "sigma", "param": c.get("cond_param", cond_param), **size}
    return {"model": c["model"], "conditioning": "none", "param": c.get("uncond_param"), **size}


def train_method(
    ctx, method: str, train: torch.Tensor, loss, *, stream=None, net=None, settings=None, hooks=(), device=None
):
    """Train one network of ``method`` (:func:`net_spec` unless ``net`` is given) with ``loss`` and the config's
    ``steps``, ``batch_size``, ``lr``, ``ema_decay`` (``settings`` overrides them) on ``device`` (default the
    run's); weights from random stream ``init:<stream>`` and batches from ``batches:<stream>`` (``stream`` defaults
    to ``method``). Returns ``(NeuralScore of the EMA weights, seconds)``."""
    c, name, device = ctx.config | (settings or {}), stream or method, device or ctx.device
    cfg = TrainConfig(
        steps=int(c["steps"]),
        batch_size=int(c["batch_size"]),
        lr=float(c["lr"]),
        ema_decay=float(c["ema_decay"]),
        seed=ctx.seed_for(f"batches:{name}"),
        dtype=ctx.precision,
    )
    fit = train_score_net(
        net or net_spec(method, c),
        loss,
        train,
        cfg,
        init_seed=ctx.seed_for(f"init:{name}"),
        device=device,
        progress=ctx.progress and not hooks,
        hooks=hooks,
    )
    return fit.field(dtype=ctx.precision, device=device), fit.seconds


def train_mlp(ctx, train: torch.Tensor, conditioned: bool, *, steps: int, width: int = 256):
    """A small MLP (2 hidden layers) trained with Eq. 8 (``conditioned``) or Eq. 9 over ``sigma_min..sigma_max``
    (1000 levels), batch 64, lr 1e-3; returns its EMA weights as a NeuralScore on the CPU (random streams
    ``init:mlp-<method>``, ``batches:mlp-<method>``)."""
    method = "conditioned" if conditioned else "unconditioned"
    net = {"model": "mlp", "conditioning": "sigma" if conditioned else "none", "width": width, "depth": 2}
    loss = build_loss(method, train, ctx.config | {"n_levels": 1000})
    settings = {"steps": steps, "batch_size": 64, "lr": 1e-3, "ema_decay": 0.99}
    field, _ = train_method(
        ctx, method, train, loss, stream=f"mlp-{method}", net=net, settings=settings, hooks=(), device="cpu"
    )
    return field
