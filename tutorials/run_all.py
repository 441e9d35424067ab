"""Execute the tutorials (jupytext percent-format scripts) as plain Python, each in its own process.

``python tutorials/run_all.py OUT [NAME ...]`` writes every figure a tutorial saves, and its printed output as
``OUT/<name>.txt``, into OUT (``make tutorials`` uses ``docs/tutorials/figures``, the folder the site shows).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TUTORIALS = ("exact_score_memorizes", "interpolation_by_smoothing", "train_without_memorizing")


def run_tutorial(name: str, out: Path, *, timeout: float = 1800.0) -> tuple[str, float]:
    """Run ``tutorials/<name>.py`` with figures going to ``out``; returns (its stdout, wall seconds).

    Raises ``subprocess.CalledProcessError`` (with the output) when the script fails."""
    out.mkdir(parents=True, exist_ok=True)
    src = str(HERE.parent / "src")
    env = dict(
        os.environ,
        SMOOTHSCORE_TUTORIAL_OUT=str(out),
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p),
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(HERE / f"{name}.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=HERE.parent,
    )
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, proc.stdout, proc.stderr)
    (out / f"{name}.txt").write_text(proc.stdout)
    return proc.stdout, time.perf_counter() - t0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    out = Path(argv[0])
    for name in argv[1:] or TUTORIALS:
        _, sec = run_tutorial(name, out)
        print(f"{name}: {sec:.1f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
