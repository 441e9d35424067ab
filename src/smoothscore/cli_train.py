"""``smoothscore train`` and ``smoothscore sample``: train a score model on one's own data and sample from it, with
a memorization audit of the samples against the training set."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .errors import ConfigError, DataError

RUN_FILE = "run.json"


def _fmt():
    return argparse.ArgumentDefaultsHelpFormatter


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a score model (conditioned, unconditioned or temperature-smoothed)",
                       formatter_class=_fmt(),
                       description="Train a score network. Noise Unconditioning: --conditioning none --loss "
                                   "unconditioned. Temperature Smoothing: --conditioning none --loss temperature.")
    p.add_argument("--data", required=True, help="digits, digits16, digits32, folder:PATH, FILE.npz/.npy")
    p.add_argument("--size", type=int, default=None, help="resize folder images to SIZE x SIZE")
    p.add_argument("--n-train", type=int, default=None, help="use the first N images (after a seeded shuffle)")
    p.add_argument("--model", default="unet", choices=["mlp", "unet", "two-layer"], help="architecture")
    p.add_argument("--conditioning", default="sigma", choices=["sigma", "none"], help="noise input or none")
    p.add_argument("--loss", default=None, help="dsm, dsm_continuous, unconditioned, temperature, t_weighted "
                   "(default: dsm when conditioned, unconditioned otherwise)")
    p.add_argument("--param", default=None, choices=["score", "sigma_score", "edm"], help="output parameterisation")
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
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


class _ModelArg(argparse.Action):
    """``--model diffusers:PATH`` stores PATH and marks the model as a diffusers one."""

    def __call__(self, parser, namespace, value, option_string=None):
        is_diffusers = value.startswith("diffusers:")
        setattr(namespace, "diffusers", is_diffusers)
        setattr(namespace, self.dest, value[len("diffusers:"):] if is_diffusers else value)


def add_sample_parser(sub) -> None:
    p = sub.add_parser("sample", help="sample from a trained model and audit memorization", formatter_class=_fmt())
    p.add_argument("--model", required=True, action=_ModelArg, help="training output folder (with "
                   "checkpoint.safetensors), or diffusers:PATH (a saved diffusers model or pipeline; needs --data)")
    p.add_argument("--data", default=None, help="diffusers models: the training set to audit against (digits, "
                   "folder:PATH, FILE.npz/.npy)")
    p.add_argument("--n", type=int, default=64, help="number of samples")
    p.add_argument("--sampler", default=None, help="heun, euler, em, pc, sigma_star (default: heun if conditioned, "
                   "pc otherwise)")
    p.add_argument("--steps", type=int, default=200, help="noise levels in the schedule")
    p.add_argument("--schedule", default="edm", help="edm, geometric, sqrt_t_uniform, t_uniform")
    p.add_argument("--snr", type=float, default=0.16, help="pc sampler: Langevin signal-to-noise ratio")
    p.add_argument("--no-ema", action="store_true", help="use raw weights instead of the EMA")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--out", default=None, help="output folder (default: MODEL/samples)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sample)


def _load_train_data(args_like: dict):
    from .data import load_dataset

    kw = {}
    if args_like.get("size") and str(args_like["data"]).startswith("folder:"):
        kw["size"] = args_like["size"]
    ds = load_dataset(args_like["data"], **kw)
    if args_like.get("n_train"):
        ds = ds.subset(list(range(min(len(ds), args_like["n_train"]))))
    return ds


def cmd_train(args) -> int:
    import torch

    from .device import resolve_device
    from .io import atomic_write_json
    from .nets import build_model
    from .training import TrainConfig, losses, train

    out = Path(args.out)
    if (out / "checkpoint.json").exists() and not args.resume:
        raise ConfigError(f"{out} already holds a checkpoint; pass --resume to continue it or choose another --out")
    if args.resume and not (out / "checkpoint.json").exists():
        raise ConfigError(f"--resume: no checkpoint in {out}")
    loss_name = args.loss or ("dsm" if args.conditioning == "sigma" else "unconditioned")
    loss_cls = losses.get(loss_name)
    device = resolve_device(args.device)
    data = _load_train_data(vars(args))
    x = data.x
    sigma_max = args.sigma_max or float(torch.cdist(x.flatten(1)[:512], x.flatten(1)[:512]).max()) or 1.0
    if getattr(loss_cls, "conditioned", True) != (args.conditioning == "sigma") and loss_name != "t_weighted":
        need = "sigma" if args.conditioning == "none" else "none"
        raise ConfigError(f"loss {loss_name!r} needs --conditioning {need}")
    if loss_name == "temperature":
        # feature space: the default encoder (local ResNet-18 weights, else a small classifier trained on the data)
        loss = loss_cls(data, k=args.k, sigma_collapse=args.sigma_collapse, space=args.knn_space,
                        variant=args.variant, sigma_min=args.sigma_min, sigma_max=sigma_max, n_levels=args.n_levels)
    elif loss_name == "t_weighted":
        loss = loss_cls(t_min=args.sigma_min ** 2, t_max=sigma_max ** 2)
    elif loss_name == "fixed_t":
        raise ConfigError("fixed_t is Paper A's 1-D protocol; use the chen-fig2 experiment")
    else:
        loss = loss_cls(sigma_min=args.sigma_min, sigma_max=sigma_max, n_levels=args.n_levels)
    torch.manual_seed(args.seed)
    kw = {"width": args.width} if args.model == "two-layer" else \
        {"width": args.width, "depth": args.depth} if args.model == "mlp" else {"base": args.base}
    model = build_model(args.model, tuple(x.shape[1:]), conditioning=args.conditioning, param=args.param, **kw)
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup,
                      ema_decay=args.ema, seed=args.seed, checkpoint_every=args.checkpoint_every)
    run = {"data": args.data, "size": args.size, "n_train": args.n_train, "loss": loss_name,
           "sigma_min": args.sigma_min,
           "sigma_max": sigma_max, "conditioning": args.conditioning, "model": args.model, "train_config": vars(cfg),
           "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if not args.resume:
        atomic_write_json(out / RUN_FILE, run)
    t0 = time.time()
    res = train(model, loss, x, cfg, out_dir=out, resume=args.resume, device=device, progress=not args.quiet)
    last = res.history[-1][1] if res.history else float("nan")
    print(f"trained {res.step} steps in {time.time() - t0:.1f}s (final loss {last:.4g}); checkpoint in {out}")
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
    import numpy as np
    import torch

    from .device import resolve_device
    from .io import atomic_write, atomic_write_json
    from .metrics import distance_summary, memorization_fraction
    from .noise import sigma_schedule
    from .plotting import nearest_neighbor_figure, save_image_grid
    from .sampling import sample
    from .scores.neural import NeuralScore

    mdir = Path(args.model)
    device = resolve_device(args.device)
    field, run = _open_diffusers(args, mdir, device) if getattr(args, "diffusers", False) else \
        (NeuralScore.from_checkpoint(mdir, ema=not args.no_ema, device=device), None)
    try:
        run = run or json.loads((mdir / RUN_FILE).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read {mdir / RUN_FILE} (written by `smoothscore train`): {e}") from None
    if args.n < 1:
        raise ConfigError("--n must be positive")
    data = _load_train_data(run)
    method = args.sampler or ("heun" if field.conditioned else "pc")
    sigmas = sigma_schedule(args.schedule, args.steps, run["sigma_min"], run["sigma_max"])
    g = torch.Generator().manual_seed(args.seed)
    x0 = float(sigmas[0]) * torch.randn(args.n, *data.x.shape[1:], generator=g)
    opts = {"snr": args.snr} if method == "pc" else {"train": data.x} if method == "sigma_star" else {}
    with torch.no_grad():
        xs = sample(field, x0.to(device), sigmas, method=method, generator=g, progress=not args.quiet, **opts).cpu()
    out = Path(args.out) if args.out else mdir / "samples"
    atomic_write(out / "samples.npz", lambda tmp: np.savez(open(tmp, "wb"), samples=xs.numpy()))
    frac = memorization_fraction(xs, data.x)
    summ = distance_summary(xs, data.x)
    if xs.dim() == 4:
        save_image_grid(out / "samples.png", xs, nrow=8)
    import matplotlib.pyplot as plt

    fig = nearest_neighbor_figure(xs, data.x, k=3, n_show=min(8, args.n))
    atomic_write(out / "nearest_neighbors.png",
                 lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    atomic_write_json(out / "audit.json", {"model": str(mdir), "sampler": method, "steps": args.steps,
                                           "n": args.n, "memorized_fraction": frac, "distance_summary": summ,
                                           "seed": args.seed})
    print(f"{args.n} samples ({method}, {args.steps} levels) -> {out / 'samples.npz'}; memorized fraction {frac:.3f}; "
          f"median NN distance {summ['median']:.3g}")
    return 0
