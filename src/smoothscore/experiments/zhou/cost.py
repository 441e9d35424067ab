"""Experiment ``zhou-cost``: seconds and memory per training step of Paper B's four methods (its Table 2, as ratios).

Conditioning (Eq. 8), unconditioning (Eq. 9), and temperature smoothing (Eq. 11) with precomputed pixel-space and
feature-space neighbour lists (the lists are built once before timing, as in training, so a step does no search over
the whole set). All four are timed in the same run on the same data, architecture and batch; the time per step is the
minimum over ``repeats`` rounds of ``steps`` steps, the four methods interleaved in each round, in CPU seconds of
this process on CPU (robust to other load on a shared machine; :func:`step_seconds`).

Memory per step: on CUDA ``torch.cuda.max_memory_allocated`` during the timed steps. On CPU (adopted) the bytes the
torch allocator hands out during one step (``torch.profiler`` with ``profile_memory``; CPU tensors bypass
``tracemalloc``) plus the ``tracemalloc`` peak of Python objects in that step.
"""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import torch

from ...data import load_dataset
from ...metrics.call_memory import call_memory
from ...metrics.quality import train_feature_classifier
from ...training import TrainConfig, Trainer
from ...training.score_net import build_seeded
from ..base import experiment
from .methods import METHODS, build_loss, net_spec
from .presets import COST_PAPER, COST_QUICK, TABLE2_SECONDS

#: claim threshold (spec): temperature smoothing per step within this factor of unconditioned training
COST_BOUND = 1.15


def step_seconds(trainers: dict, steps: int, warmup: int, repeats: int) -> dict:
    """Seconds per ``train_step()`` of each trainer: the minimum over ``repeats`` rounds of the mean time of
    ``steps`` consecutive steps, the trainers **interleaved** within each round (so a change of machine load between
    methods affects them alike). On CPU the time is this process's CPU time (``time.process_time``, all its threads):
    other processes' load does not inflate it (docs/experiment-notes.md); on CUDA it is wall time between
    synchronisations."""
    cuda = any(t.device.type == "cuda" for t in trainers.values())
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    clock = time.perf_counter if cuda else time.process_time
    for t in trainers.values():
        for _ in range(warmup):
            t.train_step()
    best = dict.fromkeys(trainers, float("inf"))
    for _ in range(repeats):
        for name, t in trainers.items():
            sync()
            t0 = clock()
            for _ in range(steps):
                t.train_step()
            sync()
            best[name] = min(best[name], (clock() - t0) / steps)
    return best


def step_memory(trainer) -> dict[str, float]:
    """Memory of one training step (see module docstring): ``peak_bytes`` and how it was measured."""
    return call_memory(trainer.train_step, trainer.device)


def _figure(rows, base):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    names = list(rows)
    for ax, key, label in ((axes[0], "seconds", "time per step"), (axes[1], "peak_bytes", "memory per step")):
        vals = [rows[n][key] / rows[base][key] for n in names]
        ax.bar(range(len(names)), vals, color=[f"C{i}" for i in range(len(names))])
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([n.replace("temperature_", "temp.\n") for n in names], fontsize=8)
        ax.set_ylabel(f"ratio to {base}")
        ax.set_title(label)
    if set(TABLE2_SECONDS) == {"conditioned", "unconditioned", "knn_pixel", "knn_feature"}:
        paper = [
            TABLE2_SECONDS[k] / TABLE2_SECONDS["conditioned"]
            for k in ("conditioned", "unconditioned", "knn_pixel", "knn_feature")
        ]
        axes[0].plot(range(4), paper, "k*", ms=9, label="paper Table 2 (CIFAR-10, 2 GPUs)")
        axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Training cost per step of the four methods, relative to conditioned training", fontsize=10)
    fig.tight_layout()
    return fig


TITLE = "Training cost per step: conditioning, unconditioning, temperature KNN (Table 2)"


@experiment("zhou-cost", TITLE, (COST_QUICK, COST_PAPER), cost=17, streams=("init:*", "batches:*"))
def run(ctx):
    """Seconds and memory per training step for the four methods, as ratios to conditioned training."""
    c = ctx.config
    kw = {"size": int(c["image_size"])}
    if c["data"] in ("digits", "digits16", "digits32"):
        kw.update(n=int(c["n_train"]), seed=ctx.seed)
    data = load_dataset(c["data"], **kw)
    if c.get("n_train") and len(data) > int(c["n_train"]):
        data = data.subset(torch.arange(int(c["n_train"])))
    x = data.x
    ctx.metric("n_train", int(x.shape[0]))
    ctx.metric("dimension", int(x[0].numel()))
    cfg = dict(c, n_levels=1000, knn_variant="sigma_star")
    enc = train_feature_classifier(data, steps=100, seed=ctx.seed, cache_dir=ctx.path("cache")).features
    t0 = time.perf_counter()
    losses = {m: build_loss(m, x, cfg, encoder=enc) for m in METHODS}
    ctx.metric("knn_precompute_seconds", time.perf_counter() - t0)
    trainers = {}
    for m in METHODS:
        trainers[m] = Trainer(
            build_seeded(net_spec(m, cfg), x.shape[1:], ctx.seed_for(f"init:{m}")),
            losses[m],
            x,
            TrainConfig(steps=10**9, batch_size=int(c["batch_size"]), seed=ctx.seed_for(f"batches:{m}")),
            device=ctx.device,
            progress=False,
        )
    secs = step_seconds(trainers, int(c["steps"]), int(c["warmup"]), int(c["repeats"]))
    rows = {m: {"seconds": secs[m], **step_memory(trainers[m])} for m in METHODS}
    base = "conditioned"
    for m, r in rows.items():
        ctx.metric(f"{m}.seconds_per_step", r["seconds"])
        ctx.metric(f"{m}.peak_bytes", r["peak_bytes"])
        ctx.metric(f"{m}.time_ratio", r["seconds"] / rows[base]["seconds"])
        ctx.metric(f"{m}.memory_ratio", r["peak_bytes"] / rows[base]["peak_bytes"])
    ctx.metric("memory_measure", rows[base]["how"])
    for k, v in TABLE2_SECONDS.items():
        ctx.metric(f"paper_table2.{k}_ratio", v / TABLE2_SECONDS["conditioned"])
    ctx.save_figure(
        _figure(rows, base),
        "cost",
        "Seconds and memory per training step relative to conditioned "
        "training (bars, this run); stars: the paper's Table 2 time ratios.",
    )
    un = rows["unconditioned"]["seconds"]
    for m in ("temperature_pixel", "temperature_feature"):
        ctx.claim(
            f"{m.replace('_', '-')}-cost",
            f"Temperature smoothing ({m.split('_')[1]} KNN, precomputed "
            f"neighbours) costs at most {COST_BOUND}x the time per step of unconditioned training",
            rows[m]["seconds"] / un,
            "<=",
            COST_BOUND,
            details=f"{rows[m]['seconds'] * 1e3:.2f} ms vs {un * 1e3:.2f} ms per step",
        )
    ctx.finding(
        "table2",
        "Paper Table 2 (s/batch, CIFAR-10, 2 GPUs): "
        + ", ".join(f"{k} {v}" for k, v in TABLE2_SECONDS.items())
        + "; measured ratios to conditioning: "
        + ", ".join(f"{m} {rows[m]['seconds'] / rows[base]['seconds']:.2f}" for m in rows),
    )
