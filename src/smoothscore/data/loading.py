"""Loading data by spec: a registered name, an image folder, an ``.npy``/``.npz`` file (read without pickle), the
training set of an audit and samples to compare with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .._checks import check_points
from ..errors import DataError, EmptyDataError, ShapeError
from .dataset import Dataset, datasets
from .folder import load_image_folder, resize_images
from .rows import Rows, open_npy


def load_array_file(path: str | Path, key: str | None = None) -> Dataset:
    """An ``.npy`` array or an ``.npz`` archive (array ``key``, else ``x``/``samples``/the first array; labels from
    ``labels``/``y`` when present). Loaded with ``allow_pickle=False``: files never execute code."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"file not found: {p}")
    try:
        if p.suffix == ".npy":
            arr, labels = np.load(p, allow_pickle=False), None
        else:
            with np.load(p, allow_pickle=False) as z:
                names = list(z.files)
                if not names:
                    raise DataError(f"{p} holds no arrays")
                k = key or next((n for n in ("x", "samples", "images", "data") if n in names), names[0])
                if k not in names:
                    raise DataError(f"{p} has no array {k!r}; arrays: {', '.join(names)}")
                arr = z[k]
                lk = next((n for n in ("labels", "y") if n in names and n != k), None)
                labels = z[lk] if lk else None
    except OSError as e:
        raise DataError(f"cannot read {p}: {e.strerror or e}") from None
    except (ValueError, EOFError) as e:
        raise DataError(f"cannot read {p}: {e}") from None
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{p}: array is not numeric ({arr.dtype})")
    x = torch.as_tensor(np.asarray(arr, dtype=np.float32))
    if x.dim() == 1:
        x = x[:, None]
    lab = torch.as_tensor(np.asarray(labels)).long() if labels is not None else None
    return Dataset(x, lab, name=p.name, info={"path": str(p)})


def load_dataset(spec: str, **kw) -> Dataset:
    """Load data by spec: a registered name (``digits``, ``digits16``, ``digits32``, ``line``, ``circle``,
    ``sphere``, ...), ``folder:PATH`` (image folder), or a path to an ``.npz``/``.npy`` file."""
    if not isinstance(spec, str) or not spec:
        raise DataError(f"invalid data spec {spec!r}")
    if spec.startswith("folder:"):
        return load_image_folder(spec[len("folder:") :], **kw)
    if spec.endswith((".npz", ".npy")):
        return load_array_file(spec, **kw)
    if "/" in spec or Path(spec).suffix:
        if Path(spec).is_dir():
            return load_image_folder(spec, **kw)
        if Path(spec).exists():
            raise DataError(
                f"unsupported data file {spec}: use .npz/.npy (read without pickle) or folder:PATH; "
                "pickled files (.pkl, .pt, .pth) are never loaded"
            )
        raise DataError(f"data path not found: {spec} (use folder:PATH, .npz or .npy)")
    return datasets.get(spec)(**kw)


def describe_shape(shape) -> str:
    """``(1, 16, 16)`` -> ``"1x16x16 (grey)"``; ``(3, 32, 32)`` -> ``"3x32x32 (RGB)"``; points -> ``"(2,)"``."""
    shape = tuple(int(v) for v in shape)
    if len(shape) == 3 and shape[0] in (1, 3):
        return "x".join(map(str, shape)) + (" (grey)" if shape[0] == 1 else " (RGB)")
    return str(shape)


def load_samples(path: str | Path, like_shape, *, resize: bool = False) -> tuple[torch.Tensor, str | None]:
    """Samples to audit against a training set of per-sample shape ``like_shape``: an ``.npz``/``.npy`` file or a
    folder of images, read as they are (never resized or converted silently).

    A shape other than ``like_shape`` raises :class:`ShapeError` unless ``resize=True``; then images are converted
    (:func:`~smoothscore.data.folder.resize_images`, or bicubic reading of the folder) and the second return value
    says what was done (``None`` when nothing was). Returns ``(samples, note)``."""
    like = tuple(int(v) for v in like_shape)
    p = Path(path)
    if not p.exists():
        raise DataError(f"samples path not found: {p}")
    if p.is_dir():
        if resize and len(like) == 3 and like[0] in (1, 3):
            ds = load_image_folder(p, size=like[1:], channels=like[0])
            sizes, modes = ds.info["source_sizes"], ds.info["source_modes"]
            want_mode = "L" if like[0] == 1 else "RGB"
            if sizes == [like[1:]] and modes == [want_mode]:
                return ds.x, None
            src = ", ".join(f"{h}x{w}" for h, w in sizes[:4]) + (", ..." if len(sizes) > 4 else "")
            kinds = "/".join("grey" if m == "L" else "RGB" for m in modes)
            return ds.x, (
                f"resized {len(ds)} sample images from {src} ({kinds}) to {describe_shape(like)}"
                + (" (RGB converted to grey)" if like[0] == 1 and "RGB" in modes else "")
            )
        x = load_image_folder(p).x
    else:
        x = load_array_file(p).x
    if tuple(x.shape[1:]) == like:
        return x, None
    images = x.dim() == 4 and x.shape[1] in (1, 3) and len(like) == 3 and like[0] in (1, 3)
    if not resize or not images:
        raise ShapeError(
            f"samples have shape {describe_shape(x.shape[1:])} but the training set "
            f"{describe_shape(like)}" + ("; pass --resize (resize=True) to convert the samples" if images else "")
        )
    y = resize_images(x, like)
    return y, (
        f"resized {x.shape[0]} samples from {describe_shape(x.shape[1:])} to {describe_shape(like)}"
        + (" (RGB converted to grey)" if x.shape[1] == 3 and like[0] == 1 else "")
    )


def load_train(spec: str):
    """The training set of ``audit``: an ``.npy`` file is opened memory-mapped (streamed, never loaded whole);
    anything else through :func:`smoothscore.data.load_dataset` (validated: finite, at least two points)."""
    if spec.endswith(".npy"):
        rows = Rows(open_npy(spec), f"training set {spec}")
        if rows.n < 2:
            raise EmptyDataError(f"training set {spec} has {rows.n} point(s); at least 2 are needed")
        return rows.data
    return check_points(load_dataset(spec).x, f"training set {spec}", min_points=2)
