"""Paper A's (Chen 2025) protocol shared by its experiments: the score-network settings and their training, draws
of the noised empirical distribution ``p_t0`` (Sec. 2), denoising by the probability-flow ODE, and the geometry of
training points on a line (Sec. 5)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ...data import line_points
from ...noise import sigma_schedule
from ...sampling import sample
from ...scores.empirical import EmpiricalScore
from ...scores.neural import NeuralScore
from ...scores.smoothed_pl import SmoothedPLScore
from ...search import nearest_neighbors
from ...training import ConditionedDSM, TrainConfig
from ...training.score_net import train_score_net

#: Paper A's score-network settings shared by the network experiments (each states only what differs): an MLP
#: outputting ``sigma * score``, sigma^2-weighted DSM with sigma log-uniform on ``[sqrt(t_min), 1]`` (t_min = 1e-5),
#: Adam with no weight decay (the paper's "without explicit regularisation"); keys: :func:`train_net`
SCORE_NET = {
    "model": "mlp",
    "batch": 256,
    "lr": 1e-3,
    "param": "sigma_score",
    "sigma_min": math.sqrt(1e-5),
    "sigma_max": 1.0,
    "weight_decay": 0.0,
}


#: Paper A's line setting (Sec. 5, Fig. 1): four training points on a line at 30 degrees in R^2, noised to
#: ``t0 = 0.1``, denoised to ``t_min = 1e-5``; the Smoothed PL-ESF's ``delta_t = kappa sqrt t`` with ``kappa = 1``
LINE = {"points": [-1.5, -0.5, 0.5, 1.5], "angle_deg": 30.0, "t0": 0.1, "t_min": 1e-5, "kappa": 1.0}


def noised_training_samples(train: torch.Tensor, t0: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` draws from ``p_t0 = (1/n_train) sum_k N(y_k, t0 I)`` (Paper A, Sec. 2): where every denoising run
    starts."""
    idx = torch.randint(train.shape[0], (int(n),), generator=generator)
    return train[idx] + math.sqrt(t0) * torch.randn(
        (int(n),) + tuple(train.shape[1:]), generator=generator, dtype=train.dtype
    )


def denoise_from(
    field, x_init: torch.Tensor, t0: float, t_end: float, n_steps: int, *, snapshot_ts=(), method: str = "heun"
):
    """Run the probability-flow ODE ``dx/dsigma = -sigma s(x, sigma)`` (Paper A's ``dx/dt = -s_t/2``) from ``t0`` to
    ``t_end`` on a geometric sigma grid with ``n_steps`` steps. Returns ``(final, {t: samples})`` for the requested
    snapshot times (each rounded onto the grid by the sampler)."""

    sigmas = sigma_schedule("geometric", int(n_steps) + 1, math.sqrt(t_end), math.sqrt(t0))
    snaps = [math.sqrt(t) for t in snapshot_ts]
    out = sample(field, x_init, sigmas, method=method, snapshot_sigmas=snaps or None, progress=False)
    final, snapshots = _unpack_sample(out, snapshot_ts)
    return final.cpu(), {t: v.cpu() for t, v in snapshots.items()}


