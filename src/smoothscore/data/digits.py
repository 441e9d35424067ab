"""scikit-learn's 8x8 handwritten digits (bundled with scikit-learn, no download), scaled to [-1, 1], as
(N, 1, H, W) images, optionally upsampled (bilinear) to 16x16 or 32x32 so that d >= 256 (Paper B's shell argument
needs high dimension). Seeded subsets by size, by class, or by per-class counts (imbalanced sets)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .dataset import Dataset, datasets


def load_digits(
    n: int | None = None,
    *,
    size: int = 8,
    classes: Sequence[int] | None = None,
    class_counts: dict[int, int] | None = None,
    seed: int = 0,
) -> Dataset:
    """Digits in [-1, 1], shape (N, 1, size, size), labels 0..9.

    ``classes`` restricts to those digits; ``class_counts`` (e.g. ``{0: 150, 7: 30}``) draws that many of each
    class (imbalanced sets); otherwise ``n`` images are drawn at random (all when None). Draws are seeded and
    returned in a seeded random order.
    """
    # lazy: scikit-learn loads only when the digits are read
    from sklearn.datasets import load_digits as _sk

    d = _sk()
    x = torch.as_tensor(d.images, dtype=torch.float32)[:, None] / 16.0 * 2 - 1
    y = torch.as_tensor(d.target, dtype=torch.long)
    if size != 8:
        if size < 8 or size > 128:
            raise ConfigError(f"digits size must be in [8, 128]; got {size}")
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(-1, 1)
    g = torch.Generator().manual_seed(seed)
    if class_counts is not None:
        parts = []
        for c, k in class_counts.items():
            idx = torch.nonzero(y == int(c)).flatten()
            if k > idx.numel():
                raise ConfigError(f"class {c} has only {idx.numel()} digits; asked for {k}")
            parts.append(idx[torch.randperm(idx.numel(), generator=g)[:k]])
        sel = torch.cat(parts)
        sel = sel[torch.randperm(sel.numel(), generator=g)]
    else:
        sel = torch.arange(len(y))
        if classes is not None:
            sel = torch.nonzero(torch.isin(y, torch.as_tensor(list(classes)))).flatten()
        sel = sel[torch.randperm(sel.numel(), generator=g)]
        if n is not None:
            if n > sel.numel():
                raise ConfigError(f"asked for {n} digits; only {sel.numel()} available")
            sel = sel[:n]
    return Dataset(
        x[sel],
        y[sel],
        name=f"digits{size}",
        info={"size": size, "seed": seed, "class_counts": class_counts, "classes": classes},
    )


for _size in (8, 16, 32):
    datasets.register(
        "digits" if _size == 8 else f"digits{_size}",
        (lambda s: lambda **kw: load_digits(size=kw.pop("size", s), **kw))(_size),
    )
