"""The :class:`Dataset` container and the name -> loader registry behind :func:`load_dataset`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from .._checks import check_finite
from ..errors import DataError, EmptyDataError
from ..registry import Registry

datasets: Registry = Registry("dataset")


@dataclass
class Dataset:
    """Data tensor ``x`` of shape (N, *dims) (images: (N, C, H, W) in [-1, 1]), optional integer ``labels``."""

    x: torch.Tensor
    labels: Optional[torch.Tensor] = None
    name: str = ""
    info: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.x.dim() < 2 or self.x.shape[0] == 0:
            raise EmptyDataError(f"dataset {self.name!r} is empty or has no sample dimension: {tuple(self.x.shape)}")
        check_finite(self.x, f"dataset {self.name!r}")
        if self.labels is not None and self.labels.shape[0] != self.x.shape[0]:
            raise DataError(f"dataset {self.name!r}: {self.labels.shape[0]} labels for {self.x.shape[0]} samples")

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def subset(self, idx) -> "Dataset":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Dataset(self.x[idx], None if self.labels is None else self.labels[idx], self.name, dict(self.info))

    def split(self, test_fraction: float = 0.2, *, seed: int = 0) -> Tuple["Dataset", "Dataset"]:
        """Seeded disjoint train/test split (stratified by label when labels exist)."""
        if not 0 < test_fraction < 1:
            raise DataError(f"test_fraction must be in (0, 1); got {test_fraction}")
        g = torch.Generator().manual_seed(seed)
        if self.labels is None:
            perm = torch.randperm(len(self), generator=g)
            n_test = max(1, int(round(test_fraction * len(self))))
            return self.subset(perm[n_test:]), self.subset(perm[:n_test])
        tr, te = [], []
        for c in torch.unique(self.labels).tolist():
            idx = torch.nonzero(self.labels == c).flatten()
            idx = idx[torch.randperm(idx.numel(), generator=g)]
            n_test = int(round(test_fraction * idx.numel()))
            te.append(idx[:n_test])
            tr.append(idx[n_test:])
        tr, te = torch.cat(tr), torch.cat(te)   # shuffled so that any prefix mixes the classes
        return (self.subset(tr[torch.randperm(tr.numel(), generator=g)]),
                self.subset(te[torch.randperm(te.numel(), generator=g)]))


def load_array_file(path: str | Path, key: Optional[str] = None) -> Dataset:
    """An ``.npy`` array or an ``.npz`` archive (array ``key``, else ``x``/``samples``/the first array; labels from
    ``labels``/``y`` when present). Loaded with ``allow_pickle=False``: files never execute code."""
    import numpy as np

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
    except (ValueError, OSError, EOFError) as e:
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
        from .folder import load_image_folder

        return load_image_folder(spec[len("folder:"):], **kw)
    if spec.endswith((".npz", ".npy")):
        return load_array_file(spec, **kw)
    if "/" in spec or Path(spec).suffix:
        if Path(spec).is_dir():
            from .folder import load_image_folder

            return load_image_folder(spec, **kw)
        raise DataError(f"data path not found or unsupported: {spec} (use folder:PATH, .npz or .npy)")
    return datasets.get(spec)(**kw)
