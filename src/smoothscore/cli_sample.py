"""``smoothscore sample``: sample from a model trained by ``smoothscore train`` (or a diffusers model) and audit the
samples' memorization against the training set."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .cli_train import RUN_FILE, SAMPLE_FILES, _load_train_data, add_command
from .errors import ConfigError, DataError


class _ModelArg(argparse.Action):
    """``--model diffusers:PATH`` stores PATH and marks the model as a diffusers one."""

    def __call__(self, parser, namespace, value, option_string=None):
        is_diffusers = value.startswith("diffusers:")
        namespace.diffusers = is_diffusers
        setattr(namespace, self.dest, value[len("diffusers:") :] if is_diffusers else value)


def add_sample_parser(sub) -> None:
    p = add_command(sub, "sample", "sample from a trained model and audit memorization")
    p.add_argument(
        "--model",
        required=True,
        action=_ModelArg,
        help="training output folder (with "
        "checkpoint.safetensors), or diffusers:PATH (a saved diffusers model or pipeline; needs --data)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="diffusers models: the training set to audit against (digits, folder:PATH, FILE.npz/.npy)",
    )
    p.add_argument("--n", type=int, default=64, help="number of samples")
    p.add_argument(
        "--sampler",
        default=None,
        help="heun, euler, em, pc, sigma_star (default: heun for a "
        "noise-conditioned model, sigma_star for an unconditioned one; the choice is printed)",
    )
    p.add_argument("--steps", type=int, default=200, help="noise levels in the schedule")
    p.add_argument("--schedule", default="edm", help="edm, geometric, sqrt_t_uniform, t_uniform")
    p.add_argument("--snr", type=float, default=0.16, help="pc sampler: Langevin signal-to-noise ratio")
    p.add_argument("--no-ema", action="store_true", help="use raw weights instead of the EMA")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--out", default=None, help="output folder (default: MODEL/samples)")
    p.add_argument("--overwrite", action="store_true", help="replace samples already in --out")
    p.add_argument("--alpha", type=float, default=0.1, help="sigma_star sampler: step size alpha")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sample)


#: what ``train --overwrite`` removes from --out (only files smoothscore wrote there)


def _open_diffusers(args, mdir: Path, device):
    """``--model diffusers:PATH``: the score field and a run record built from ``--data`` and the model's trained
    sigma range (a ``smoothscore train`` folder has its own run.json)."""
    from .scores.diffusers import DiffusersScore

    if not args.data:
        raise ConfigError("--model diffusers:PATH needs --data (the training set to audit the samples against)")
    field = DiffusersScore.from_pretrained(mdir, device=device)
    return field, {"data": args.data, "sigma_min": field.sigma_min, "sigma_max": field.sigma_max}


def cmd_sample(args) -> int:
    import torch

    from ._checks import check_positive
    from .device import resolve_device
    from .distributed import is_main_process
    from .errors import ShapeError
    from .io import atomic_save_npz, atomic_savefig, atomic_write_json, check_output_dir
    from .metrics import memorization_audit
    from .noise import sigma_schedule
    from .plotting import nearest_neighbor_figure, save_image_grid
    from .sampling import sample, samplers
    from .scores.neural import NeuralScore

    mdir = Path(args.model)
    out = Path(args.out) if args.out else mdir / "samples"
    check_output_dir(out, "--out")
    if not args.overwrite and any((out / n).exists() for n in SAMPLE_FILES):
        raise ConfigError(f"{out} already holds samples; pass --overwrite to replace them or choose another --out")
    if args.n < 1:
        raise ConfigError(f"--n must be positive; got {args.n}")
    if args.steps < 2:
        raise ConfigError(f"--steps must be at least 2; got {args.steps}")
    check_positive(args.alpha, "--alpha")
    device = resolve_device(args.device)
    field, run = (
        _open_diffusers(args, mdir, device)
        if getattr(args, "diffusers", False)
        else (NeuralScore.from_checkpoint(mdir, ema=not args.no_ema, device=device), None)
    )
    try:
        run = run or json.loads((mdir / RUN_FILE).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read {mdir / RUN_FILE} (written by `smoothscore train`): {e}") from None
    data = _load_train_data(run)
    if field.data_shape is not None and tuple(field.data_shape) != tuple(data.x.shape[1:]):
        raise ShapeError(
            f"the model in {mdir} takes shape {tuple(field.data_shape)} but its training data "
            f"{run['data']} now has shape {tuple(data.x.shape[1:])}"
        )
    method, why = (args.sampler, "--sampler") if args.sampler else default_sampler(field)
    samplers.get(method)  # unknown names fail here ("did you mean")
    sigmas = sigma_schedule(args.schedule, args.steps, *trained_sigma_range(field, run))
    if is_main_process():
        print(f"sampler: {method} ({why})", flush=True)
    g = torch.Generator().manual_seed(args.seed)
    x0 = float(sigmas[0]) * torch.randn(args.n, *data.x.shape[1:], generator=g)
    opts = (
        {"snr": args.snr}
        if method == "pc"
        else {"train": data.x, "alpha": args.alpha}
        if method == "sigma_star"
        else {}
    )
    with torch.no_grad():
        xs = sample(field, x0.to(device), sigmas, method=method, generator=g, progress=not args.quiet, **opts).cpu()
    ok = torch.isfinite(xs.reshape(xs.shape[0], -1)).all(1)
    n_bad = int((~ok).sum())
    if n_bad:  # never silently: one line, exit 2, nothing written
        from .errors import NonFiniteError

        other = "sigma_star" if method != "sigma_star" else "pc"
        raise NonFiniteError(
            f"{n_bad} of {args.n} samples diverged (non-finite) with the {method} sampler; try --sampler {other}, "
            "more --steps, or a longer-trained model"
        )
    good = xs[ok]
    if len(good):
        audit = memorization_audit(good, data.x, k=3)  # one search (sharded across ranks under torchrun)
        frac, summ = audit["memorized_fraction"], audit["distance_summary"]
    else:
        audit, frac, summ = None, float("nan"), {"median": float("nan")}
    if not is_main_process():  # under torchrun only rank 0 writes
        return 0
    import matplotlib.pyplot as plt

    fig = (
        nearest_neighbor_figure(good, data.x, k=3, n_show=min(8, len(good)), neighbors=(audit["dist"], audit["idx"]))
        if len(good)
        else None
    )
    try:  # everything is computed: only the writes remain
        atomic_save_npz(out / "samples.npz", samples=xs.numpy())
        if xs.dim() == 4:
            save_image_grid(out / "samples.png", xs, nrow=8)
        if fig is not None:
            atomic_savefig(out / "nearest_neighbors.png", fig, format="png", dpi=110, bbox_inches="tight")
    finally:
        if fig is not None:
            plt.close(fig)
    atomic_write_json(
        out / "audit.json",
        {
            "model": str(mdir),
            "sampler": method,
            "sampler_choice": why,
            "steps": args.steps,
            "n": args.n,
            "memorized_fraction": frac,
            "distance_summary": summ,
            "seed": args.seed,
            "diverged": n_bad,
        },
    )
    print(
        f"{args.n} samples ({method}, {args.steps} levels) -> {out / 'samples.npz'}; memorized fraction {frac:.3f}; "
        f"median NN distance {summ['median']:.3g}"
    )
    return 1 if n_bad == args.n else 0


def trained_sigma_range(field, run: dict) -> tuple[float, float]:
    """``(sigma_min, sigma_max)`` the model was trained on: the field's own record (checkpoint or diffusers
    scheduler), else the run record's (checkpoints that predate the record keep it only in run.json)."""
    lo, hi = getattr(field, "sigma_min", None), getattr(field, "sigma_max", None)
    if lo is None or hi is None:
        lo, hi = run["sigma_min"], run["sigma_max"]
    return float(lo), float(hi)


def default_sampler(field) -> tuple[str, str]:
    """The sampler a model gets when none is named, and why: Heun's PF-ODE for a noise-conditioned model; the
    adaptive sigma* sampler (Paper B, Sec. 4.1) for a noise-unconditioned one, where scheduled samplers overshoot
    (zhou-ode-overshoot; PC at snr 0.16 diverged in zhou-small-data)."""
    if getattr(field, "conditioned", True):
        return "heun", "default for a noise-conditioned model"
    return "sigma_star", "default for a noise-unconditioned model: scheduled samplers overshoot"
