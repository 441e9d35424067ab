"""``smoothscore train``: train a score model on one's own data with the library trainer;
``smoothscore sample`` (:mod:`smoothscore.cli_sample`) samples from it with a memorization audit."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from .errors import ConfigError, SmoothScoreError

RUN_FILE = "run.json"


def _fmt():
    return argparse.ArgumentDefaultsHelpFormatter


def add_command(sub, name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
    """Add sub-command ``name`` to the ``smoothscore`` sub-parsers ``sub`` in the CLI's help format (defaults
    shown)."""
    return sub.add_parser(name, help=help, formatter_class=_fmt(), description=description)


def add_train_parser(sub) -> None:
    p = add_command(
        sub,
        "train",
        "train a score model (conditioned, unconditioned or temperature-smoothed)",
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
    p.add_argument("--seed", type=int, default=0, help="run seed: weights from its stream init, batches from batches")
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
    from .seeding import derive_seed
    from .training import TrainConfig, losses
    from .training.score_net import build_seeded, loss_from_registry, train_score_net

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
    # the temperature loss's feature space: the default encoder (local ResNet-18 weights, else a small classifier)
    loss = loss_from_registry(
        loss_name,
        data,
        sigma_min=args.sigma_min,
        sigma_max=sigma_max,
        n_levels=args.n_levels,
        k=args.k,
        sigma_collapse=args.sigma_collapse,
        space=args.knn_space,
        variant=args.variant,
    )
    net = {"model": args.model, "conditioning": args.conditioning, "param": args.param}
    net |= {"width": args.width, "depth": args.depth, "base": args.base}
    cfg = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=args.warmup,
        ema_decay=args.ema,
        seed=derive_seed(args.seed, "batches"),
        checkpoint_every=args.checkpoint_every,
    )
    model = build_seeded(net, x.shape[1:], derive_seed(args.seed, "init"))
    run = {
        "data": args.data,
        "size": args.size,
        "n_train": args.n_train,
        "loss": loss_name,
        "sigma_min": args.sigma_min,
        "sigma_max": sigma_max,
        "conditioning": args.conditioning,
        "param": model.param,
        "seed": args.seed,
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
        res = train_score_net(
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
