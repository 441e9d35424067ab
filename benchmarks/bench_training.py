"""Per-step training cost of Paper B's four methods (its Table 2 as ratios): conditioned DSM (Eq. 8), unconditioned
(Eq. 9), temperature smoothing with precomputed pixel-space and feature-space neighbours (Eq. 11). Baseline:
unconditioned training timed in the same run, variants interleaved round-robin. The neighbour lists are built once
before timing (as in training). Issue 3's target: temperature smoothing within 1.15x of plain training."""

from __future__ import annotations

import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import print_table  # noqa: E402

from smoothscore.data import load_digits  # noqa: E402
from smoothscore.nets import build_model  # noqa: E402
from smoothscore.training import (
    ConditionedDSM,
    KNNCache,
    TemperatureKNNLoss,
    TrainConfig,
    Trainer,  # noqa: E402
    UnconditionedDSM,
)


def time_steps(trainers: dict, steps: int = 5, warmup: int = 2, rounds: int = 6) -> dict:
    """Seconds per step of each trainer: variants are timed round-robin (interleaved, so load from other processes
    hits all of them alike) and the minimum over rounds is kept."""
    for t in trainers.values():
        for _ in range(warmup):
            t.train_step()
    best = {name: float("inf") for name in trainers}
    for _ in range(rounds):
        for name, t in trainers.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                t.train_step()
            best[name] = min(best[name], (time.perf_counter() - t0) / steps)
    return best


def main() -> None:
    torch.manual_seed(0)
    data = load_digits(n=300, size=16).x
    shape = tuple(data.shape[1:])
    enc = lambda x: torch.nn.functional.avg_pool2d(x, 2).flatten(1)  # noqa: E731  stand-in encoder (features only change the cache)
    knn_pix, knn_feat = KNNCache(data, k=30), KNNCache(data, k=30, space="feature", encoder=enc)
    variants = {
        "unconditioned (Eq. 9, baseline)": ("none", UnconditionedDSM(0.01, 20.0, 1000)),
        "conditioned (Eq. 8)": ("sigma", ConditionedDSM(0.01, 20.0, 1000)),
        "temperature, pixel KNN (K=30, c=5)": (
            "none",
            TemperatureKNNLoss(knn=knn_pix, sigma_collapse=5.0, sigma_min=0.01, sigma_max=20.0),
        ),
        "temperature, feature KNN (K=30, c=5)": (
            "none",
            TemperatureKNNLoss(knn=knn_feat, sigma_collapse=5.0, sigma_min=0.01, sigma_max=20.0),
        ),
    }
    trainers = {}
    for name, (cond, loss) in variants.items():
        torch.manual_seed(0)
        m = build_model("unet", shape, conditioning=cond, base=16)
        trainers[name] = Trainer(m, loss, data, TrainConfig(steps=10**9, batch_size=64), progress=False)
    rows = {name: {"seconds": sec} for name, sec in time_steps(trainers).items()}
    print_table(
        f"seconds per training step, UNet base 16 on 16x16 digits, batch 64, {torch.get_num_threads()} threads",
        rows,
        "unconditioned (Eq. 9, baseline)",
    )


if __name__ == "__main__":
    main()
