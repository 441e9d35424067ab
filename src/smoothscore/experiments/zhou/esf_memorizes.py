"""Experiment ``esf-memorizes``: sampling with the exact empirical score reproduces training images.

Paper A (Sec. 2) and Paper B (Sec. 3.1, Eq. 2): the ESF is the score of the Gaussian mixture centred on the training
points; its probability-flow ODE from a large sigma to a tiny one ends within O(sigma_min) of a training point
(reference-values.md R3), so the memorized fraction (d(NN1)/d(NN2) < 1/3) is ~1. Held-out test images, measured with
the same criterion against the same training set, are the control: they are *not* flagged, so the criterion
discriminates.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from ...data import load_digits
from ...metrics import distance_summary, memorization_fraction, nn_ratio
from ...metrics.bootstrap import memorized_fraction_interval, nn_distance_interval
from ...noise import sigma_schedule
from ...plotting import image_grid_figure, nearest_neighbor_figure
from ...sampling import sample
from ...scores.empirical import EmpiricalScore
from ..base import experiment
from .sampling import yerr

QUICK = {
    "n_train": 100,
    "n_test": 64,
    "image_size": 16,
    "n_samples": 64,
    "steps": 60,
    "sigma_min": 2e-3,
    "sigma_max": 20.0,
    "schedule": "edm",
    "method": "heun",
    "dtype": "float32",
    "threshold": 1 / 3,
}
PAPER = dict(QUICK, n_train=500, n_samples=512, steps=120, image_size=32, n_test=256)


TITLE = "The exact empirical score memorizes: samples copy training images"


@experiment("esf-memorizes", TITLE, (QUICK, PAPER), cost=1, streams=("noise",), groups=("zhou", "foundation"))
def run(ctx):
    """Exact-ESF probability-flow sampling on a digits subset (upsampled, d >= 256) lands on training images:
    memorized fraction, distances to the training set, NN figure and sample grid; test images as the control."""
    c = ctx.config
    data = load_digits(n=c["n_train"] + c["n_test"], size=c["image_size"], seed=ctx.seed)
    train, test = data.x[: c["n_train"]], data.x[c["n_train"] :]
    ctx.metric("dimension", int(train[0].numel()))
    esf = EmpiricalScore(train, dtype=c["dtype"], device=ctx.device)
    sigmas = sigma_schedule(c["schedule"], c["steps"], c["sigma_min"], c["sigma_max"])
    g = ctx.generator("noise")
    x0 = float(sigmas[0]) * torch.randn(c["n_samples"], *train.shape[1:], generator=g)
    samples = sample(esf, x0.to(ctx.device), sigmas, method=c["method"], generator=g, progress=ctx.progress).cpu()

    frac = memorization_fraction(samples, train, threshold=c["threshold"])
    frac_test = memorization_fraction(test, train, threshold=c["threshold"])
    summ = distance_summary(samples, train)
    summ_test = distance_summary(test, train)
    ratios = nn_ratio(samples, train)
    ci = {
        "samples": memorized_fraction_interval(samples, train, c["threshold"]),
        "test": memorized_fraction_interval(test, train, c["threshold"]),
    }
    dci = {"samples": nn_distance_interval(samples, train), "test": nn_distance_interval(test, train)}
    ctx.metric("memorized_fraction", frac, ci=ci["samples"])
    ctx.metric("test_memorized_fraction", frac_test, ci=ci["test"])
    ctx.metric("nn_ratio_median", float(torch.as_tensor(ratios).median()))
    ctx.metric("sample_nn_distance", summ)
    ctx.metric("test_nn_distance", summ_test)
    ctx.claim(
        "memorizes",
        "Exact-ESF samples are memorized (fraction with d1/d2 < 1/3)",
        frac,
        ">=",
        0.95,
        ci=ci["samples"],
        details=f"{c['n_samples']} samples, {c['method']} on {c['steps']} {c['schedule']} levels "
        f"{c['sigma_max']} -> {c['sigma_min']}",
    )
    ctx.claim(
        "ends-at-sigma-min",
        "Median distance of a sample to its nearest training image is O(sigma_min): below 5 sigma_min sqrt(d)",
        summ["median"],
        "<=",
        5 * c["sigma_min"] * train[0].numel() ** 0.5,
        ci=dci["samples"],
    )
    ctx.claim(
        "control", "Held-out test images are not flagged as memorized (fraction)", frac_test, "<=", 0.1, ci=ci["test"]
    )
    ctx.save_figure(
        _interval_figure(frac, frac_test, summ["median"], summ_test["median"], ci, dci),
        "memorized",
        "Memorized fraction (left) and median distance to the nearest training image (right, log scale) "
        "of the exact-ESF samples and of held-out test images; error bars: 90% bootstrap intervals over "
        "samples.",
    )
    ctx.save_figure(
        nearest_neighbor_figure(samples, train, k=3, n_show=8),
        "nearest_neighbors",
        "Exact-ESF samples (left) beside their three nearest training images, "
        "with distances and the d1/d2 ratio: each sample is a copy of a training image.",
    )
    ctx.save_figure(
        image_grid_figure(samples[:64], nrow=8, title="exact-ESF samples"),
        "samples",
        "64 samples of the exact ESF probability-flow ODE.",
    )


def _interval_figure(frac, frac_test, d, d_test, ci, dci):

    fig, ax = plt.subplots(1, 2, figsize=(7, 3))
    labels = ["ESF samples", "test images"]
    ax[0].bar(
        [0, 1],
        [frac, frac_test],
        yerr=yerr([frac, frac_test], [ci["samples"], ci["test"]]),
        capsize=4,
        color=["C3", "C0"],
    )
    ax[0].set(xticks=[0, 1], xticklabels=labels, ylim=(0, 1.05), ylabel="memorized fraction (d1/d2 < 1/3)")
    ax[1].bar([0, 1], [d, d_test], yerr=yerr([d, d_test], [dci["samples"], dci["test"]]), capsize=4, color=["C3", "C0"])
    ax[1].set(xticks=[0, 1], xticklabels=labels, yscale="log", ylabel="median distance to nearest training image")
    fig.tight_layout()
    return fig
