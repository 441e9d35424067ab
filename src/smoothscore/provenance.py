"""Provenance of a result: the versions of the software that produced it and the CPU time it took."""

from __future__ import annotations

import platform
import resource
import sys
from importlib.metadata import version

import numpy
import torch


def versions() -> dict[str, str]:
    """Versions of Python, the platform, torch, numpy, smoothscore and the optional packages that are installed."""
    out = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    }
    try:
        out["smoothscore"] = version("smoothscore")
    except Exception:  # pragma: no cover - not installed as a distribution
        out["smoothscore"] = "unknown"
    for mod in ("faiss", "ot", "sklearn", "scipy", "matplotlib"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            pass
    return out


def cpu_seconds() -> float:
    """User plus system CPU seconds of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
