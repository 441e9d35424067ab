"""``smoothscore audit --model``: sample a trained model (a ``smoothscore train`` folder or ``diffusers:PATH``), audit
the samples against a training set and write one HTML page (``audit.html``, images embedded) with the memorized
fraction (d1/d2 < threshold) and its 90% bootstrap interval over samples, the histogram of d1/d2, and the most-copied
training images beside their copies. Sampling: :func:`smoothscore.training.memorization_watch.quick_samples` (Heun
PF-ODE for a noise-conditioned model, sigma* for an unconditioned one)."""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from .cli_sample import _open_diffusers
from .cli_train import RUN_FILE
from .data.loading import load_train
from .device import resolve_device
from .distributed import is_main_process
from .errors import ConfigError, ShapeError
from .io import atomic_write_json, atomic_write_text, check_output_dir
from .plotting import _to_img
from .plotting_memorization import ratio_histogram
from .scores.neural import NeuralScore
from .training.memorization_watch import audit_point, quick_samples


def most_copied(nn: list[int], ratio: list[float], threshold: float, top: int = 6) -> list[tuple[int, list[int]]]:
    """``[(training index, [sample indices that copy it]), ...]`` for the ``top`` training images copied by the most
    memorized samples (a sample copies its nearest training image when its d1/d2 < ``threshold``)."""
    copies: dict[int, list[int]] = {}
    for s, (j, r) in enumerate(zip(nn, ratio)):
        if j >= 0 and r < threshold:
            copies.setdefault(int(j), []).append(s)
    order = Counter({j: len(v) for j, v in copies.items()}).most_common(top)
    return [(j, copies[j]) for j, _ in order]


def copies_figure(train, samples, groups, n_copies: int = 6):
    """One row per training image of ``groups`` (``most_copied``'s output): the training image, then its copies."""
    # lazy: pyplot after smoothscore.plotting selected the Agg backend
    import matplotlib.pyplot as plt

    rows = max(1, len(groups))
    fig, axes = plt.subplots(rows, n_copies + 1, figsize=(1.2 * (n_copies + 1), 1.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for r, (j, members) in enumerate(groups):
        axes[r][0].imshow(_to_img(torch.as_tensor(train[j])), cmap="gray", vmin=0, vmax=1)
        axes[r][0].set_title(f"train #{j}\n{len(members)} copies", fontsize=7)
        for c, s in enumerate(members[:n_copies]):
            axes[r][c + 1].imshow(_to_img(samples[s]), cmap="gray", vmin=0, vmax=1)
            axes[r][c + 1].set_title(f"sample {s}", fontsize=6)
    if not groups:
        axes[0][0].text(0, 0.5, "no memorized samples", fontsize=9)
    fig.tight_layout()
    return fig


def _png(fig) -> bytes:
    # lazy: pyplot after smoothscore.plotting selected the Agg backend
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def render_page(res: dict, hist_png: bytes, copies_png: bytes) -> str:
    """The audit page: a summary table, the d1/d2 histogram and the most-copied training images (PNGs inline)."""
    img = lambda b, alt: f"<img alt='{alt}' src='data:image/png;base64,{base64.b64encode(b).decode()}'>"  # noqa: E731
    lo, hi = res["ci"]
    rows = [
        ("model", res["model"]),
        ("training set", f"{res['train']} ({res['n_train']} images)"),
        ("samples", f"{res['n_samples']} ({res['sampler']}, seed {res['seed']}; {res['diverged']} diverged)"),
        ("memorized fraction", f"{res['memorized_fraction']:.3f}  (90% bootstrap interval [{lo:.3f}, {hi:.3f}])"),
        ("median d1/d2", f"{res['median_ratio']:.3f}"),
        ("threshold", f"d1/d2 < {res['threshold']:.3g}"),
    ]
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>smoothscore memorization audit</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:60em}th{text-align:left;padding-right:1em}"
        ".big{font-size:2em;font-weight:bold;color:#b22}</style></head><body>"
        "<h1>Memorization audit</h1>"
        f"<p class='big'>{100 * res['memorized_fraction']:.1f}% memorized "
        f"<span style='font-size:0.5em'>[{100 * lo:.1f}%, {100 * hi:.1f}%]</span></p>"
        f"<table>{table}</table><h2>Nearest-neighbour ratio</h2>{img(hist_png, 'histogram of d1/d2')}"
        f"<h2>Most-copied training images</h2>{img(copies_png, 'most-copied training images and their copies')}"
        "</body></html>"
    )


def _open_model(args, device):
    mdir = Path(args.model)
    if getattr(args, "diffusers", False):
        args.data = args.data or args.train
        field, run = _open_diffusers(args, mdir, device)
        return field, run
    field = NeuralScore.from_checkpoint(mdir, device=device)
    try:
        run = json.loads((mdir / RUN_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        run = {}
    return field, run


def cmd_audit_model(args) -> int:
    """``audit --model``: sample, measure, write ``audit.json`` and ``audit.html``."""
    out = check_output_dir(Path(args.out), "--out")
    if args.n < 1 or args.steps < 1:
        raise ConfigError(f"--n and --steps must be positive; got {args.n}, {args.steps}")
    if not 0 < args.threshold <= 1:
        raise ConfigError(f"--threshold must be in (0, 1]; got {args.threshold}")
    device = resolve_device(args.device)
    field, run = _open_model(args, device)
    raw = load_train(args.train)  # an .npy training set comes memory-mapped (read-only): copied here
    train = raw.float() if isinstance(raw, torch.Tensor) else torch.from_numpy(np.array(raw, dtype=np.float32))
    if field.data_shape is not None and tuple(field.data_shape) != tuple(train.shape[1:]):
        raise ShapeError(
            f"the model takes shape {tuple(field.data_shape)}; the training set has {tuple(train.shape[1:])}"
        )
    smin = float(getattr(field, "sigma_min", None) or run.get("sigma_min") or 0.01)  # checkpoint, else run.json
    smax = float(args.sigma_max or getattr(field, "sigma_max", None) or run.get("sigma_max") or 0)
    if not smax > smin:
        raise ConfigError("the trained sigma range is unknown (not in the checkpoint or run.json): pass --sigma-max")
    g = torch.Generator().manual_seed(args.seed)
    xs = quick_samples(field, train, args.n, sigma_min=smin, sigma_max=smax, generator=g, steps=args.steps)
    p = audit_point(xs, train, threshold=args.threshold)
    groups = most_copied(p["nn"], p["ratio"], args.threshold)
    res = {
        "model": str(args.model),
        "train": args.train,
        "n_train": int(train.shape[0]),
        "n_samples": args.n,
        "sampler": "heun" if getattr(field, "conditioned", True) else "sigma_star",
        "seed": args.seed,
        "threshold": args.threshold,
        "memorized_fraction": p["fraction"],
        "ci": p["ci"],
        "median_ratio": p["median_ratio"],
        "diverged": p["diverged"],
        "most_copied": [{"train_index": j, "copies": m} for j, m in groups],
    }
    if not is_main_process():
        return 0
    page = render_page(res, _png(ratio_histogram(p["ratio"], args.threshold)), _png(copies_figure(train, xs, groups)))
    atomic_write_text(out / "audit.html", page)
    atomic_write_json(out / "audit.json", res)
    print(
        f"memorized fraction {p['fraction']:.3f} [{p['ci'][0]:.3f}, {p['ci'][1]:.3f}] of {args.n} samples; "
        f"page {out / 'audit.html'}"
    )
    return 0
