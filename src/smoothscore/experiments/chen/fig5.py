"""chen-fig5 — Paper A (Chen 2025), Fig. 5: points evenly spaced on the unit circle, an MLP score trained without
weight decay, samples at the start and end of denoising, and the NN score beside the ESF at ``t = t0/8`` as vector
fields coloured by angular direction (red clockwise, blue counter-clockwise).

Claims (thresholds fixed here, before the run):

* ``esf_memorizes``: exact-ESF samples at ``t_min`` lie within ``5 sqrt(t_min)`` of a training point (>= 99%; the
  exact flow ends at ``p_t_min``, and a 2-D Gaussian puts only 98.9% of its mass within 3 std, so the complement of
  the interpolation criterion is used);
* ``nn_interpolates``: >= 20% of NN samples end farther than ``5 sqrt(t_min)`` from every training point;
* ``nn_near_manifold``: >= 95% of NN samples have radius in ``[cos(pi/n) - 0.05, 1 + 0.05]``, the annulus between
  the training points' polygon and the circle (with a 0.05 margin): interpolation happens along the manifold;
* ``nn_smoother_than_esf``: along the unit circle at ``t0/8`` the steepest angular slope of the NN's tangential score
  is at most half the ESF's (the ESF switches direction abruptly mid-gap; the NN ramps).

Finding ``gap_shape``: whether in-gap samples sit on the chords (radius ``cos(pi/n)`` at mid-gap) or on the arcs
(radius 1), from the mean radius of the samples in the middle 30% of each gap.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import cm, colors

from ...data import circle_points
from ...scores.empirical import EmpiricalScore
from ..base import experiment
from .protocol import SCORE_NET, denoise_from, fraction, nearest_train_distance, noised_training_samples, train_net

__all__ = ["angular_direction", "gap_position", "run"]


def angular_direction(points, vectors) -> torch.Tensor:
    """Signed angular direction of ``vectors`` at ``points`` (both (N, 2)), in [-1, 1]:
    ``(x v_y - y v_x) / (|x| |v|)``; positive = counter-clockwise (about the origin), negative = clockwise,
    0 = radial or zero vectors."""
    p, v = torch.as_tensor(points, dtype=torch.float64), torch.as_tensor(vectors, dtype=torch.float64)
    cross = p[:, 0] * v[:, 1] - p[:, 1] * v[:, 0]
    den = p.norm(dim=1) * v.norm(dim=1)
    return torch.where(den > 0, cross / den.clamp_min(1e-300), torch.zeros_like(cross))


def gap_position(x: torch.Tensor, n: int) -> torch.Tensor:
    """Position of each sample inside its angular gap, in [0, 1) (0 and 1 = training points, 0.5 = mid-gap),
    for ``n`` evenly spaced points with the first at angle 0."""
    ang = torch.atan2(x[:, 1], x[:, 0]) % (2 * math.pi)
    gap = 2 * math.pi / n
    return (ang % gap) / gap


def _quiver(ax, grid, vec, scale, title):
    """Arrows of length proportional to |vec| / scale (clipped at 1), coloured by :func:`angular_direction`."""

    c = angular_direction(grid, vec).numpy()
    mag = vec.norm(dim=1)
    length = (mag / scale).clamp(max=1.0)  # linear in magnitude, clipped for display
    u = (vec / mag.clamp_min(1e-30)[:, None] * length[:, None]).numpy()
    norm = colors.Normalize(-1, 1)
    cmap = colors.LinearSegmentedColormap.from_list("cw_ccw", ["#d62728", "#8c8c8c", "#1f4fb4"])
    ax.quiver(
        grid[:, 0].numpy(),
        grid[:, 1].numpy(),
        u[:, 0],
        u[:, 1],
        c,
        cmap=cmap,
        norm=norm,
        angles="xy",
        scale_units="xy",
        scale=1 / 0.11,
        width=0.004,
    )
    th = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(th), np.sin(th), color="0.6", lw=0.6)
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    return cm.ScalarMappable(norm=norm, cmap=cmap)


def _tangential_on_circle(field, n_angles: int, sigma: float, dtype):
    th = torch.linspace(0, 2 * math.pi, n_angles + 1, dtype=torch.float64)[:-1]
    pts = torch.stack([th.cos(), th.sin()], 1)
    s = field.score(pts.to(dtype), sigma).double()
    tang = -pts[:, 1] * s[:, 0] + pts[:, 0] * s[:, 1]  # d/dtheta component (unit circle)
    return th, tang


#: MLP score net, no weight decay (the paper's "without explicit regularisation"): sigma * score output trained by
#: sigma^2-weighted DSM, sigma log-uniform on [sqrt(t_min), 1], Adam(W) with weight_decay 0, EMA weights
_NET = dict(SCORE_NET, depth=2, width=128)


QUICK = {
    "n_points": 8,
    "t0": 0.05,
    "t_min": 1e-5,
    "n_samples": 3000,
    "n_steps": 100,
    "net": dict(_NET, steps=3000),
    "grid": 21,
    "n_angles": 720,
    "seeds": 3,
}
PAPER = {
    "n_samples": 20000,
    "n_steps": 400,
    "net": dict(_NET, depth=3, width=512, steps=8000, batch=1024),
    "grid": 25,
    "n_angles": 1440,
}


TITLE = "Paper A Fig. 5: NN-learned score on a circle interpolates along the circle"


@experiment("chen-fig5", TITLE, (QUICK, PAPER), trains=True, cost=7, streams=("p_t0", "init:circle", "batches:circle"))
def run(ctx) -> None:
    """n points evenly spaced on the unit circle: NN-learned (no weight decay) vs exact ESF denoising and fields."""

    cfg = ctx.config
    n, t0, t_min = int(cfg["n_points"]), float(cfg["t0"]), float(cfg["t_min"])
    r_min = math.sqrt(t_min)
    train = circle_points(n)  # unit circle, first point at angle 0
    esf = EmpiricalScore(train, dtype="float64", device="cpu")
    net, info = train_net(train, cfg["net"], ctx, name="circle")
    for k, v in info.items():
        ctx.metric(f"nn_{k}", v)

    x0 = noised_training_samples(train, t0, cfg["n_samples"], ctx.generator("p_t0"))
    nn_end, _ = denoise_from(net, x0, t0, t_min, cfg["n_steps"])
    esf_end, _ = denoise_from(esf, x0.double(), t0, t_min, cfg["n_steps"])
    nn_end, esf_end = nn_end.double(), esf_end.double()

    d_nn, d_esf = nearest_train_distance(nn_end, train), nearest_train_distance(esf_end, train)
    ctx.claim(
        "esf_memorizes",
        "exact-ESF samples at t_min within 5 sqrt(t_min) of a training point",
        fraction(d_esf <= 5 * r_min),
        ">=",
        0.99,
        deterministic=True,
    )
    ctx.claim(
        "nn_interpolates",
        "NN samples farther than 5 sqrt(t_min) from every training point",
        fraction(d_nn > 5 * r_min),
        ">=",
        0.20,
    )
    chord = math.cos(math.pi / n)
    radius = nn_end.norm(dim=1)
    ctx.claim(
        "nn_near_manifold",
        f"NN samples with radius in [cos(pi/n) - 0.05, 1.05] = [{chord - 0.05:.3f}, 1.05] "
        "(between the polygon and the circle)",
        fraction((radius >= chord - 0.05) & (radius <= 1.05)),
        ">=",
        0.95,
    )
    ctx.metric("nn_radius_quantiles_1_50_99", radius.quantile(torch.tensor([0.01, 0.5, 0.99], dtype=torch.float64)))

    pos = gap_position(nn_end, n)
    mid = ((pos - 0.5).abs() < 0.15) & (d_nn > 5 * r_min)
    n_mid = int(mid.sum())
    ctx.metric("mid_gap_count", n_mid)
    if n_mid:
        r_mid = float(radius[mid].mean())
        rel = (r_mid - chord) / (1 - chord)  # 0 = chord (polygon), 1 = arc (circle)
        shape = (
            "chords (a regular polygon)"
            if rel < 1 / 3
            else "arcs (the circle)"
            if rel > 2 / 3
            else "between the chords and the arcs"
        )
        ctx.metric("mid_gap_mean_radius", r_mid)
        ctx.metric("mid_gap_relative_position", rel)
        ctx.finding(
            "gap_shape",
            f"in-gap NN samples lie on the {shape}: mean radius at mid-gap {r_mid:.4f} vs chord "
            f"radius cos(pi/{n}) = {chord:.4f} and arc radius 1 (relative position {rel:.2f}; "
            f"0 = chord, 1 = arc; {n_mid} samples)",
            rel,
        )
    else:
        ctx.finding("gap_shape", "no NN samples in the middle of a gap: chord vs arc undecided", None)

    # fields at t0/8 (Paper A Fig. 5, middle and bottom)
    sig = math.sqrt(t0 / 8)
    th, tang_nn = _tangential_on_circle(net, cfg["n_angles"], sig, torch.float32)
    _, tang_esf = _tangential_on_circle(esf, cfg["n_angles"], sig, torch.float64)
    dth = float(th[1] - th[0])
    slope = lambda v: float((torch.roll(v, -1) - v).abs().max()) / dth  # noqa: E731 (periodic finite difference)
    ctx.metric("max_angular_slope_nn", slope(tang_nn))
    ctx.metric("max_angular_slope_esf", slope(tang_esf))
    ctx.claim(
        "nn_smoother_than_esf",
        "steepest angular slope of the tangential score on the unit circle at t0/8, NN / ESF",
        slope(tang_nn) / slope(tang_esf),
        "<=",
        0.5,
    )

    g = torch.linspace(-1.4, 1.4, int(cfg["grid"]), dtype=torch.float64)
    grid = torch.cartesian_prod(g, g)
    f_nn = net.score(grid.float(), sig).double()
    f_esf = esf.score(grid, sig)
    ring = (grid.norm(dim=1) - 1).abs() < 0.3  # where p_{t0/8} has its mass
    scale_nn = float(torch.quantile(f_nn[ring].norm(dim=1), 0.95))
    scale_esf = float(torch.quantile(f_esf[ring].norm(dim=1), 0.95))

    fig, ax = plt.subplots(2, 3, figsize=(13.5, 9))
    tri = train.numpy()
    for a, pts, title in (
        (ax[0, 0], x0, f"start: samples of p_t0 (t0 = {t0:g})"),
        (ax[0, 1], nn_end, f"end (t_min = {t_min:g}): NN-learned score"),
        (ax[0, 2], esf_end, f"end (t_min = {t_min:g}): exact ESF"),
    ):
        p = pts.double().numpy()
        a.scatter(p[:, 0], p[:, 1], s=2, alpha=0.35, color="tab:blue", rasterized=True)
        poly = np.vstack([tri, tri[:1]])
        a.plot(poly[:, 0], poly[:, 1], color="0.5", lw=0.6, ls="--", label="polygon")
        a.scatter(tri[:, 0], tri[:, 1], marker="x", color="k", s=40, label="training points", zorder=3)
        a.set_aspect("equal")
        a.set_title(title, fontsize=9)
        a.set_xlim(-1.6, 1.6)
        a.set_ylim(-1.6, 1.6)
    ax[0, 0].legend(fontsize=7, loc="upper right")
    sm = _quiver(ax[1, 0], grid, f_nn, scale_nn, f"NN-learned score at t = t0/8 = {t0 / 8:g}")
    _quiver(ax[1, 1], grid, f_esf, scale_esf, f"ESF at t = t0/8 = {t0 / 8:g}")
    for a in (ax[1, 0], ax[1, 1]):
        a.scatter(tri[:, 0], tri[:, 1], marker="x", color="k", s=30, zorder=3)
    cb = fig.colorbar(sm, ax=ax[1, 1], orientation="horizontal", fraction=0.05, pad=0.08)
    cb.set_label("angular direction (-1 clockwise, +1 counter-clockwise)", fontsize=8)
    deg = np.degrees(th.numpy())
    ax[1, 2].plot(deg, tang_esf.numpy() * (t0 / 8), color="tab:red", lw=1, label="ESF")
    ax[1, 2].plot(deg, tang_nn.numpy() * (t0 / 8), color="tab:blue", lw=1.4, label="NN")
    for k in range(n):
        ax[1, 2].axvline(360 * k / n, color="0.8", lw=0.6)
    ax[1, 2].set_xlabel("angle on the unit circle (deg); grey lines = training points")
    ax[1, 2].set_ylabel("t * tangential score (counter-clockwise > 0)")
    ax[1, 2].set_title("tangential score along the circle at t0/8", fontsize=9)
    ax[1, 2].legend(fontsize=8)
    ctx.save_figure(
        fig,
        "circle_fields",
        f"n = {n} points on the unit circle. Top: samples of p_t0, then the end of "
        "denoising with the NN-learned score (interpolates along the polygon/circle) and with the exact "
        "ESF (returns to the training points). Bottom: NN score vs ESF at t0/8 as vector fields (arrow "
        "length proportional to magnitude, normalised per panel by its 95th percentile within 0.3 of the "
        "circle "
        "and clipped; colour by "
        "angular direction: red clockwise, blue counter-clockwise), and the tangential score along the "
        "unit circle.",
    )
