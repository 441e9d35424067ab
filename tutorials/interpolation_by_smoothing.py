# %% [markdown]
# # Interpolation by smoothing (Paper A)
#
# Chen (arXiv 2502.19499) shows that a *smoothed* empirical score makes denoising interpolate between training
# points instead of copying them. The smoothed score is explicit — the Smoothed PL-ESF: exact within
# `delta_t = kappa sqrt(t)` of each training point and a linear ramp across the rest of each gap — and so is the
# probability-flow ODE it drives. This tutorial compares it with the exact score on two points at ±1, checks the
# sampler against the closed-form flow and densities, draws the phase diagram, and repeats the experiment for
# points on a line in the plane. Time is Paper A's `t = sigma^2`. It takes a few seconds.

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import smoothscore as ss
from smoothscore.theory import smoothing_dynamics as dyn

OUT = Path(os.environ.get("SMOOTHSCORE_TUTORIAL_OUT", "tutorial-figures"))
OUT.mkdir(parents=True, exist_ok=True)
g = torch.Generator().manual_seed(0)

# %% [markdown]
# ## Three scores for two training points
#
# The exact score (ESF) of the two points, its small-`t` limit the PL-ESF `(sign(x) - x) / t` (a jump at 0), and the
# Smoothed PL-ESF for two values of `kappa`. Plotted as `t * s(x)`, the displacement the denoiser proposes.

# %%
points = torch.tensor([-1.0, 1.0])
t = 0.05
sigma = t**0.5
xs = torch.linspace(-2, 2, 801, dtype=torch.float64)[:, None]
fields = {
    "ESF (exact)": ss.EmpiricalScore(points[:, None], dtype="float64"),
    "PL-ESF": ss.SmoothedPLScore(points, dtype="float64"),
    "Smoothed PL-ESF, kappa = 1": ss.SmoothedPLScore(points, kappa=1.0, dtype="float64"),
    "Smoothed PL-ESF, kappa = 2": ss.SmoothedPLScore(points, kappa=2.0, dtype="float64"),
}
fig, ax = plt.subplots(figsize=(6.5, 3.2))
for name, f in fields.items():
    ax.plot(xs[:, 0], t * f.score(xs, sigma)[:, 0], label=name)
ax.set_xlabel("x")
ax.set_ylabel("t * score")
ax.set_title(f"t = {t}")
ax.legend(fontsize=8)
fig.savefig(OUT / "smoothing-scores.png", dpi=90, bbox_inches="tight")
plt.close(fig)

# %% [markdown]
# ![Exact, piecewise-linear and smoothed scores](figures/smoothing-scores.png)
#
# ## Denoise from t0 to t_min = 1e-5
#
# Start from the noised training distribution `p_t0` and run Heun's method on the probability-flow ODE with each
# score. With `kappa sqrt(t0) < 1` the closed form predicts atoms at ±1 (samples inside the exact regions) plus a
# continuous density between them (samples inside the ramp): the interpolating share is
# `dyn.interpolating_mass(t0, points, kappa)`.

# %%
t0, t_min, kappa = 0.25, 1e-5, 1.0
n = 20000
x0 = points[torch.randint(0, 2, (n,), generator=g)].double()[:, None] + t0**0.5 * torch.randn(
    n, 1, generator=g, dtype=torch.float64
)
sig = ss.sigma_schedule("sqrt_t_uniform", 300, t_min**0.5, t0**0.5)
traj = []
smooth = ss.SmoothedPLScore(points, kappa=kappa, dtype="float64")
end_smooth = ss.sample(smooth, x0, sig, method="heun", callback=lambda info: traj.append(info["x"][:40, 0].clone()))
end_esf = ss.sample(fields["ESF (exact)"], x0, sig, method="heun")

closed = dyn.flow_map(x0[:, 0].numpy(), t0, t_min, points.numpy(), kappa)
print("Heun vs closed-form flow, max |error|:", float(np.abs(end_smooth[:, 0].numpy() - closed).max()))


def between(x):
    """Share of samples strictly between the points (farther than 5 sqrt(t_min) from both)."""
    return float((x.abs() < 1 - 5 * t_min**0.5).double().mean())


print(
    f"share strictly between the points: smoothed {between(end_smooth[:, 0]):.3f} "
    f"(closed form {dyn.interpolating_mass(t0, points.numpy(), kappa):.3f}), exact ESF {between(end_esf[:, 0]):.3f}"
)

