"""Presets of the Paper B practitioner experiments (``zhou-small-data``, ``zhou-cost``) and the paper's reference
numbers (Zhou, Zhang, Wright 2026, Tables 1 and 2) shown beside the measured ones.

Quick preset: the Cat-Caracal study (1,000 cats + 200 caracals, 64x64 — not shippable) replaced by shipped data:
scikit-learn digits upsampled to 16x16 (d = 256), a majority digit (150 images) plus a rare digit (30 images),
held-out test digits of the same two classes. Paper preset: CIFAR-10 / CelebA 64 from a local image folder
(``data: folder:PATH``; GPU recommended), the paper's training settings (AdamW lr 2e-4, EMA 0.9999, batch 128,
sigma in [0.01, 50] (32x32) / [0.01, 90] (64x64), PC sampler with snr 0.16 / 0.17, N = 1000).
"""

from __future__ import annotations

from typing import Any

#: Table 1 of the paper: FID vs train / vs test. Temperature rows: (pixel-KNN, feature-KNN).
TABLE1: dict[str, dict[str, Any]] = {
    "cifar10": {
        "conditioned": (6.49, 6.56),
        "unconditioned": (7.33, 7.34),
        "temperature c=1, K=30": {"pixel": (8.32, 8.25), "feature": (8.08, 8.02)},
        "temperature c=5, K=100": {"pixel": (13.25, 13.41), "feature": (8.35, 8.30)},
        "temperature c=7, K=100": {"pixel": (50.81, 51.08), "feature": (7.96, 7.98)},
    },
    "celeba64": {
        "conditioned": (7.25, 7.81),
        "unconditioned": (7.07, 7.34),
        "temperature c=10, K=100": {"pixel": (61.97, 60.91), "feature": (8.40, 8.19)},
    },
}

#: Table 2 of the paper: seconds per batch on two GPUs, CIFAR-10, T = 5/sigma, K = 30.
TABLE2_SECONDS = {"conditioned": 0.3551, "unconditioned": 0.3371, "knn_pixel": 0.3466, "knn_feature": 0.3540}

#: the per-dataset paper settings selected by ``paper_dataset``
PAPER_DATASETS: dict[str, dict[str, Any]] = {
    "cifar10": {"image_size": 32, "sigma_max": 50.0, "snr": 0.16, "k": 100, "sigma_collapse": 7.0},
    "celeba64": {"image_size": 64, "sigma_max": 90.0, "snr": 0.17, "k": 100, "sigma_collapse": 10.0},
}

#: Quick preset (chosen, not the paper's): 6 threes + 2 eights (the imbalanced pair), upsampled to 16x16 (d = 256),
#: over 3 training seeds. The set is tiny on purpose: a conditioned UNet must be able to memorize it within the CPU
#: budget, otherwise "memorizes less" cannot be decided; UNet base 8, 1,200 steps of batch 32 (4,800 views of each
#: image). K = 3 keeps the temperature target neighbour-restricted (the paper: K = 10 of 1,200 images). The test set
#: (60) has the training set's 3:1 class proportions. The sampler comparison of the trained unconditioned network runs
#: PC with 500 levels at the paper's snr 0.16 on 16 samples; 64 samples per model. How it was sized:
#: docs/experiment-notes.md.
SMALL_DATA_QUICK: dict[str, Any] = {
    "data": "digits",
    "image_size": 16,
    "majority": 3,
    "rare": 8,
    "n_majority": 6,
    "n_rare": 2,
    "n_test_per_class": 25,
    "n_test": 60,
    "test_fraction": 0.2,
    "max_train": None,
    "model": "unet",
    "precision": "float32",  # "float64": ~3x the CPU time; see RunContext.precision for what it buys
    "width": 384,
    "depth": 2,
    "base": 8,
    "cond_param": "edm",
    "steps": 1200,
    "batch_size": 32,
    "lr": 2e-3,
    "ema_decay": 0.99,
    "sigma_min": 0.01,
    "sigma_max": 20.0,
    "n_levels": 1000,
    "k": 3,
    "sigma_collapse": 3.0,
    "knn_variant": "sigma_star",
    "cond_sampler": "heun",
    "cond_steps": 40,
    "uncond_sampler": "sigma_star",
    "sigma_star_alpha": 0.3,
    "sigma_star_steps": 60,
    "pc_steps": 500,
    "snr": 0.16,
    "sigma_init": 20.0,
    "compare_snrs": [0.16],
    "compare_n": 16,
    "expansiveness_sigmas": [0.1, 0.3],
    "expansiveness_queries": 5,
    "n_samples": 64,
    "classifier_steps": 300,
    "paper_dataset": None,
    "seeds": 3,
}

_PAPER_COMMON: dict[str, Any] = dict(
    SMALL_DATA_QUICK,
    data=None,
    majority=None,
    rare=None,
    model="unet",
    base=64,
    steps=100_000,
    batch_size=128,
    lr=2e-4,
    ema_decay=0.9999,
    n_levels=1000,
    cond_sampler="pc",
    uncond_sampler="pc",  # with build_model's default "sigma_scaled": F(x) / sigma_sched, as the authors' code
    knn_variant="scheduled",  # the authors' temperature target (Code/losses.py); "sigma_star" stays an option
    # beside the paper's four: Eq. 10's sigma* target and the sigma-free unconditioned net (zhou.methods.VARIANTS)
    methods=["conditioned", "unconditioned", "temperature_pixel", "temperature_feature"]
    + ["temperature_pixel_sigma_star", "unconditioned_sigma_free"],
    pc_steps=1000,
    n_samples=10_000,
    classifier_steps=3000,
    test_fraction=None,
    max_train=None,
    n_test=None,
    compare_n=512,
    compare_snrs=[0.16, 0.05],
    expansiveness_queries=7,
    k=5,
    n_majority=12,
    n_rare=3,
)


def paper_preset(dataset: str) -> dict[str, Any]:
    """The ``zhou-small-data`` paper preset for ``cifar10`` or ``celeba64`` (data from ``folder:data/<name>``
    unless ``data`` is set; train split = ``<folder>/train``, test = ``<folder>/test`` when they exist)."""
    p = dict(_PAPER_COMMON, paper_dataset=dataset, **PAPER_DATASETS[dataset])
    p["sigma_init"] = p["sigma_max"]
    return p


COST_QUICK: dict[str, Any] = {
    "data": "digits",
    "image_size": 16,
    "n_train": 300,
    "model": "unet",
    "base": 16,
    "width": 256,
    "depth": 2,
    "batch_size": 64,
    "k": 30,
    "sigma_collapse": 5.0,
    "steps": 8,
    "warmup": 2,
    "repeats": 3,
    "sigma_min": 0.01,
    "sigma_max": 20.0,
}
COST_PAPER: dict[str, Any] = dict(
    COST_QUICK,
    data="folder:data/cifar10",
    image_size=32,
    n_train=None,
    base=64,
    batch_size=128,
    steps=20,
    warmup=3,
    repeats=3,
    sigma_max=50.0,
)
