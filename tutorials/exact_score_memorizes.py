# %% [markdown]
# # The exact score memorizes — in five minutes
#
# A diffusion model is trained to match the score of the noised training set. The *exact* minimiser of that
# objective is known in closed form: the empirical score function (ESF), a softmax over the training points
# (Paper A, Eq. 2; Paper B, Eq. 2). This tutorial samples with it and shows that every sample is a copy of a
# training image — and why: the softmax weights become one-hot as the noise level falls.
#
# Run it as a script (`python tutorials/exact_score_memorizes.py`) or open it as a notebook with
# `jupytext --to notebook tutorials/exact_score_memorizes.py`. Figures go to `$SMOOTHSCORE_TUTORIAL_OUT`
# (default `tutorial-figures/`). It takes a few seconds on a laptop CPU.

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

import smoothscore as ss
from smoothscore.plotting import nearest_neighbor_figure

OUT = Path(os.environ.get("SMOOTHSCORE_TUTORIAL_OUT", "tutorial-figures"))
OUT.mkdir(parents=True, exist_ok=True)
g = torch.Generator().manual_seed(0)

# %% [markdown]
# ## 100 digits and their exact score
#
# scikit-learn's 8x8 digits (shipped with it, no download), upsampled to 16x16 (d = 256) and scaled to [-1, 1].
# The next 100 digits are held out to show what a *new* digit looks like to the metrics.

# %%
digits = ss.data.load_digits(n=200, size=16).x
train, held_out = digits[:100], digits[100:]
esf = ss.EmpiricalScore(train)  # score(x, sigma), denoise(x, sigma): exact, streamed log-sum-exp
print("training set:", tuple(train.shape))

# %% [markdown]
# ## Sample with the probability-flow ODE
#
# Heun's method on the EDM noise schedule from sigma = 20 down to 0.002, the same sampler one would use for a
# trained network. `ss.sample` takes any score field.

# %%
sigmas = ss.sigma_schedule("edm", 60, 2e-3, 20.0)
x_init = sigmas[0] * torch.randn(64, *train.shape[1:], generator=g)
snaps = [10.0, 3.0, 1.0, 0.3, 0.1, 0.03]
res = ss.sample(esf, x_init, sigmas, method="heun", snapshot_sigmas=snaps)
samples = res.x
frac = ss.metrics.memorization_fraction(samples, train)
frac_real = ss.metrics.memorization_fraction(held_out, train)
print(f"memorized samples (d(NN1)/d(NN2) < 1/3): {frac:.2f}; held-out real digits: {frac_real:.2f}")

fig = nearest_neighbor_figure(samples, train, k=3, n_show=6, title="ESF samples and their 3 nearest training images")
fig.savefig(OUT / "memorizes-neighbours.png", dpi=90, bbox_inches="tight")
plt.close(fig)

# %% [markdown]
# Every sample sits on a training image: its nearest neighbour is much closer than its second one.
#
# ![ESF samples (left column) and their three nearest training images](figures/memorizes-neighbours.png)
#
# The memorization metric (adopted standard, Paper B) is the ratio of the distances to the nearest and the second
# nearest training image; below 1/3 the sample is a copy. Held-out digits, which are new images of the same kind,
# sit near 1; the ESF's samples sit at 0.

# %%
r_samples = ss.metrics.nn_ratio(samples, train)
r_real = ss.metrics.nn_ratio(held_out, train)
fig, ax = plt.subplots(figsize=(6, 3))
bins = torch.linspace(0, 1, 41).numpy()
ax.hist(r_samples.numpy(), bins=bins, alpha=0.7, label="ESF samples")
ax.hist(r_real.numpy(), bins=bins, alpha=0.7, label="held-out digits")
ax.axvline(1 / 3, color="k", ls="--", lw=1, label="threshold 1/3")
ax.set_xlabel("d(NN1) / d(NN2)")
ax.set_ylabel("count")
ax.legend()
fig.savefig(OUT / "memorizes-nn-ratio.png", dpi=90, bbox_inches="tight")
plt.close(fig)
print("median ratio: samples", float(r_samples.median()), "held-out", float(r_real.median()))

# %% [markdown]
# ![Nearest-neighbour distance ratios](figures/memorizes-nn-ratio.png)
#
# ## Why: the softmax weights become one-hot
#
# The ESF's denoiser is `sum_j w_j(x) y_j` with `w_j = softmax_j(-|x - y_j|^2 / (2 sigma^2))`. In high dimension
# the gaps between the squared distances are large compared with `sigma^2` long before the sampler ends, so one
# weight takes everything (Paper B's mu-domination, Eq. 6) and the trajectory is pulled onto that training point.
# Below: the largest weight along the trajectories (median over the 64 samples) at the snapshot levels.

# %%
top = [float(esf.weights(res.snapshots[s], res.snapshot_grid_sigmas[s]).max(dim=1).values.median()) for s in snaps]
fig, ax = plt.subplots(figsize=(6, 3))
ax.semilogx([res.snapshot_grid_sigmas[s] for s in snaps], top, "o-")
ax.invert_xaxis()
ax.set_xlabel("sigma (sampling runs left to right, towards 0)")
ax.set_ylabel("largest softmax weight")
ax.set_ylim(0, 1.05)
fig.savefig(OUT / "memorizes-weights.png", dpi=90, bbox_inches="tight")
plt.close(fig)
for s, w in zip(snaps, top):
    print(f"sigma {s:5.2f}: largest weight {w:.3f}")

# %% [markdown]
# ![Largest softmax weight along the sampling trajectories](figures/memorizes-weights.png)
#
# By sigma ≈ 1 (pixel noise as large as the image range) one training image already holds almost all the weight.
# A network trained to convergence would reproduce this field and copy its training set too; the next two
# tutorials show the two papers' ways out: smoothing the score (Paper A) and changing what the network is trained
# on (Paper B). For the full experiment see `smoothscore reproduce esf-memorizes`.
