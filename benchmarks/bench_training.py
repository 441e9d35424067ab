"""Per-step training cost of Paper B's four methods (its Table 2 as ratios): conditioned DSM (Eq. 8), unconditioned
(Eq. 9), temperature smoothing with precomputed pixel-space and feature-space neighbours (Eq. 11). Baseline:
unconditioned training timed in the same run. The neighbour lists are built once before timing (as in training)."""
from __future__ import annotations

import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import print_table  # noqa: E402

from smoothscore.data import load_digits  # noqa: E402
from smoothscore.nets import build_model  # noqa: E402
from smoothscore.training import (ConditionedDSM, KNNCache, TemperatureKNNLoss, TrainConfig, Trainer,  # noqa: E402
                                  UnconditionedDSM)


def step_time(model, loss, data, steps: int = 10, warmup: int = 2, repeats: int = 3) -> float:
    t = Trainer(model, loss, data, TrainConfig(steps=10 ** 9, batch_size=64), progress=False)
    for _ in range(warmup):
        t.train_step()
    best = float("inf")
    for _ in range(repeats):   # min over repeats: robust to other load on a shared machine
        t0 = time.perf_counter()
        for _ in range(steps):
            t.train_step()
        best = min(best, (time.perf_counter() - t0) / steps)
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
        "temperature, pixel KNN (K=30, c=5)": ("none", TemperatureKNNLoss(knn=knn_pix, sigma_collapse=5.0,
                                                                          sigma_min=0.01, sigma_max=20.0)),
        "temperature, feature KNN (K=30, c=5)": ("none", TemperatureKNNLoss(knn=knn_feat, sigma_collapse=5.0,
                                                                            sigma_min=0.01, sigma_max=20.0)),
    }
    rows = {}
    for name, (cond, loss) in variants.items():
        torch.manual_seed(0)
        m = build_model("unet", shape, conditioning=cond, base=16)
        rows[name] = {"seconds": step_time(m, loss, data)}
    print_table(f"seconds per training step, UNet base 16 on 16x16 digits, batch 64, {torch.get_num_threads()} threads",
                rows, "unconditioned (Eq. 9, baseline)")


if __name__ == "__main__":
    main()
