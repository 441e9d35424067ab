"""Training and test sets of the Paper B (Zhou et al. 2026) experiments: digits upsampled to ``image_size``
(d >= 256) split into train / held-out test, and the small imbalanced set of its Cat-Caracal study (Sec. 5)."""

from __future__ import annotations

from pathlib import Path

import torch

from ...data import Dataset, load_dataset, load_digits
from ...errors import ConfigError, DataError

#: defaults shared by the experiments (digits upsampled to 16x16: d = 256)
BASE = {"image_size": 16, "n_train": 200, "n_test": 64, "sigma_min": 0.01, "sigma_max": 50.0, "sigma_init": 20.0}


def digits_split(c, seed: int = 0):
    """``(train, test)``: ``n_train + n_test`` digits at ``image_size`` (seeded)."""
    data = load_digits(n=c["n_train"] + c["n_test"], size=c["image_size"], seed=seed)
    return data.x[: c["n_train"]], data.x[c["n_train"] :]


def load_split(ctx):
    """:func:`digits_split` with the run's config and seed; records the dimension."""
    train, test = digits_split(ctx.config, ctx.seed)
    ctx.metric("dimension", int(train[0].numel()))
    return train, test


def load_small_data(c, seed: int = 0) -> tuple[Dataset, Dataset]:
    """``(train, test)`` Datasets. Digits: ``n_majority`` of digit ``majority`` + ``n_rare`` of digit ``rare`` for
    training; held out for testing: ``n_test`` digits in the training set's class proportions when set (so that FD
    vs test compares like with like), else ``n_test_per_class`` of each. ``folder:PATH`` (or a paper
    dataset): ``PATH/train`` and ``PATH/test`` when both exist, else a seeded stratified split (``test_fraction``)."""
    spec = c.get("data") or (f"folder:data/{c['paper_dataset']}" if c.get("paper_dataset") else "digits")
    size = int(c["image_size"])
    if spec in ("digits", "digits16", "digits32"):
        a, b = int(c["majority"]), int(c["rare"])
        if a == b:
            raise ConfigError("majority and rare digit must differ")
        full = load_digits(size=size, classes=[a, b], seed=seed)
        tr, te = [], []
        n_tr = int(c["n_majority"]) + int(c["n_rare"])
        for cls, n in ((a, int(c["n_majority"])), (b, int(c["n_rare"]))):
            idx = torch.nonzero(full.labels == cls).flatten()
            if n + 2 > idx.numel():
                raise ConfigError(f"digit {cls} has {idx.numel()} images; {n} for training leaves too few to test")
            n_te = max(2, round(int(c["n_test"]) * n / n_tr)) if c.get("n_test") else int(c["n_test_per_class"])
            tr.append(idx[:n])
            te.append(idx[n : n + n_te])
        return full.subset(torch.cat(tr)), full.subset(torch.cat(te))
    if not spec.startswith("folder:"):
        raise ConfigError(f"zhou-small-data needs data 'digits' or 'folder:PATH'; got {spec!r}")
    root = Path(spec[len("folder:") :])
    if not root.is_dir():
        raise DataError(f"image folder not found: {root} (download the dataset there, or set data=folder:PATH)")
    if (root / "train").is_dir() and (root / "test").is_dir():
        train = load_dataset(f"folder:{root / 'train'}", size=size)
        test = load_dataset(f"folder:{root / 'test'}", size=size)
    else:
        train, test = load_dataset(spec, size=size).split(float(c.get("test_fraction") or 0.2), seed=seed)
    if c.get("max_train"):
        train = train.subset(
            torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[: int(c["max_train"])]
        )
    return train, test
