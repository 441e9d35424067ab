"""``smoothscore train --watch-memorization``: the memorization audit during training (one line per audit) and its
curve figure (:mod:`smoothscore.training.memorization_watch`)."""

from __future__ import annotations

from pathlib import Path

from .distributed import is_main_process
from .errors import ConfigError
from .io import atomic_savefig
from .plotting_memorization import onset_figure
from .training.memorization_watch import MemorizationWatch


def watch_for(args, x, sigma_max: float, out: Path, device):
    """The memorization audit of ``train --watch-memorization`` (rank 0 prints; the curve is resumed with the run)."""
    if args.watch_samples < 1:
        raise ConfigError(f"--watch-samples must be positive; got {args.watch_samples}")
    if args.watch_memorization < 1:
        raise ConfigError(f"--watch-memorization must be positive; got {args.watch_memorization}")
    return MemorizationWatch(
        x,
        every=args.watch_memorization,
        sigma_min=args.sigma_min,
        sigma_max=sigma_max,
        n_samples=args.watch_samples,
        level=args.watch_level,
        seed=args.seed,
        out_dir=out if is_main_process() else None,
        resume=args.resume,
        echo=(lambda line: print(line, flush=True)) if is_main_process() else None,
        device=device,
    )


def watch_report(watch, out: Path) -> None:
    on = watch.onset
    fig = onset_figure({"samples": watch.curve}, watch.level, {"samples": on}, title="memorization during training")
    atomic_savefig(out / "memorization_curve.png", fig, format="png", dpi=110, bbox_inches="tight")
    # lazy: pyplot after smoothscore.plotting selected the Agg backend
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(
        f"memorization onset (lower 90% bound >= {watch.level:g}): "
        + (f"step {on}" if on is not None else "not reached")
        + f"; curve in {out / 'memorization_curve.json'}"
    )