grid = np.linspace(-0.98, 0.98, 400)
fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
bins = np.linspace(-1.5, 1.5, 121)
for ax, x_end, name in ((axes[0], end_esf, "exact ESF"), (axes[1], end_smooth, f"Smoothed PL-ESF, kappa = {kappa}")):
    ax.hist(x_end[:, 0].numpy(), bins=bins, density=True, alpha=0.6, label="samples")
    ax.set_yscale("log")
    ax.set_title(name)
    ax.set_xlabel("x at t_min")
axes[1].plot(
    grid, dyn.endpoint_density(grid, t0, points.numpy(), kappa), "k", lw=1.5, label="closed form (continuous part)"
)
axes[1].legend(fontsize=8)
fig.savefig(OUT / "smoothing-endpoint.png", dpi=90, bbox_inches="tight")
plt.close(fig)

# %% [markdown]
# ![Endpoint histograms (log scale) with the closed-form density](figures/smoothing-endpoint.png)
#
# The exact score sends every sample to ±1 (memorization); the smoothed one leaves the closed-form share of
# samples spread between them, with the predicted U-shaped density.
#
# ## The phase diagram
#
# In the `(x, sqrt t)` plane trajectories are straight lines; the ramp boundaries `x = ±(1 - kappa sqrt t)` meet at
# `(0, 1/kappa)`. Trajectories that start inside the triangle interpolate; the others memorize.

# %%
tr = torch.stack([x0[:40, 0]] + traj).numpy()
root_t = np.concatenate([[t0**0.5], sig[1:].numpy()])
fig, ax = plt.subplots(figsize=(5, 4))
ax.plot(tr, root_t, color="tab:blue", lw=0.6, alpha=0.7)
lo, hi = dyn.ramp_boundaries(points.numpy(), kappa, root_t)
ax.plot(lo[:, 0], root_t, "r--", hi[:, 0], root_t, "r--", lw=1.2)
ax.set_xlabel("x")
ax.set_ylabel("sqrt(t) = sigma")
ax.set_xlim(-1.8, 1.8)
fig.savefig(OUT / "smoothing-phase.png", dpi=90, bbox_inches="tight")
plt.close(fig)

# %% [markdown]
# ![Phase diagram: trajectories and ramp boundaries](figures/smoothing-phase.png)
#
# ## Points on a line in the plane
#
# Four points on a line through the origin in `R^2`. The smoothed score acts along the line and is exactly
# `-x_perp / t` across it, so denoising recovers the line (normal spread `sqrt(t_min)`) and fills the gaps, while
# the exact score lands on the four points.

# %%
pos = torch.tensor([-1.5, -0.5, 0.5, 1.5])
e = torch.tensor([0.8, 0.6], dtype=torch.float64)
train2 = pos[:, None].double() * e
n2 = 3000
t0_2, kappa2 = 0.05, 1.0  # half-gaps are 0.5 here: kappa sqrt(t0) must stay below them
y0 = train2[torch.randint(0, 4, (n2,), generator=g)] + t0_2**0.5 * torch.randn(n2, 2, generator=g, dtype=torch.float64)
sig2 = ss.sigma_schedule("sqrt_t_uniform", 300, t_min**0.5, t0_2**0.5)
end2_s = ss.sample(ss.SmoothedPLScore(pos, kappa=kappa2, direction=e, dtype="float64"), y0, sig2, method="heun")
end2_e = ss.sample(ss.EmpiricalScore(train2, dtype="float64"), y0, sig2, method="heun")
normal = torch.stack([-e[1], e[0]])
print("normal std at t_min (smoothed):", float((end2_s @ normal).std()), "sqrt(t_min) =", t_min**0.5)
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharex=True, sharey=True)
for ax, pts, name in (
    (axes[0], y0, f"start: p_t0, t0 = {t0_2}"),
    (axes[1], end2_e, "exact ESF at t_min"),
    (axes[2], end2_s, f"Smoothed PL-ESF (kappa = {kappa2}) at t_min"),
):
    ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.3)
    ax.scatter(train2[:, 0], train2[:, 1], c="r", s=20, marker="x")
    ax.set_title(name, fontsize=9)
    ax.set_aspect("equal")
fig.savefig(OUT / "smoothing-plane.png", dpi=90, bbox_inches="tight")
plt.close(fig)

# %% [markdown]
# ![Denoising points on a line in the plane](figures/smoothing-plane.png)
#
# The paper's other figures (trained ReLU networks that learn this smoothing, the circle and the sphere) are
# experiments: `smoothscore reproduce chen`. The formulas used here are listed on the
# [equations page](../equations.md).
