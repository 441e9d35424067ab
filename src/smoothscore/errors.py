"""Exceptions raised for bad input.

Every user-facing error derives from :class:`SmoothScoreError`; the CLI turns any of them into one line on
stderr and exit code 2. Programming errors (bugs) are left as ordinary exceptions.
"""

from __future__ import annotations

import difflib


class SmoothScoreError(Exception):
    """Base class of all errors caused by input the user gave (shapes, values, names, files)."""


class ShapeError(SmoothScoreError, ValueError):
    """A tensor has the wrong number of dimensions or mismatched trailing shape."""


class NonFiniteError(SmoothScoreError, ValueError):
    """A tensor contains NaN or Inf."""


class EmptyDataError(SmoothScoreError, ValueError):
    """A training set (or another required collection) is empty."""


class SigmaError(SmoothScoreError, ValueError):
    """A noise level is not a positive finite number (or a schedule is malformed)."""


class UnknownNameError(SmoothScoreError, LookupError):
    """A registry lookup failed (sampler, schedule, experiment, model, loss, dataset ...); the message names the
    closest known names ("did you mean ...?", :func:`did_you_mean`)."""

    def __str__(self) -> str:  # LookupError would quote the message like a KeyError otherwise
        return str(self.args[0]) if self.args else "unknown name"


class MissingDependencyError(SmoothScoreError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


class CheckpointError(SmoothScoreError):
    """A checkpoint is missing, truncated, not safetensors, or from another architecture."""


class DataError(SmoothScoreError):
    """Data could not be read: missing path, unreadable or mixed-size images, bad file format."""


class ConfigError(SmoothScoreError, ValueError):
    """An option value is invalid (unknown preset, bad range, inconsistent settings)."""


class OutputError(SmoothScoreError):
    """An output could not be written: the path is blocked by a file, permission denied, disk full (ENOSPC)."""


def did_you_mean(name: object, known) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``known`` to ``name`` (difflib), else ``""``."""
    hits = difflib.get_close_matches(str(name), [str(k) for k in known], n=3, cutoff=0.6)
    if not hits:
        return ""
    return f" (did you mean {' or '.join(repr(h) for h in hits)}?)"
