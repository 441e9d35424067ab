"""The :class:`Dataset` container and the name -> loader registry behind
:func:`~smoothscore.data.loading.load_dataset`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .._checks import check_finite
from ..errors import DataError, EmptyDataError
from ..registry import Registry

datasets: Registry = Registry("dataset")


@dataclass
class Dataset:
    """Data tensor ``x`` of shape (N, *dims) (images: (N, C, H, W) in [-1, 1]), optional integer ``labels``."""

    x: torch.Tensor
    labels: torch.Tensor | None = None
    name: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.x.dim() < 2 or self.x.shape[0] == 0:
            raise EmptyDataError(f"dataset {self.name!r} is empty or has no sample dimension: {tuple(self.x.shape)}")
        check_finite(self.x, f"dataset {self.name!r}")
        if self.labels is not None and self.labels.shape[0] != self.x.shape[0]:
            raise DataError(f"dataset {self.name!r}: {self.labels.shape[0]} labels for {self.x.shape[0]} samples")

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def subset(self, idx) -> Dataset:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Dataset(self.x[idx], None if self.labels is None else self.labels[idx], self.name, dict(self.info))

    def split(self, test_fraction: float = 0.2, *, seed: int = 0) -> tuple[Dataset, Dataset]:
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
        tr, te = torch.cat(tr), torch.cat(te)  # shuffled so that any prefix mixes the classes
        return (
            self.subset(tr[torch.randperm(tr.numel(), generator=g)]),
            self.subset(te[torch.randperm(te.numel(), generator=g)]),
        )
