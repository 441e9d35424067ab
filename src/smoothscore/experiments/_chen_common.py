"""Helpers shared by the Paper A (Chen 2025) experiments.

Sections are owned by different experiment modules; each is clearly delimited. Add new helpers at the end.
"""

from __future__ import annotations

import contextlib
import math

import torch

# ==================================================================================================================
# Paper A on networks and manifolds (chen-fig1, chen-fig5, chen-sphere, chen-early-stopping): shared helpers.
# Added as a separate section; nothing above is changed. See docs/paper-a-networks.md.
# ==================================================================================================================


#: Paper A's score-network settings shared by the network experiments (each states only what differs): an MLP
#: outputting ``sigma * score``, sigma^2-weighted DSM with sigma log-uniform on ``[sqrt(t_min), 1]`` (t_min = 1e-5),
#: Adam with no weight decay (the paper's "without explicit regularisation"); keys: :func:`train_score_net`
SCORE_NET = {
    "model": "mlp",
    "batch": 256,
    "lr": 1e-3,
    "param": "sigma_score",
    "sigma_min": math.sqrt(1e-5),
    "sigma_max": 1.0,
    "weight_decay": 0.0,
}


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
    from ..noise import sigma_schedule
    from ..sampling import sample

    sigmas = sigma_schedule("geometric", int(n_steps) + 1, math.sqrt(t_end), math.sqrt(t0))
    snaps = [math.sqrt(t) for t in snapshot_ts]
    out = sample(field, x_init, sigmas, method=method, snapshot_sigmas=snaps or None, progress=False)
    final, snapshots = _unpack_sample(out, snapshot_ts)
    return final.cpu(), {t: v.cpu() for t, v in snapshots.items()}


def nearest_train_distance(samples: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """Euclidean distance (N,) from each sample to its nearest training point (exact search, float64)."""
    from ..search import nearest_neighbors

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


def train_score_net(train: torch.Tensor, cfg: dict, ctx, offset: int, name: str):
    """Train a score network on ``train`` with the library trainer; returns ``(field, info)`` (EMA weights).

    ``cfg`` keys: ``model`` (``"mlp"``, default, or ``"two-layer"``: Paper A's one-hidden-layer ReLU net),
    ``depth`` (hidden layers of the MLP), ``width``, ``steps``, ``batch``, ``lr``, ``param`` (``"sigma_score"``: the
    network outputs ``sigma * score`` and the sigma^2-weighted DSM loss is ``|F + eps|^2 / 2``; ``"edm"``: EDM
    preconditioned denoiser), ``sigma_min``/``sigma_max`` (continuous log-uniform training noise levels),
    ``embedding`` (MLP sigma features, default ``"log_sigma"``), ``weight_decay`` (AdamW, default 0: no explicit
    regularisation), ``ema_decay`` (default 0.99), ``grad_clip`` (default None). The learning rate decays on a
    cosine from ``lr`` to 0 (measured: with a constant rate, short runs leave the normal score at small sigma
    inaccurate, normal RMS ~ 9 sqrt(t_min) instead of ~ 2-3 on chen-fig1).
    """
    import time

    from ..nets import build_model
    from ..scores.neural import NeuralScore
    from ..training import ConditionedDSM, TrainConfig, Trainer

    seed = int(ctx.seed) * 1000003 + int(offset)
    torch.manual_seed(seed)  # weight initialisation
    arch = cfg.get("model", "mlp")
    kw = {"width": int(cfg["width"])}
    if arch == "mlp":
        kw.update(depth=int(cfg["depth"]), embedding=cfg.get("embedding", "log_sigma"))
    model = build_model(arch, tuple(train.shape[1:]), param=cfg["param"], **kw)
    loss = ConditionedDSM(float(cfg["sigma_min"]), float(cfg["sigma_max"]), n_levels=None)
    tc = TrainConfig(
        steps=int(cfg["steps"]),
        batch_size=int(cfg["batch"]),
        lr=float(cfg["lr"]),
        weight_decay=float(cfg.get("weight_decay", 0.0)),
        ema_decay=float(cfg.get("ema_decay", 0.99)),
        grad_clip=cfg.get("grad_clip"),
        seed=seed,
        lr_schedule="cosine",
        dtype=ctx.precision,
    )
    t = time.time()
    res = Trainer(model, loss, train, tc, device=ctx.device, progress=ctx.progress).fit()
    info = {
        "train_seconds": round(time.time() - t, 2),
        "final_loss": res.history[-1][1] if res.history else None,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    return NeuralScore(res.ema, data_shape=tuple(train.shape[1:]), dtype=ctx.precision, device=ctx.device), info


def line_training_set(cfg: dict):
    """``(positions (n,) float64, direction (2,) float64, train (n, 2) float32)``: the training points at
    ``cfg["points"]`` along the unit direction at ``cfg["angle_deg"]`` degrees in R^2 (Paper A, Sec. 5)."""
    from ..data import line_points

    positions = torch.sort(torch.as_tensor(cfg["points"], dtype=torch.float64)).values
    a = math.radians(float(cfg.get("angle_deg", 0.0)))
    direction = torch.tensor([math.cos(a), math.sin(a)], dtype=torch.float64)
    return positions, direction, line_points(positions=positions, dim=2, direction=direction)


def _unpack_sample(out, snapshot_ts):
    """``sample`` returns a tensor, or a ``SampleResult`` (keyed by requested sigma) when snapshots were asked for."""
    if not snapshot_ts:
        return out, {}
    return out.x, {t: out.snapshots[math.sqrt(t)] for t in snapshot_ts}


# ==================================================================================================================
# chen-fig2 / chen-fig3 / chen-fig4 section (docs/paper-a.md).
# ==================================================================================================================


@contextlib.contextmanager
def single_thread():
    """Run a block with one intra-op CPU thread, restoring the previous setting afterwards.

    The Paper A experiments work on small tensors (a few thousand 1-D/2-D samples, width-256 nets), where intra-op
    threading buys nothing and, on a busy machine, costs a lot: chen-fig2's quick preset took 28 s with one thread
    and 360 s with two on 2 shared, oversubscribed cores (measured). GPU work is unaffected.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
