"""Named random streams derived from one run seed.

Every random draw of an experiment (initial noise, batch order, weight initialisation, a data subsample) takes its
own stream, named by a short string (``"noise"``, ``"init:conditioned"``). The stream's seed is
``numpy.random.SeedSequence(entropy=seed, spawn_key=key(name))`` with ``key(name)`` the first 128 bits of the
name's SHA-256 digest: a stable function of ``(seed, name)`` across processes and Python versions (unlike the
salted built-in ``hash``), and distinct streams for distinct ``(seed, name)`` pairs (the pool hashing of
``SeedSequence`` makes a collision as unlikely as a 64-bit hash collision). A hand formula such as
``seed + offset`` does not have that property: seed 10 with offset 100 and seed 0 with offset 110 are one stream.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from .errors import ConfigError

__all__ = ["derive_seed", "numpy_rng", "stream_key", "torch_generator"]


def stream_key(name: str) -> tuple[int, ...]:
    """The ``SeedSequence`` spawn key of stream ``name``: its SHA-256 digest's first 16 bytes as four 32-bit words."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a random stream needs a non-empty name; got {name!r}")
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


def _sequence(seed: int, name: str) -> np.random.SeedSequence:
    if isinstance(seed, bool) or int(seed) != seed or int(seed) < 0:
        raise ConfigError(f"a run seed must be a non-negative integer; got {seed!r}")
    return np.random.SeedSequence(entropy=int(seed), spawn_key=stream_key(name))


def derive_seed(seed: int, name: str) -> int:
    """The 63-bit seed of stream ``name`` of run seed ``seed`` (accepted by ``torch.manual_seed`` and numpy)."""
    return int(_sequence(seed, name).generate_state(1, np.uint64)[0]) & (2**63 - 1)


def numpy_rng(seed: int, name: str) -> np.random.Generator:
    """A numpy Generator on stream ``name`` of run seed ``seed``."""
    return np.random.default_rng(_sequence(seed, name))


def torch_generator(seed: int, name: str, device: torch.device | str | None = "cpu") -> torch.Generator:
    """A torch Generator on ``device`` seeded with :func:`derive_seed` ``(seed, name)``."""
    g = torch.Generator(device=device or "cpu")
    g.manual_seed(derive_seed(seed, name))
    return g