def nearest_train_distance(samples: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """Euclidean distance (N,) from each sample to its nearest training point (exact search, float64)."""

    d, _ = nearest_neighbors(
        samples.reshape(samples.shape[0], -1).double(), train.reshape(train.shape[0], -1).double(), k=1
    )
    return torch.as_tensor(d).reshape(-1).double()


def fraction(mask: torch.Tensor) -> float:
    return float(mask.double().mean())


def line_decompose(x: torch.Tensor, direction: torch.Tensor):
    """Position along the unit ``direction`` (N,) and the normal part ``x - (x.e) e`` (N, D) (Paper A, Sec. 5)."""
    e = direction.to(x.dtype)
    along = x @ e
    return along, x - along[:, None] * e[None, :]


def train_net(train: torch.Tensor, cfg: dict, ctx, name: str):
    """Train Paper A's score network ``name`` on ``train`` (:func:`smoothscore.training.score_net.train_score_net`,
    weights from stream ``init:<name>``, batches and noise from ``batches:<name>``); returns ``(field, info)`` with
    the EMA weights as the field.

    ``cfg`` keys: ``model`` (``"mlp"``, default, or ``"two-layer"``: Paper A's one-hidden-layer ReLU net),
    ``depth`` (hidden layers of the MLP), ``width``, ``steps``, ``batch``, ``lr``, ``param`` (``"sigma_score"``: the
    network outputs ``sigma * score`` and the sigma^2-weighted DSM loss is ``|F + eps|^2 / 2``; ``"edm"``: EDM
    preconditioned denoiser), ``sigma_min``/``sigma_max`` (continuous log-uniform training noise levels),
    ``embedding`` (MLP sigma features, default ``"log_sigma"``), ``weight_decay`` (AdamW, default 0: no explicit
    regularisation), ``ema_decay`` (default 0.99), ``grad_clip`` (default None). The learning rate decays on a
    cosine from ``lr`` to 0 (docs/paper-a-networks.md: a constant rate leaves the normal score inaccurate at small
    sigma in short runs).
    """

    arch = cfg.get("model", "mlp")
    net = {"model": arch, "param": cfg["param"], "width": int(cfg["width"])}
    if arch == "mlp":
        net.update(depth=int(cfg["depth"]), embedding=cfg.get("embedding", "log_sigma"))
    loss = ConditionedDSM(float(cfg["sigma_min"]), float(cfg["sigma_max"]), n_levels=None)
    tc = TrainConfig(
        steps=int(cfg["steps"]),
        batch_size=int(cfg["batch"]),
        lr=float(cfg["lr"]),
        weight_decay=float(cfg.get("weight_decay", 0.0)),
        ema_decay=float(cfg.get("ema_decay", 0.99)),
        grad_clip=cfg.get("grad_clip"),
        seed=ctx.seed_for(f"batches:{name}"),
        lr_schedule="cosine",
        dtype=ctx.precision,
    )
    fit = train_score_net(
        net, loss, train, tc, init_seed=ctx.seed_for(f"init:{name}"), device=ctx.device, progress=ctx.progress
    )
    field = NeuralScore(fit.ema, data_shape=tuple(train.shape[1:]), dtype=ctx.precision, device=ctx.device)
    return field, fit.info()


def line_training_set(cfg: dict):
    """``(positions (n,) float64, direction (2,) float64, train (n, 2) float32)``: the training points at
    ``cfg["points"]`` along the unit direction at ``cfg["angle_deg"]`` degrees in R^2 (Paper A, Sec. 5)."""

    positions = torch.sort(torch.as_tensor(cfg["points"], dtype=torch.float64)).values
    a = math.radians(float(cfg.get("angle_deg", 0.0)))
    direction = torch.tensor([math.cos(a), math.sin(a)], dtype=torch.float64)
    return positions, direction, line_points(positions=positions, dim=2, direction=direction)


def line_setting(cfg: dict):
    """``(t0, t_min, kappa, positions, direction, train)`` of a line experiment's config: its start and end times,
    the Smoothed PL-ESF's ``kappa`` and :func:`line_training_set` (Paper A, Sec. 5)."""
    positions, direction, train = line_training_set(cfg)
    return float(cfg["t0"]), float(cfg["t_min"]), float(cfg["kappa"]), positions, direction, train


def line_start(ctx):
    """``(t0, t_min, kappa, positions, direction, train, x0)``: :func:`line_setting` of ``ctx.config`` and its
    ``n_samples`` draws ``x0`` of ``p_t0`` (random stream ``p_t0``), where the denoising runs of Paper A's line
    figures (Figs. 1 and 4) start."""
    t0, t_min, kappa, positions, direction, train = line_setting(ctx.config)
    x0 = noised_training_samples(train, t0, ctx.config["n_samples"], ctx.generator("p_t0"))
    return t0, t_min, kappa, positions, direction, train, x0


def closed_form_line_scores(train, positions, kappa: float, direction, device):
    """``(exact ESF, Smoothed PL-ESF)`` of a line setting in float64 on ``device``: the two closed-form scores
    Paper A's line figures denoise with beside the network (the Smoothed PL-ESF's ``delta_t = kappa sqrt t``)."""
    return (
        EmpiricalScore(train, dtype="float64", device=device),
        SmoothedPLScore(positions, kappa=kappa, direction=direction, dtype="float64", device=device),
    )


class LineShares(NamedTuple):
    """What :func:`line_shares` measures of samples denoised to ``t_min``."""

    along: torch.Tensor  #: (N,) float64 CPU: position along the line
    near_along_line: float  #: share within ``3 sqrt(t_min)`` of a training point along the line (memorization)
    far: float  #: share farther than ``5 sqrt(t_min)`` from every training point (interpolation)
    normal_rms: float  #: RMS of the normal part in units of ``sqrt(t_min)`` (subspace recovery)


def line_shares(end: torch.Tensor, positions: torch.Tensor, direction: torch.Tensor, train: torch.Tensor, t_min):
    """:class:`LineShares` of samples ``end`` denoised to ``t_min`` from a line setting (Paper A, Sec. 5): their
    positions along the line (:func:`line_decompose`), the memorizing and interpolating shares and the normal RMS."""
    r_min = math.sqrt(t_min)
    along, normal = line_decompose(end.double().cpu(), direction)
    to_point = (along[:, None] - positions.to(along)[None, :]).abs().min(1).values
    return LineShares(
        along,
        near_along_line=fraction(to_point <= 3 * r_min),
        far=fraction(nearest_train_distance(end, train) > 5 * r_min),
        normal_rms=float(normal.pow(2).sum(1).mean().sqrt()) / r_min,
    )


def _unpack_sample(out, snapshot_ts):
    """``sample`` returns a tensor, or a ``SampleResult`` (keyed by requested sigma) when snapshots were asked for."""
    if not snapshot_ts:
        return out, {}
    return out.x, {t: out.snapshots[math.sqrt(t)] for t in snapshot_ts}
