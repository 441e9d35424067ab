"""chen-fig3 — Paper A (Chen 2025), Fig. 3: the phase diagram of the Smoothed PL-ESF flow in the ``(x, sqrt t)``
plane, with simulated trajectories overlaid on the closed form.

Two training points at +-1, ``delta_t = kappa sqrt t``. Closed form (:mod:`smoothscore.theory.smoothing_dynamics`):
trajectories are straight lines in ``(x, sqrt t)``; the ramp boundaries ``x = +-(1 - kappa sqrt t)`` meet at
``(0, 1/kappa)``; samples inside the triangle interpolate, samples outside memorise.

Simulation: ``n_samples`` draws of ``p_t0`` moved by the library's Heun sampler (:func:`smoothscore.sampling.sample`)
on a grid uniform in ``sigma = sqrt t`` (the flow is linear in sigma inside each region, so Heun is exact up to
rounding — any larger error would be a bug), float64. A second, small set of trajectories starts above the apex
(``sigma_top > 1/kappa``) where every sample memorises.

Claims (thresholds fixed here): ``trajectory_error`` (max |simulated - closed form| over all samples and snapshot
times <= 1e-4); ``interpolating_mass`` (share of samples in the ramp region at ``t_min`` vs ``1 - a_+ - a_-`` within
0.01, >= 20,000 samples); ``continuous_part_ks`` (Kolmogorov-Smirnov distance between the in-gap samples and the
analytic pushforward density at ``t_min``, conditioned on the gap, <= 0.03).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import kstest

from ...sampling import sample
from ...scores.smoothed_pl import SmoothedPLScore
from ...theory import smoothing_dynamics as sd
from ..base import experiment

__all__ = ["run", "flow_with_snapshots"]

POINTS = (-1.0, 1.0)


def flow_with_snapshots(field, x0: torch.Tensor, sigmas: torch.Tensor, stride: int, method: str = "heun"):
    """:func:`smoothscore.sampling.sample` over the decreasing grid ``sigmas`` with snapshots at every ``stride``-th
    grid level (and the last); returns ``(snapshot_sigmas, [x at each snapshot])`` including the start."""

    snap = sigmas[list(range(0, len(sigmas) - 1, stride)) + [len(sigmas) - 1]]
    out = sample(field, x0, sigmas, method=method, snapshot_sigmas=snap.tolist(), progress=False)
    return snap, [out.snapshots[float(v)] for v in snap.tolist()]


QUICK = {
    "kappa": 0.8,
    "t0": 0.25,
    "sigma_top": 1.5,
    "t_min": 1e-5,
    "n_samples": 40000,
    "n_steps": 240,
    "stride": 20,
    "n_lines": 31,
    "n_top": 13,
}
PAPER = {"n_samples": 200000, "n_steps": 960, "stride": 40, "n_lines": 41, "n_top": 17}


TITLE = "Paper A Fig. 3: phase diagram of the Smoothed PL-ESF flow, simulation vs closed form"


@experiment("chen-fig3", TITLE, (QUICK, PAPER), cost=2, streams=("p_t0",))
def run(ctx) -> None:
    """Phase diagram with Heun-simulated trajectories; interpolating mass and in-gap density vs closed form."""

    cfg = ctx.config
    kappa, t0, t_min = float(cfg["kappa"]), float(cfg["t0"]), float(cfg["t_min"])
    s0, s_min, s_top = math.sqrt(t0), math.sqrt(t_min), float(cfg["sigma_top"])
    field = SmoothedPLScore(POINTS, kappa=kappa, dtype="float64", device="cpu")
    g = ctx.generator("p_t0")
    n = int(cfg["n_samples"])
    y = torch.tensor(POINTS, dtype=torch.float64)
    x0 = y[torch.randint(0, 2, (n,), generator=g)] + s0 * torch.randn(n, generator=g, dtype=torch.float64)
    lines0 = torch.linspace(-2.2, 2.2, int(cfg["n_lines"]), dtype=torch.float64)
    top0 = torch.linspace(-2.5, 2.5, int(cfg["n_top"]), dtype=torch.float64)
    xs = torch.cat([x0, lines0])[:, None]
    sig = torch.linspace(s0, s_min, int(cfg["n_steps"]) + 1, dtype=torch.float64)
    snap_sig, snaps = flow_with_snapshots(field, xs, sig, int(cfg["stride"]))
    sig_top = torch.linspace(s_top, s_min, int(cfg["n_steps"]) + 1, dtype=torch.float64)
    snap_top, snaps_top = flow_with_snapshots(field, top0[:, None], sig_top, int(cfg["stride"]))

    # 1. simulated vs closed-form trajectories
    errs = []
    for ss_, xx in zip(snap_sig.tolist(), snaps):
        errs.append(float(np.abs(xx[:, 0].numpy() - sd.flow_map(xs[:, 0].numpy(), t0, ss_**2, POINTS, kappa)).max()))
    errs_top = [
        float(np.abs(xx[:, 0].numpy() - sd.flow_map(top0.numpy(), s_top**2, ss_**2, POINTS, kappa)).max())
        for ss_, xx in zip(snap_top.tolist(), snaps_top)
    ]
    ctx.metric("max_error_per_snapshot", errs)
    ctx.claim(
        "trajectory_error",
        "Heun-simulated Smoothed PL-ESF trajectories match the closed-form flow "
        "(max |simulated - closed form| over samples and snapshot times)",
        max(errs + errs_top),
        "<=",
        1e-4,
        details=f"{n} samples from p_t0 plus {len(lines0) + len(top0)} plotted trajectories, "
        f"{len(snap_sig)} snapshots, {cfg['n_steps']} Heun steps uniform in sigma, float64",
    )
    # 2. interpolating mass at t_min
    end = snaps[-1][:n, 0].numpy()
    ramp = sd.regions(end, t_min, POINTS, kappa) >= 2
    frac, mass = float(ramp.mean()), sd.interpolating_mass(t0, POINTS, kappa)
    a = sd.atom_weights(t0, POINTS, kappa)
    ctx.metric("interpolating_share_simulated", frac)
    ctx.metric("interpolating_mass_closed_form", mass)
    ctx.metric("atoms_closed_form", a.tolist())
    ctx.metric("atoms_simulated", [float((~ramp & (end < 0)).mean()), float((~ramp & (end > 0)).mean())])
    ctx.claim(
        "interpolating_mass",
        f"share of {n} samples ending strictly inside the gap matches 1 - a_+ - a_- = {mass:.4f} (|difference|)",
        abs(frac - mass),
        "<=",
        0.01,
    )
    # 3. continuous part vs analytic density (conditioned on the ramp at t_min)
    w = 1 - kappa * s_min
    grid = np.linspace(-w, w, 20001) * (1 - 1e-12)  # open interval: the end points belong to the exact regions
    pdf = sd.pushforward_density(grid, t_min, t0, POINTS, kappa)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    ctx.metric("ramp_mass_by_density", float(cdf[-1]))
    ks = kstest(end[ramp], lambda v: np.interp(v, grid, cdf / cdf[-1])).statistic
    edges = np.linspace(-w, w, 41)
    hist, _ = np.histogram(end[ramp], edges)
    hd = hist / (n * np.diff(edges))
    centers = 0.5 * (edges[1:] + edges[:-1])
    l1 = float(np.sum(np.abs(hd - sd.pushforward_density(centers, t_min, t0, POINTS, kappa)) * np.diff(edges)))
    ctx.metric("continuous_part_L1_40bins", l1)
    ctx.claim(
        "continuous_part_ks",
        f"in-gap samples at t_min follow the analytic pushforward density "
        f"(Kolmogorov-Smirnov distance, {int(ramp.sum())} samples)",
        float(ks),
        "<=",
        0.03,
        details=f"histogram L1 over 40 bins (unconditioned): {l1:.4f}",
    )

    # figure
    fig, ax = plt.subplots(1, 3, figsize=(16, 5), gridspec_kw={"width_ratios": [1.5, 1, 0.8]})
    sgrid = np.linspace(0, s_top, 400)
    lo, hi = sd.ramp_boundaries(POINTS, kappa, sgrid)
    ax[0].fill_betweenx(sgrid, lo[:, 0], hi[:, 0], color="tab:blue", alpha=0.12, label="interpolation region")
    ax[0].plot(lo[:, 0], sgrid, "b-", lw=2)
    ax[0].plot(hi[:, 0], sgrid, "b-", lw=2, label="boundary x = ±(1 - kappa sqrt t)")
    dense = np.linspace(s_min, 1, 100)
    for start, sfrom, _snaps in ((lines0.numpy(), s0, snaps), (top0.numpy(), s_top, snaps_top)):
        tr = np.stack([sd.flow_map(start, sfrom**2, (q * sfrom) ** 2, POINTS, kappa) for q in dense])
        interp = sd.regions(start, sfrom**2, POINTS, kappa) >= 2
        for j in range(start.size):
            ax[0].plot(tr[:, j], dense * sfrom, "-", color="tab:cyan" if interp[j] else "tab:red", lw=0.9)
    ax[0].plot(
        np.concatenate([q[n:, 0].numpy() for q in snaps]),
        np.repeat(snap_sig.numpy(), len(lines0)),
        "k.",
        ms=2.5,
        label="Heun simulation (snapshots)",
    )
    ax[0].plot(
        np.concatenate([q[:, 0].numpy() for q in snaps_top]), np.repeat(snap_top.numpy(), len(top0)), "k.", ms=2.5
    )
    ax[0].axhline(s0, color="gray", ls=":", lw=1)
    ax[0].text(2.3, s0, " sqrt(t0)", va="bottom", fontsize=8)
    ax[0].plot([0], [1 / kappa], "b^", ms=8)
    ax[0].plot(POINTS, [0, 0], "ko", ms=8, label="training points")
    ax[0].set(
        xlabel="x",
        ylabel="sqrt(t) = sigma",
        xlim=(-2.6, 2.6),
        ylim=(-0.04, s_top * 1.02),
        title=f"Phase diagram, kappa={kappa:g} (cyan: interpolate, red: memorise)",
    )
    ax[0].legend(fontsize=7, loc="upper left")
    ax[1].bar(centers, hd, width=np.diff(edges), color="tab:blue", alpha=0.5, label="simulated (in-gap part)")
    ax[1].plot(grid, pdf, "k-", lw=1.5, label="closed-form density")
    ax[1].set(
        xlabel="x at t_min",
        ylabel="density",
        title=f"End points: in-gap mass {frac:.3f} (closed form "
        f"{mass:.3f})\natoms at ±1: {a[0]:.3f} each; KS = {ks:.4f}",
    )
    ax[1].legend(fontsize=8)
    ax[2].semilogy(snap_sig.numpy(), np.maximum(errs, 1e-17), "ko-", ms=3, label=f"from sqrt(t0)={s0:g}")
    ax[2].semilogy(snap_top.numpy(), np.maximum(errs_top, 1e-17), "rs-", ms=3, label=f"from {s_top:g}")
    ax[2].axhline(1e-4, color="gray", ls="--", label="claim threshold")
    ax[2].set(xlabel="sigma", ylabel="max |simulated - closed form|", title="Trajectory error")
    ax[2].legend(fontsize=8)
    ctx.save_figure(
        fig,
        "phase_diagram",
        "Left: the (x, sqrt t) phase diagram of the two-point Smoothed PL-ESF "
        "flow. Closed-form trajectories are straight lines (cyan ones interpolate, red ones memorise); "
        "black dots are Heun-simulated positions at snapshot times. Middle: in-gap end points of "
        f"{n} samples from p_t0 against the closed-form density. Right: simulation error per snapshot.",
    )
