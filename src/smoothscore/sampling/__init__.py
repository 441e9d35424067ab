"""Samplers sharing one signature: ``sample(field, x_init, sigmas, *, method, generator, progress, ...)``.

Every module of this package is imported here, so a new sampler module registers itself in :data:`samplers`.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from .base import SampleResult, sample, samplers

for _m in _pkgutil.iter_modules(__path__):
    if _m.name != "base" and not _m.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["sample", "samplers", "SampleResult"]
