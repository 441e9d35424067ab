"""Experiment ``memorization-phase``: where memorization begins, per training method, with intervals.

Beyond both papers. For each training method (``conditioned``: Eq. 8; ``unconditioned``: Eq. 9, Paper B's noise
unconditioning, parameterisation :data:`UNCOND_PARAM`; ``temperature``: Eq. 11 with the pixel-KNN Eq. 10 target) and
each training-set size ``n`` of ``set_sizes`` (nested subsets of one seeded draw), one network is trained and audited
every ``audit_every`` steps (:class:`smoothscore.training.memorization_watch.MemorizationWatch`: memorized fraction
with its 90% bootstrap interval over samples). This gives, per method,

* the **phase diagram**: memorized fraction over (n x training step);
* the **EMM boundary** (Gu et al., TMLR 2025: the largest set size whose memorized fraction reaches ``emm_level``;
  they use 0.9) at every audited step, with an interval: the largest n whose lower / upper bootstrap bound reaches
  the level;
* the **onset time** ``tau_mem(n)`` (first audited step whose lower bound reaches ``onset_level``,
  :func:`~smoothscore.training.memorization_watch.onset_step`) and the least-squares slope of ``tau_mem`` against
  ``n`` with its 90% t-interval, and the log-log exponent (Favero, Sclocchi & Wyart 2025 measure
  ``tau_mem proportional to n``: exponent 1).

Claims (seeded, :mod:`smoothscore.verdict`): tau_mem grows with n; its log-log exponent is within 0.5 of 1; each
smoothing method shrinks the memorized region of the diagram (mean memorized fraction over the grid below the
conditioned one, paired bootstrap interval over samples) -- Paper B's direction.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from scipy.stats import linregress, t

from ...data import load_dataset, load_digits
from ...errors import ConfigError, DataError
from ...metrics.bootstrap import bootstrap_interval
from ...nets.score_model import UNCONDITIONED_PAPER_PARAM
from ...plotting import nearest_neighbor_figure
from ...plotting_memorization import onset_figure, phase_figure
from ...training.memorization_watch import MemorizationWatch, onset_step
from ..base import experiment
from ..zhou.methods import build_loss, net_spec, train_method

METHODS = ("conditioned", "unconditioned", "temperature")
#: the unconditioned networks' output parameterisation: Paper B's code's ``F(x) / sigma`` (``"sigma_scaled"``);
#: ``--set uncond_param=score`` trains the sigma-free form instead
UNCOND_PARAM: str = UNCONDITIONED_PAPER_PARAM

QUICK = {
    "data": "digits",
    "image_size": 8,
    "set_sizes": [2, 3, 4, 6],
    "steps": 4000,
    "audit_every": 250,
    "n_samples": 32,
    "sampler_steps": 32,
    "model": "mlp",
    "width": 256,
    "depth": 3,
    "base": 16,
    "lr": 2e-3,
    "batch_size": 64,
    "ema_decay": 0.99,
    "sigma_min": 0.01,
    "sigma_max": 3.0,
    "n_levels": 1000,
    "k": 2,
    "sigma_collapse": 3.0,
    "knn_variant": "sigma_star",
    "cond_param": "edm",
    "uncond_param": UNCOND_PARAM,
    "methods": list(METHODS),
    "onset_level": 0.1,
    "emm_level": 0.5,
    "seeds": 3,
}
PAPER = QUICK | {
    "data": "folder:data/cifar10",
    "image_size": 32,
    "set_sizes": [100, 300, 1000, 3000],
    "steps": 200_000,
    "audit_every": 10_000,
    "n_samples": 256,
    "sampler_steps": 40,
    "model": "unet",
    "base": 64,
    "lr": 2e-4,
    "batch_size": 128,
    "ema_decay": 0.999,
    "sigma_max": 50.0,
    "k": 30,
    "sigma_collapse": 5.0,
    "emm_level": 0.9,
}


def load_sets(c, seed: int) -> torch.Tensor:
    """The largest training set (first ``max(set_sizes)`` images of a seeded draw); smaller sets are its prefixes."""
    sizes = [int(n) for n in c["set_sizes"]]
    if not sizes or min(sizes) < 2 or sizes != sorted(set(sizes)):
        raise ConfigError(f"set_sizes must be increasing integers >= 2; got {c['set_sizes']}")
    spec, size, n = c["data"], int(c["image_size"]), max(sizes)
    if spec == "digits":
        return load_digits(n=n, size=size, seed=seed).x
    if not str(spec).startswith("folder:"):
        raise ConfigError(f"memorization-phase needs data 'digits' or 'folder:PATH'; got {spec!r}")
    ds = load_dataset(spec, size=size)
    if len(ds) < n:
        raise DataError(f"{spec} has {len(ds)} images; set_sizes needs {n}")
    return ds.x[torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n]]


def train_watched(ctx, method: str, train: torch.Tensor) -> MemorizationWatch:
    """Train one network of ``method`` on ``train`` (:func:`smoothscore.experiments.zhou.methods.train_method`,
    random streams ``init:<method>:<n>`` / ``batches:<method>:<n>``) with a memorization audit every
    ``audit_every`` steps; the audit's noises (stream ``audit-noise``) are the same for every network."""
    c = ctx.config
    kind = "temperature_pixel" if method == "temperature" else method
    loss = build_loss(kind, train, c | {"k": min(int(c["k"]), train.shape[0])})
    watch = MemorizationWatch(
        train,
        every=int(c["audit_every"]),
        sigma_min=float(c["sigma_min"]),
        sigma_max=float(c["sigma_max"]),
        n_samples=int(c["n_samples"]),
        steps=int(c["sampler_steps"]),
        level=float(c["onset_level"]),
        seed=ctx.seed_for("audit-noise"),
        dtype=ctx.dtype,
        device=ctx.device,
    )
    net = net_spec("conditioned" if method == "conditioned" else "unconditioned", c, cond_param=None)
    train_method(ctx, kind, train, loss, stream=f"{method}:{train.shape[0]}", net=net, hooks=[watch.hook()])
    return watch


