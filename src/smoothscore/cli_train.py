"""``smoothscore train`` and ``smoothscore sample``: train a score model on one's own data and sample from it, with
a memorization audit of the samples against the training set."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from .errors import ConfigError, DataError, SmoothScoreError

RUN_FILE = "run.json"


def _fmt():
    return argparse.ArgumentDefaultsHelpFormatter


def add_train_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a score model (conditioned, unconditioned or temperature-smoothed)",
        formatter_class=_fmt(),
        description="Train a score network. Noise Unconditioning: --conditioning none --loss "
        "unconditioned. Temperature Smoothing: --conditioning none --loss temperature.",
    )
    p.add_argument("--data", required=True, help="digits, digits16, digits32, folder:PATH, FILE.npz/.npy")
    p.add_argument("--size", type=int, default=None, help="resize folder images to SIZE x SIZE")
    p.add_argument("--n-train", type=int, default=None, help="use the first N images (after a seeded shuffle)")
    p.add_argument("--model", default="unet", choices=["mlp", "unet", "two-layer"], help="architecture")
    p.add_argument("--conditioning", default="sigma", choices=["sigma", "none"], help="noise input or none")
    p.add_argument(
        "--loss",
        default=None,
        help="dsm, dsm_continuous, unconditioned, temperature, t_weighted "
        "(default: dsm when conditioned, unconditioned otherwise)",
    )
    p.add_argument(
        "--param",
        default=None,
        choices=["score", "sigma_score", "edm", "sigma_scaled"],
        help="output parameterisation (default: sigma_score when conditioned; sigma_scaled = F(x)/sigma, Paper B's "
        "code, when unconditioned; score = sigma-free F(x))",
    )
    p.add_argument("--width", type=int, default=256, help="MLP / two-layer width")
    p.add_argument("--depth", type=int, default=3, help="MLP hidden layers")
    p.add_argument("--base", type=int, default=32, help="UNet base channels")
    p.add_argument("--steps", type=int, default=4000, help="training steps")
    p.add_argument("--batch-size", type=int, default=64, help="global batch size")
    p.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate (Paper B: 2e-4)")
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay")
    p.add_argument("--sigma-min", type=float, default=0.01, help="smallest training noise level")
    p.add_argument("--sigma-max", type=float, default=None, help="largest level (default: data diameter)")
    p.add_argument("--n-levels", type=int, default=1000, help="discrete log-uniform levels (Paper B: N = 1000)")
    p.add_argument("--k", type=int, default=10, help="temperature loss: nearest neighbours K")
    p.add_argument("--sigma-collapse", type=float, default=1.0, help="temperature loss: T_i = max(c / sigma_i, 1)")
    p.add_argument("--knn-space", default="pixel", choices=["pixel", "feature"], help="neighbour search space")
    p.add_argument("--variant", default="sigma_star", choices=["sigma_star", "scheduled"], help="Eq. 10 variant")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    p.add_argument("--out", required=True, help="output folder (checkpoint.safetensors, checkpoint.json, run.json)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --out (its checkpoint, run.json and samples/) with a fresh one",
    )
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    p.add_argument(
        "--watch-memorization",
        type=int,
        default=0,
        metavar="N",
        help="every N steps sample a few images and audit memorization against the training set (printed, "
        "memorization_curve.json / .png in --out; onset: first step whose lower 90%% bound reaches --watch-level)",
    )
    p.add_argument("--watch-samples", type=int, default=32, help="samples per memorization audit")
    p.add_argument("--watch-level", type=float, default=0.1, help="onset level of the memorized fraction")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


class _ModelArg(argparse.Action):
    """``--model diffusers:PATH`` stores PATH and marks the model as a diffusers one."""

    def __call__(self, parser, namespace, value, option_string=None):
        is_diffusers = value.startswith("diffusers:")
        namespace.diffusers = is_diffusers
        setattr(namespace, self.dest, value[len("diffusers:") :] if is_diffusers else value)


def add_sample_parser(sub) -> None:
    p = sub.add_parser("sample", help="sample from a trained model and audit memorization", formatter_class=_fmt())
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
RUN_FILES = ("checkpoint.safetensors", "checkpoint.json", RUN_FILE)
SAMPLE_FILES = ("samples.npz", "samples.png", "nearest_neighbors.png", "audit.json")


def _load_train_data(args_like: dict):
    from ._checks import check_points
    from .data import load_dataset

    kw = {}
    if args_like.get("size") and str(args_like["data"]).startswith("folder:"):
        kw["size"] = args_like["size"]
    ds = load_dataset(args_like["data"], **kw)
    if args_like.get("n_train"):
        ds = ds.subset(list(range(min(len(ds), args_like["n_train"]))))
    # one point has no diameter (the default sigma_max) and no second neighbour (the memorization ratio)
    check_points(ds.x, f"training set {args_like['data']}", min_points=2)
    return ds


def _check_train_args(args) -> None:
    """Option values a run cannot use, refused before anything is loaded or written."""
    from ._checks import check_positive
    from .errors import SigmaError

    check_positive(args.sigma_min, "--sigma-min", error=SigmaError)
    if args.sigma_max is not None and check_positive(args.sigma_max, "--sigma-max", error=SigmaError) < args.sigma_min:
        raise SigmaError(f"--sigma-max ({args.sigma_max}) must not be below --sigma-min ({args.sigma_min})")
    check_positive(args.lr, "--lr")
    check_positive(args.sigma_collapse, "--sigma-collapse")
    for name in ("steps", "batch_size", "n_levels", "k", "width", "depth", "base"):
        if getattr(args, name) < (0 if name == "steps" else 1):
            raise ConfigError(
                f"--{name.replace('_', '-')} must be {'>= 0' if name == 'steps' else 'positive'}; "
                f"got {getattr(args, name)}"
            )
    if args.n_train is not None and args.n_train < 2:
        raise ConfigError(f"--n-train must be at least 2; got {args.n_train}")
    if not 0 <= args.ema < 1:
        raise ConfigError(f"--ema must be in [0, 1); got {args.ema}")


def _remove_own(folder: Path, names) -> None:
    for n in names:
        try:
            (folder / n).unlink()
        except FileNotFoundError:
            pass


def cmd_train(args) -> int:
    import torch

    from ._checks import check_k
    from .device import resolve_device
    from .distributed import is_main_process
    from .io import atomic_write_json, check_output_dir
    from .nets import build_model
    from .training import TrainConfig, losses, train

    out = Path(args.out)
    check_output_dir(out, "--out")
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    if ((out / "checkpoint.json").exists() or (out / RUN_FILE).exists()) and not (args.resume or args.overwrite):
        raise ConfigError(
            f"{out} already holds a training run; pass --resume to continue it, --overwrite to replace "
            "it, or choose another --out"
        )
    if args.resume and not (out / "checkpoint.json").exists():
        raise ConfigError(f"--resume: no checkpoint in {out} (--overwrite starts a fresh run there)")
    _check_train_args(args)
    loss_name = args.loss or ("dsm" if args.conditioning == "sigma" else "unconditioned")
    loss_cls = losses.get(loss_name)
    device = resolve_device(args.device)
    data = _load_train_data(vars(args))
    x = data.x
    if loss_name == "temperature":
        check_k(args.k, x.shape[0], "--k", "the training set")
    sigma_max = args.sigma_max or float(torch.cdist(x.flatten(1)[:512], x.flatten(1)[:512]).max()) or 1.0
    if getattr(loss_cls, "conditioned", True) != (args.conditioning == "sigma") and loss_name != "t_weighted":
        need = "sigma" if args.conditioning == "none" else "none"
        raise ConfigError(f"loss {loss_name!r} needs --conditioning {need}")
    if loss_name == "temperature":
        # feature space: the default encoder (local ResNet-18 weights, else a small classifier trained on the data)
        loss = loss_cls(
            data,
            k=args.k,
            sigma_collapse=args.sigma_collapse,
            space=args.knn_space,
            variant=args.variant,
            sigma_min=args.sigma_min,
            sigma_max=sigma_max,
            n_levels=args.n_levels,
        )
    elif loss_name == "t_weighted":
        loss = loss_cls(t_min=args.sigma_min**2, t_max=sigma_max**2)
    elif loss_name == "fixed_t":
        raise ConfigError("fixed_t is Paper A's 1-D protocol; use the chen-fig2 experiment")
    else:
        loss = loss_cls(sigma_min=args.sigma_min, sigma_max=sigma_max, n_levels=args.n_levels)
    torch.manual_seed(args.seed)
    kw = (
        {"width": args.width}
        if args.model == "two-layer"
        else {"width": args.width, "depth": args.depth}
        if args.model == "mlp"
        else {"base": args.base}
    )
    model = build_model(args.model, tuple(x.shape[1:]), conditioning=args.conditioning, param=args.param, **kw)
    cfg = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=args.warmup,
        ema_decay=args.ema,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
    )
    run = {
        "data": args.data,
        "size": args.size,
        "n_train": args.n_train,
        "loss": loss_name,
        "sigma_min": args.sigma_min,
        "sigma_max": sigma_max,
        "conditioning": args.conditioning,
        "param": model.param,
        "model": args.model,
        "train_config": vars(cfg),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    created = not out.exists()
    if args.overwrite and is_main_process():  # everything above succeeded: only now is the old run removed
        _remove_own(out, RUN_FILES)
        _remove_own(out / "samples", SAMPLE_FILES)
    if not args.resume and is_main_process():  # under torchrun only rank 0 writes
        atomic_write_json(out / RUN_FILE, run)
    t0 = time.time()
    from .cli_watch import watch_for, watch_report

    watch = watch_for(args, x, sigma_max, out, device) if args.watch_memorization else None
    try:
        res = train(
            model,
            loss,
            x,
            cfg,
            out_dir=out,
            resume=args.resume,
            device=device,
            progress=not args.quiet and watch is None,
            hooks=[watch.hook()] if watch else (),
        )
    except SmoothScoreError:  # bad input found by the trainer: leave no partial run behind
        if created and not (out / "checkpoint.json").exists():
            shutil.rmtree(out, ignore_errors=True)
        raise
    last = res.history[-1][1] if res.history else float("nan")
    if is_main_process():
        print(f"trained {res.step} steps in {time.time() - t0:.1f}s (final loss {last:.4g}); checkpoint in {out}")
        if watch is not None:
            watch_report(watch, out)
    return 0


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
