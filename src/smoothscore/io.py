"""Atomic file output: write to a temporary file in the same folder, fsync, then rename.

Every file smoothscore writes (reports, figures, ``results.json``, checkpoints, samples, caches) goes through
:func:`atomic_write`, so a run killed at any moment leaves either the old file or the new one, never a torn one.
The file gets the permissions a plain ``open(path, "w")`` would give (``0o666 & ~umask``), not ``mkstemp``'s
private 0600, so colleagues can read reports and load checkpoints on a shared machine. A failed write (full disk,
permission denied, output path blocked by a file) raises :class:`~smoothscore.errors.OutputError` with one line
naming the path and the reason, and leaves any previous file untouched.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import OutputError


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)  # portable fallback: set and restore immediately
    os.umask(old)
    return old


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` creates files with under the current umask."""
    return 0o666 & ~current_umask()


def _reason(e: OSError) -> str:
    return os.strerror(e.errno) if e.errno else str(e)


def check_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """Refuse (:class:`OutputError`) a folder path that is, or lies under, an existing file; creates nothing."""
    p = Path(path)
    for q in (p, *p.parents):
        if q.exists() and not q.is_dir():
            raise OutputError(f"{what} {p}: {q} exists and is not a folder")
        if q.exists():
            break
    return p


def ensure_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """Create folder ``path`` (and parents); :class:`OutputError` when it or a parent is an existing file."""
    p = check_output_dir(path, what)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {what} {p}: {_reason(e)}") from None
    return p


def atomic_write(path: str | Path, writer: Callable[[str], None]) -> Path:
    """Call ``writer(tmp_path)`` then atomically move the result to ``path``; nothing is left on failure.

    Raises :class:`OutputError` (one line: path and reason) for operating-system write failures such as a full
    disk (ENOSPC); the previous ``path``, if any, is left as it was. Other exceptions from ``writer`` propagate.
    """
    path = Path(path)
    ensure_output_dir(path.parent)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {_reason(e)}") from None
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, default_file_mode())  # after the writer: some (safetensors) recreate the file as 0600
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {path}: {_reason(e)}") from None
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); best effort, as some file systems refuse directory fsync."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    def w(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return atomic_write(path, w)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npz(path: str | Path, **arrays) -> Path:
    """``numpy.savez`` atomically (load back with ``allow_pickle=False``)."""
    # lazy: io stays importable without numpy and torch (CLI start-up)
    import numpy as np

    def w(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return atomic_write(path, w)


def atomic_save_npy(path: str | Path, array) -> Path:
    """``numpy.save`` atomically (never pickles: object arrays are refused)."""
    # lazy: io stays importable without numpy and torch (CLI start-up)
    import numpy as np

    def w(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)

    return atomic_write(path, w)


def atomic_savefig(path: str | Path, fig, **kw) -> Path:
    """Save a matplotlib figure atomically (format from ``kw`` or the suffix, default PNG)."""
    kw.setdefault("format", (Path(path).suffix.lstrip(".") or "png").lower())
    return atomic_write(path, lambda tmp: fig.savefig(tmp, **kw))


def live_display() -> bool:
    """Whether progress bars may redraw in place: a terminal or a notebook. Piped output (CI logs, ``| tee``) gets
    no bar at all -- no carriage returns, control codes or blank lines -- only the commands' result lines."""
    # lazy: rich loads only when asked whether a display is live
    from rich.console import Console

    c = Console()
    return bool(c.is_terminal or c.is_jupyter)


def _json_default(o: Any):
    # lazy: io stays importable without numpy and torch (CLI start-up)
    import numpy as np
    import torch

    if isinstance(o, torch.Tensor):
        return o.detach().cpu().tolist()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    if isinstance(o, (torch.dtype, torch.device)):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def to_jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=_json_default, allow_nan=True))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default, allow_nan=True) + "\n")


__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_save_npz",
    "atomic_save_npy",
    "atomic_savefig",
    "check_output_dir",
    "ensure_output_dir",
    "default_file_mode",
    "current_umask",
    "to_jsonable",
    "live_display",
]
