"""Shared figures: samples beside their nearest training neighbours, image grids."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from .data.rows import Rows  # noqa: E402
from .io import atomic_write  # noqa: E402
from .search.neighbors import NeighborIndex  # noqa: E402


def _is_image(shape) -> bool:
    return len(shape) == 3 and shape[0] in (1, 3) or len(shape) == 2


def _to_img(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu().float()
    if t.dim() == 3 and t.shape[0] == 1:
        t = t[0]
    elif t.dim() == 3:
        t = t.permute(1, 2, 0)
    return ((t.clamp(-1, 1) + 1) / 2).numpy()


def nearest_neighbor_figure(samples, train, k: int = 3, n_show: int = 8, title: str | None = None, neighbors=None):
    """Each of ``n_show`` samples beside its top-``k`` training neighbours (images), with distances and the
    d1/d2 ratio; for points in R^D (D <= 3, first two coordinates) a scatter with lines to the neighbours.
    ``train`` may be memory-mapped (only the shown rows are read); ``neighbors``: ``(dist, idx)`` of the samples
    (at least 2 columns) when already searched."""
    samples = torch.as_tensor(samples).detach().cpu()
    rows = Rows(train, "train")
    n_show = max(1, min(n_show, samples.shape[0]))
    if neighbors is None:
        neighbors = NeighborIndex(rows, shard=False).search(samples[:n_show], k=min(max(k, 2), rows.n))
    dist, idx = neighbors[0][:n_show], neighbors[1][:n_show]
    if not _is_image(tuple(samples.shape[1:])):
        fig, ax = plt.subplots(figsize=(5, 5))
        t2 = torch.cat([blk[:, :2].float().clone() for _, blk in rows.chunks()]).numpy()  # chunks share a buffer
        s2 = samples.reshape(len(samples), -1)[:, :2].numpy()
        ax.scatter(t2[:, 0], t2[:, 1] if t2.shape[1] > 1 else 0 * t2[:, 0], c="k", marker="x", label="training")
        ax.scatter(
            s2[:n_show, 0], s2[:n_show, 1] if s2.shape[1] > 1 else 0 * s2[:n_show, 0], c="C1", s=12, label="samples"
        )
        for i in range(n_show):
            j = int(idx[i, 0])
            ax.plot(
                [s2[i, 0], t2[j, 0]],
                [s2[i, 1] if s2.shape[1] > 1 else 0, t2[j, 1] if t2.shape[1] > 1 else 0],
                "C0-",
                lw=0.6,
            )
        ax.legend()
        ax.set_title(title or "samples and their nearest training points")
        return fig
    kk = min(k, rows.n, idx.shape[1])
    shown = rows.take(idx[:, :kk])
    fig, axes = plt.subplots(n_show, kk + 1, figsize=(1.5 * (kk + 1), 1.6 * n_show), squeeze=False)
    for i in range(n_show):
        ratio = float(dist[i, 0] / max(float(dist[i, 1]), 1e-300))
        ax = axes[i, 0]
        ax.imshow(_to_img(samples[i]), cmap="gray", vmin=0, vmax=1)
        ax.set_title(
            f"sample {i}\nd1/d2={ratio:.2f}" + (" MEM" if ratio < 1 / 3 else ""),
            fontsize=7,
            color="C3" if ratio < 1 / 3 else "k",
        )
        for j in range(kk):
            a = axes[i, j + 1]
            a.imshow(_to_img(shown[i, j]), cmap="gray", vmin=0, vmax=1)
            a.set_title(f"NN{j + 1} #{int(idx[i, j])}\nd={float(dist[i, j]):.3g}", fontsize=7)
    for a in axes.flat:
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle(title or "samples (left) and their nearest training images", fontsize=9)
    fig.tight_layout()
    return fig


def _grid_array(x, nrow: int) -> np.ndarray:
    x = torch.as_tensor(x).detach().cpu().float()
    n = x.shape[0]
    imgs = [_to_img(x[i]) for i in range(n)]
    h, w = imgs[0].shape[:2]
    ncol = min(nrow, n)
    rows = (n + ncol - 1) // ncol
    ch = () if imgs[0].ndim == 2 else (imgs[0].shape[2],)
    grid = np.ones((rows * (h + 1) + 1, ncol * (w + 1) + 1) + ch, dtype=np.float32)
    for i, im in enumerate(imgs):
        r, c = divmod(i, ncol)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = im
    return grid


def image_grid_figure(x, nrow: int = 8, title: str = ""):
    """Images (N, C, H, W) in [-1, 1] as one grid figure."""
    grid = _grid_array(x, nrow)
    fig, ax = plt.subplots(figsize=(min(12, 0.9 * nrow + 1), min(12, 0.9 * grid.shape[0] / grid.shape[1] * nrow + 1)))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def save_image_grid(path: str | Path, x, nrow: int = 8, scale: int = 4) -> Path:
    """Write images as a PNG grid (PIL, nearest upscaling by ``scale``), atomically."""
    # lazy: Pillow loads only when images are read or written
    from PIL import Image

    grid = (_grid_array(x, nrow) * 255).round().astype(np.uint8)
    im = Image.fromarray(grid)
    im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    return atomic_write(path, lambda tmp: im.save(tmp, format="PNG"))
