"""Figures of memorization onset and the memorization phase diagram: onset curves with their bootstrap bands,
phase-diagram heatmaps side by side with the boundary drawn, and the d1/d2 histogram of an audit."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def onset_figure(curves: dict, level: float, onsets: dict | None = None, title: str = ""):
    """Memorized fraction against the training step, one line per label of ``curves`` (label -> audit points with
    ``step``, ``fraction`` and ``ci``), the 90% bootstrap interval as a band, the onset level dashed and each onset
    (``onsets``: label -> step or None) marked."""
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for i, (label, curve) in enumerate(curves.items()):
        steps = [p["step"] for p in curve]
        ax.plot(steps, [p["fraction"] for p in curve], "o-", ms=3, color=f"C{i}", label=str(label))
        ax.fill_between(steps, [p["ci"][0] for p in curve], [p["ci"][1] for p in curve], color=f"C{i}", alpha=0.2)
        on = (onsets or {}).get(label)
        if on is not None:
            ax.axvline(on, color=f"C{i}", ls=":", lw=1)
    ax.axhline(level, color="k", ls="--", lw=0.8, label=f"onset level {level:g}")
    ax.set(xlabel="training step", ylabel="memorized fraction (d1/d2 < 1/3)", ylim=(-0.02, 1.02), title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def phase_figure(grids: dict, sizes, steps, boundaries: dict, onsets: dict, level: float):
    """Heatmaps of the memorized fraction over (training-set size x training step), one per method of ``grids``
    (method -> (len(sizes), len(steps)) array) side by side; ``boundaries`` (method -> per-step largest memorized
    set size, 0 for none) is drawn as a white step line and ``onsets`` (method -> per-size onset step or None) as
    crosses."""
    methods = list(grids)
    fig, axes = plt.subplots(1, len(methods), figsize=(3.6 * len(methods) + 0.8, 3.4), squeeze=False)
    ys = np.arange(len(sizes))
    for ax, m in zip(axes[0], methods):
        im = ax.imshow(
            np.asarray(grids[m], dtype=float), origin="lower", aspect="auto", vmin=0, vmax=1, cmap="magma",
            extent=(-0.5, len(steps) - 0.5, -0.5, len(sizes) - 0.5),
        )  # fmt: skip
        pos = {n: i for i, n in enumerate(sizes)}
        b = [pos[v] if v in pos else -0.5 for v in boundaries[m]]
        ax.step(np.arange(len(steps)), b, where="mid", color="w", lw=2, label=f"boundary (fraction >= {level:g})")
        on = [(list(steps).index(s), i) for i, s in enumerate(onsets[m]) if s is not None and s in steps]
        if on:
            ax.plot(*zip(*on), "c+", ms=9, mew=2, label="onset tau_mem")
        ax.set_xticks(range(len(steps)))
        ax.set_xticklabels([str(s) for s in steps], rotation=60, fontsize=6)
        ax.set_yticks(ys)
        ax.set_yticklabels([str(n) for n in sizes], fontsize=7)
        ax.set(xlabel="training step", ylabel="training-set size n", title=m)
    axes[0][0].legend(fontsize=6, loc="upper left")
    fig.colorbar(im, ax=axes[0].tolist(), label="memorized fraction")
    return fig


def ratio_histogram(ratios, threshold: float = 1 / 3):
    """Histogram of the samples' d1/d2 with the memorization threshold."""
    fig, ax = plt.subplots(figsize=(5, 3))
    r = np.clip(np.asarray(ratios, dtype=float), 0, 1)
    ax.hist(r, bins=np.linspace(0, 1, 31), color="C0", edgecolor="w")
    ax.axvline(threshold, color="C3", ls="--", label=f"threshold {threshold:.3g}")
    ax.set(xlabel="d(NN1) / d(NN2)", ylabel="samples", title="nearest-neighbour ratio of the samples")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
