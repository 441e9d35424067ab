"""Neighbour lists of every training sample, computed once per data set (FAISS) and cached, so that a temperature-
smoothing training step does no search over the whole set (Paper B, Sec. 4.2 and Table 2).

``space="pixel"``: L2 in pixel space. ``space="feature"``: cosine distance between encoder features (the paper uses
512-d ImageNet ResNet-18 features). ``encoder`` is any callable ``images -> (N, F)``; when omitted,
:func:`default_encoder` picks an ImageNet ResNet-18 if torchvision *and* its weights are present locally (nothing is
downloaded), otherwise the project's own small classifier (or denoising autoencoder without labels) trained on the
same data, :func:`smoothscore.metrics.quality.train_feature_classifier` (adopted offline default).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..data.rows import CHUNK_BYTES, Rows
from ..distributed import is_main_process
from ..errors import ConfigError
from ..io import atomic_save_npy
from ..metrics.quality import train_feature_classifier
from ..search.neighbors import NeighborIndex

RESNET18_FILE = "resnet18-f37072fd.pth"  # torchvision's ImageNet weights file name


def _resnet18_encoder() -> Callable | None:
    """ImageNet ResNet-18 penultimate (512-d) features, or None when torchvision or its local weights are missing."""
    try:
        # lazy: optional: torchvision may be missing
        import torchvision
    except ImportError:
        return None
    path = Path(torch.hub.get_dir()) / "checkpoints" / RESNET18_FILE
    if not path.exists():
        return None
    net = torchvision.models.resnet18()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    net.fc = torch.nn.Identity()
    net.eval()
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]

    def encode(x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
        x = torch.nn.functional.interpolate(x, size=max(64, x.shape[-1]), mode="bilinear", align_corners=False)
        x = ((x.clamp(-1, 1) + 1) / 2 - mean) / std  # project images live in [-1, 1]
        with torch.no_grad():
            return torch.cat([net(x[i : i + 256]) for i in range(0, x.shape[0], 256)])

    return encode


def default_encoder(
    data, *, seed: int = 0, cache_dir: str | Path | None = None, prefer_resnet: bool = True
) -> Callable:
    """The feature encoder used when none is given: ImageNet ResNet-18 when available offline, else the project's
    small classifier trained on ``data`` (Dataset with labels, or an image tensor: denoising autoencoder)."""
    enc = _resnet18_encoder() if prefer_resnet else None
    if enc is not None:
        return enc

    return train_feature_classifier(data, seed=seed, cache_dir=cache_dir).features


class KNNCache:
    """``index[i]``: the K nearest training samples of training sample i (itself first). ``train`` is a tensor
    (N, *dims), a Dataset (its labels then train the default feature encoder), or -- pixel space, or feature space
    with an ``encoder`` -- a memory-mapped ``.npy`` (or its path), streamed in chunks of ``chunk_bytes`` and never
    loaded whole (:class:`~smoothscore.search.neighbors.NeighborIndex`; float64 refinement of the candidates).

    Under ``torchrun`` each rank searches its slice of the set and the lists are merged exactly (``shard``, default:
    when a process group with more than one rank runs); every rank then holds the whole index. ``device``: where the
    search runs (``cpu``: FAISS).
    """

    def __init__(
        self,
        train,
        k: int = 10,
        *,
        space: str = "pixel",
        encoder: Callable | None = None,
        cache_dir: str | Path | None = None,
        shard: bool | None = None,
        device="cpu",
        chunk_bytes: int = CHUNK_BYTES,
    ):
        dataset = train
        rows = Rows(train, "train")
        if not 1 <= k <= rows.n:
            raise ConfigError(f"k must be in [1, {rows.n}]; got {k}")
        if space not in ("pixel", "feature"):
            raise ConfigError(f"unknown KNN space {space!r}; known: pixel, feature")
        self.rows, self.train, self.k, self.space = rows, rows.data, int(k), space
        enc_name = "" if space == "pixel" else getattr(encoder, "__qualname__", type(encoder).__name__)
        digest = hashlib.sha1()
        for _, blk in rows.chunks(chunk_bytes=chunk_bytes):
            digest.update(np.ascontiguousarray(blk.float().cpu().numpy()))  # the same bytes, without a copy
        digest.update(f"{k}{space}{enc_name}".encode())
        key = digest.hexdigest()[:16]
        path = Path(cache_dir) / f"knn-{key}.npy" if cache_dir else None
        if path is not None and path.exists():
            self.index = torch.as_tensor(np.load(path, allow_pickle=False)).long()
            return
        if space == "pixel":
            feats = rows
        else:
            if encoder is None:
                if len(rows.shape) != 3:
                    raise ConfigError("space='feature' without an encoder needs images (N, C, H, W)")
                if not isinstance(rows.data, torch.Tensor):
                    raise ConfigError("space='feature' on a memory-mapped set needs an encoder")
                encoder = default_encoder(dataset, cache_dir=cache_dir)
            parts = []
            with torch.no_grad():
                for _, blk in rows.chunks(chunk_bytes=chunk_bytes):
                    f = torch.as_tensor(encoder(blk.reshape(-1, *rows.shape).float())).float().cpu()
                    parts.append(f / f.norm(dim=1, keepdim=True).clamp_min(1e-12))
            feats = torch.cat(parts)  # unit vectors: L2 ranking == cosine ranking
        # one search: keep=False streams the set's chunks past each block of queries instead of holding a centred
        # copy of the whole set (memory: docs/benchmarks.md, "Peak memory")
        index = NeighborIndex(feats, shard=shard, device=device, chunk_bytes=chunk_bytes, keep=False)
        # one block of queries at a time (a quarter chunk), keeping only its K indices, not the candidates'
        # float32/float64 distances of all N queries
        qrows = feats if isinstance(feats, Rows) else Rows(feats, "features")
        blocks = qrows.chunks(chunk_bytes=max(1, chunk_bytes // 4))
        idx = torch.cat([index.search(blk.reshape(-1, *qrows.shape), self.k)[1] for _, blk in blocks])
        # make sure each sample is in its own list (exact duplicates may push it out)
        own = torch.arange(rows.n)
        has_self = (idx == own[:, None]).any(1)
        idx[~has_self, -1] = own[~has_self]
        self.index = idx
        if path is not None and is_main_process():
            atomic_save_npy(path, self.index.numpy())

    def neighbors_of(self, idx: torch.Tensor) -> torch.Tensor:
        """Images of the K nearest training samples of training samples ``idx``: (B, K, *dims)."""
        return self.rows.take(self.index[idx.cpu()])
