"""Any folder of images (png, jpg, bmp, gif, tiff, webp) as an (N, C, H, W) tensor in [-1, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, ShapeError
from .dataset import Dataset

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_image_folder(
    path: str | Path,
    *,
    size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    limit: int | None = None,
    recursive: bool = True,
) -> Dataset:
    """Read every image under ``path`` (sorted by name; sub-folder names become labels when there are several).

    ``size`` resizes to size x size, or to (height, width) (bicubic); without it all images must share one size.
    ``channels`` 1 (grayscale) or 3 (RGB); by default RGB unless every image is grayscale. Unreadable files raise
    :class:`DataError` naming them. ``info`` records the files' own sizes (``source_sizes``, (H, W)) and modes
    (``source_modes``), so a caller can say what was converted.
    """
    # lazy: Pillow loads only when images are read or written
    from PIL import Image, UnidentifiedImageError

    root = Path(path)
    if not root.exists():
        raise DataError(f"image folder not found: {root}")
    if not root.is_dir():
        raise DataError(f"not a folder: {root}")
    files = sorted(
        p
        for p in (root.rglob("*") if recursive else root.iterdir())
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if limit is not None:
        files = files[:limit]
    if not files:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {root}")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3; got {channels}")
    imgs, modes = [], set()
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                modes.add("L" if im.mode in ("L", "1", "I;16", "I") else "RGB")
                imgs.append(im.copy())
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise DataError(f"unreadable image {f}: {e}") from None
    ch = channels or (1 if modes == {"L"} else 3)
    source_sizes = sorted({(im.height, im.width) for im in imgs})
    if size is not None:
        hw = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(v) for v in size)
        if len(hw) != 2 or min(hw) < 1:
            raise DataError(f"size must be a positive int or (height, width); got {size!r}")
    arrs = []
    for _f, im in zip(files, imgs):
        im = im.convert("L" if ch == 1 else "RGB")
        if size is not None and (im.height, im.width) != hw:
            im = im.resize((hw[1], hw[0]), Image.BICUBIC)
        arrs.append(np.asarray(im, dtype=np.float32))
    shapes = {a.shape for a in arrs}
    if len(shapes) > 1:
        raise DataError(
            f"images in {root} have mixed sizes {sorted(shapes)}; resize them (size=..., train --size, audit --resize)"
        )
    x = torch.as_tensor(np.stack(arrs))
    x = x[:, None] if ch == 1 else x.permute(0, 3, 1, 2)
    x = (x / 255.0 * 2 - 1).contiguous()
    parents = [f.parent.relative_to(root).as_posix() for f in files]
    names = sorted(set(parents))
    labels = torch.as_tensor([names.index(p) for p in parents]) if len(names) > 1 else None
    return Dataset(
        x,
        labels,
        name=root.name,
        info={
            "path": str(root),
            "files": len(files),
            "classes": names,
            "source_sizes": source_sizes,
            "source_modes": sorted(modes),
        },
    )


def resize_images(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] converted to ``shape`` = (C', H', W'): bicubic (antialiased) resizing, RGB ->
    grey by ITU-R 601 luma (PIL's ``convert("L")``), grey -> RGB by replication. Raises :class:`ShapeError` for
    anything that is not a 1- or 3-channel image batch."""
    shape = tuple(int(v) for v in shape)
    if x.dim() != 4 or len(shape) != 3 or x.shape[1] not in (1, 3) or shape[0] not in (1, 3):
        raise ShapeError(f"only images (N, 1 or 3, H, W) can be resized; got {tuple(x.shape[1:])} -> {shape}")
    x = x.float()
    if x.shape[1] == 3 and shape[0] == 1:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)).sum(1, keepdim=True)
    elif x.shape[1] == 1 and shape[0] == 3:
        x = x.expand(-1, 3, -1, -1)
    if tuple(x.shape[2:]) != shape[1:]:
        x = torch.nn.functional.interpolate(x, size=shape[1:], mode="bicubic", antialias=True, align_corners=False)
    return x.clamp(-1, 1).contiguous()