def emm(sizes, values, level: float) -> int:
    """Effective model memorization (Gu et al.): the largest size whose value reaches ``level``; 0 when none."""
    hit = [n for n, v in zip(sizes, values) if v == v and v >= level]
    return max(hit) if hit else 0


def fit_line(x, y, level: float = 0.9) -> dict:
    """Least-squares ``y = a + b x``: slope ``b`` with its two-sided ``level`` t-interval (NaN below 3 points; the
    interval is [b, b] with exactly 2)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 2 or np.ptp(x) == 0:
        return {"slope": float("nan"), "intercept": float("nan"), "ci": [float("nan"), float("nan")], "n": int(x.size)}
    r = linregress(x, y)
    half = float(t.ppf((1 + level) / 2, x.size - 2)) * r.stderr if x.size > 2 else 0.0
    ci = [float(r.slope - half), float(r.slope + half)]
    return {"slope": float(r.slope), "intercept": float(r.intercept), "ci": ci, "n": int(x.size)}


def summarize(sizes, steps, watches: dict, c) -> dict:
    """Per method: the fraction grid, its bounds, the EMM boundary per step with its interval, tau_mem(n) and its
    linear and log-log fits, from ``watches`` (method -> list of MemorizationWatch, one per size)."""
    out = {}
    lv_on, lv_emm = float(c["onset_level"]), float(c["emm_level"])
    for m, ws in watches.items():
        at = [{p["step"]: p for p in w.curve} for w in ws]
        cell = [[a.get(s) for s in steps] for a in at]
        frac = [[p["fraction"] if p else float("nan") for p in row] for row in cell]
        lo = [[p["ci"][0] if p else float("nan") for p in row] for row in cell]
        hi = [[p["ci"][1] if p else float("nan") for p in row] for row in cell]
        col = lambda g, j: [g[i][j] for i in range(len(sizes))]  # noqa: E731
        tau = [onset_step(w.curve, lv_on) for w in ws]
        ok = [(n, s) for n, s in zip(sizes, tau) if s is not None]
        out[m] = {
            "fraction": frac,
            "lo": lo,
            "hi": hi,
            "emm": [emm(sizes, col(frac, j), lv_emm) for j in range(len(steps))],
            "emm_ci": [[emm(sizes, col(lo, j), lv_emm), emm(sizes, col(hi, j), lv_emm)] for j in range(len(steps))],
            "tau_mem": tau,
            "tau_fit": fit_line(*zip(*ok)) if len(ok) >= 2 else fit_line([], []),
            "tau_loglog": fit_line(*zip(*[(math.log(n), math.log(s)) for n, s in ok])) if len(ok) >= 2 else
            fit_line([], []),
            "indicators": np.array([[np.array(p["ratio"]) < 1 / 3 for p in row if p] for row in cell], dtype=float),
        }  # fmt: skip
    return out


def _area_ci(a: np.ndarray, b: np.ndarray):
    """Paired 90% bootstrap interval (the same resampled initial noises in every cell) of the difference of mean
    memorized fractions over the grid."""
    if a.shape != b.shape or a.size == 0:
        return None
    return bootstrap_interval(lambda i: float(a[..., i].mean() - b[..., i].mean()), a.shape[-1], n_boot=500)


def _claims(ctx, summ, sizes):
    for m, s in summ.items():
        f, lg = s["tau_fit"], s["tau_loglog"]
        ctx.claim(
            f"tau-mem-grows-{m}",
            f"{m}: the memorization onset step tau_mem grows with the training-set size (least-squares slope in "
            "steps per image; NaN when fewer than two sizes reach the onset)",
            f["slope"],
            ">",
            0.0,
            details=f"tau_mem {dict(zip(sizes, s['tau_mem']))}, slope interval {[round(float(v), 4) for v in f['ci']]}",
            ci=f["ci"] if f["n"] > 2 else None,
        )
        ctx.claim(
            f"tau-mem-linear-{m}",
            f"{m}: tau_mem proportional to n (Favero et al.): log-log exponent within 0.5 of 1 (value |b - 1|)",
            abs(lg["slope"] - 1.0),
            "<=",
            0.5,
            details=f"exponent {lg['slope']:.3g}, 90% interval {[round(float(v), 4) for v in lg['ci']]}"
            + (" (contains 1)" if lg["ci"][0] <= 1 <= lg["ci"][1] else ""),
        )
    base = summ.get("conditioned")
    for m, s in summ.items():
        if m == "conditioned" or base is None:
            continue
        a, b = float(np.nanmean(base["fraction"])), float(np.nanmean(s["fraction"]))
        ctx.claim(
            f"{m}-shrinks-memorized-region",
            f"{m} moves the memorization boundary as Paper B says: less of the (n x step) diagram memorized than "
            "with the conditioned network (mean memorized fraction over the grid, conditioned minus this method)",
            a - b,
            ">",
            0.0,
            details=f"conditioned {a:.3f}, {m} {b:.3f}; final-step EMM {base['emm'][-1]} vs {s['emm'][-1]}",
            ci=_area_ci(base["indicators"], s["indicators"]),
        )


def _figures(ctx, summ, sizes, steps, watches, train, c):

    lv = float(c["emm_level"])
    ctx.save_figure(
        phase_figure({m: s["fraction"] for m, s in summ.items()}, sizes, steps, {m: s["emm"] for m, s in summ.items()},
                     {m: s["tau_mem"] for m, s in summ.items()}, lv),
        "phase_diagram",
        f"Memorized fraction over (training-set size x training step) per method (this seed); white line: the EMM "
        f"boundary (largest n with fraction >= {lv:g}); crosses: onset tau_mem(n) (lower 90% bound >= "
        f"{c['onset_level']:g}).",
    )  # fmt: skip
    for m, ws in watches.items():
        ctx.save_figure(
            onset_figure({f"n={n}": w.curve for n, w in zip(sizes, ws)}, float(c["onset_level"]),
                         {f"n={n}": w.onset for n, w in zip(sizes, ws)}, title=m),
            f"onset_{m}",
            f"{m}: memorized fraction during training per set size, 90% bootstrap band over samples; dotted: onset.",
        )  # fmt: skip
        b = summ[m]["emm"][-1]
        i = sizes.index(b) if b in sizes else 0
        xs = ws[i].last_samples
        xs = xs[torch.isfinite(xs.reshape(xs.shape[0], -1)).all(1)]
        if not len(xs):
            ctx.note(f"{m}: every sample at n={sizes[i]} diverged at the last audit; no neighbour figure")
            continue
        ctx.save_figure(
            nearest_neighbor_figure(xs, train[: sizes[i]], k=min(3, sizes[i]), n_show=6,
                                    title=f"{m}, n={sizes[i]}, step {steps[-1]}"),
            f"nn_boundary_{m}",
            f"{m}: samples at the boundary (n = {sizes[i]}, the final-step EMM or the smallest set) beside their "
            "nearest training images.",
        )  # fmt: skip


TITLE = "Where memorization begins: onset during training and the (set size x steps) phase diagram per method"


@experiment(
    "memorization-phase",
    TITLE,
    (QUICK, PAPER),
    trains=True,
    cost=240,
    streams=("init:*", "batches:*", "audit-noise"),
    groups=("memorization",),
    threads=None,
)
def run(ctx):
    """Phase diagram of memorization over set size and training steps for conditioned / unconditioned / temperature
    networks: EMM boundary, onset tau_mem(n) and its linear law, with intervals."""
    c = ctx.config
    unknown = [m for m in c["methods"] if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    if int(c["audit_every"]) < 1 or int(c["steps"]) < int(c["audit_every"]):
        raise ConfigError("audit_every must be in [1, steps]")
    data = load_sets(c, ctx.seed)
    sizes = [int(n) for n in c["set_sizes"]]
    steps = list(range(int(c["audit_every"]), int(c["steps"]) + 1, int(c["audit_every"])))
    ctx.metric("dimension", int(data[0].numel()))
    ctx.metric("set_sizes", sizes)
    ctx.metric("audit_steps", steps)
    watches: dict[str, list] = {}
    t0 = time.perf_counter()
    for m in c["methods"]:
        watches[m] = [train_watched(ctx, m, data[:n]) for n in sizes]
    ctx.metric("train_seconds", time.perf_counter() - t0)
    summ = summarize(sizes, steps, watches, c)
    for m, s in summ.items():
        for k in ("fraction", "emm", "emm_ci", "tau_mem", "tau_fit", "tau_loglog"):
            ctx.metric(f"{m}.{k}", s[k])
        ctx.metric(f"{m}.diverged", [[p["diverged"] for p in w.curve] for w in watches[m]])
        ctx.finding(
            f"boundary-{m}",
            f"{m}: final-step EMM (largest n with memorized fraction >= {c['emm_level']:g}) = {s['emm'][-1]}, "
            f"interval {s['emm_ci'][-1]}; tau_mem {dict(zip(sizes, s['tau_mem']))}; slope "
            f"{s['tau_fit']['slope']:.3g} steps/image {s['tau_fit']['ci']}",
            {"emm": s["emm"][-1], "emm_ci": s["emm_ci"][-1], "tau_mem": s["tau_mem"]},
        )
    _claims(ctx, summ, sizes)
    _figures(ctx, summ, sizes, steps, watches, data, c)
