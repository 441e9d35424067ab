"""The ``smoothscore`` command.

Subcommands: ``list``, ``reproduce``, ``audit``, ``train``, ``sample`` (``train``/``sample`` live in
:mod:`smoothscore.cli_train`). User errors print one line and exit with code 2, never a traceback.

Started by ``torchrun`` (``torchrun --nproc_per_node N -m smoothscore ...``), every command runs in a process group
(:func:`smoothscore.distributed.process_group`): training is data-parallel, nearest-neighbour searches are sharded
across the ranks, and only rank 0 writes outputs and prints.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from .errors import ConfigError, DataError, SmoothScoreError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage + message."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_USAGE, f"smoothscore: error: {message} (see --help)\n")


def _fmt_help():
    return argparse.ArgumentDefaultsHelpFormatter


def _parse_overrides(items: List[str]) -> dict:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise ConfigError(f"--set expects KEY=VALUE; got {it!r}")
        k, v = it.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


# ------------------------------------------------------------------------------------------------ list
def cmd_list(args) -> int:
    from .experiments.base import load_all

    from .experiments.base import IMPORT_ERRORS

    reg = load_all()
    width = max((len(n) for n in reg.names()), default=10)
    for name, spec in reg.items():
        print(f"{name:<{width}}  [{','.join(spec.groups)}]  {spec.title}")
    for mod, err in IMPORT_ERRORS.items():
        print(f"warning: experiment module {mod} failed to import: {err}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------- reproduce
def cmd_reproduce(args) -> int:
    from .device import resolve_device
    from .distributed import is_main_process, rank_output_dir
    from .experiments.base import load_all, resolve_names
    from .report import run_many

    from .experiments.base import IMPORT_ERRORS

    names = resolve_names(args.names)           # unknown names fail here, before anything is written
    for mod, err in IMPORT_ERRORS.items():
        print(f"warning: experiment module {mod} failed to import: {err}", file=sys.stderr)
    overrides = _parse_overrides(args.set)
    if args.data:
        overrides["data"] = args.data
    reg = load_all()
    for n in names:
        if args.preset not in reg.get(n).presets:
            raise ConfigError(f"experiment {n!r} has no preset {args.preset!r}")
    resolve_device(args.device)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a folder")
    with rank_output_dir(out) as where:              # under torchrun only rank 0 writes into --out
        results = run_many(names, args.preset, where, seed=args.seed, device=args.device, progress=not args.quiet,
                           overrides=overrides)
    if not is_main_process():
        return 1 if any(r["status"] != "ok" for r in results) else 0
    n_err = sum(r["status"] != "ok" for r in results)
    claims = [c for r in results for c in r["claims"]]
    print(f"{len(results)} experiments, {sum(c['passed'] is True for c in claims)}/{len(claims)} claims pass"
          f"{f', {n_err} experiment(s) FAILED TO RUN' if n_err else ''}. Report: {out / 'report.html'}")
    return 1 if n_err else 0


# ----------------------------------------------------------------------------------------------- audit
def load_samples(path: str, like_shape=None):
    """Samples from an ``.npz``/``.npy`` file (array ``samples`` or the first array) or an image folder."""
    from .data import load_dataset

    p = Path(path)
    if not p.exists():
        raise DataError(f"samples path not found: {path}")
    if p.is_dir():
        size = like_shape[-1] if like_shape is not None and len(like_shape) == 3 else None
        channels = like_shape[0] if like_shape is not None and len(like_shape) == 3 else None
        kw = {}
        if size:
            kw["size"] = size
        if channels:
            kw["channels"] = channels
        return load_dataset(f"folder:{p}", **kw).x
    return load_dataset(str(p)).x


def load_train(spec: str):
    """The training set of ``audit``: an ``.npy`` file is opened memory-mapped (streamed, never loaded whole);
    anything else through :func:`smoothscore.data.load_dataset`."""
    from .data import load_dataset
    from .data.rows import Rows, open_npy

    if spec.endswith(".npy"):
        return Rows(open_npy(spec), "train").data
    return load_dataset(spec).x


def cmd_audit(args) -> int:
    import torch

    from .distributed import is_main_process
    from .io import atomic_write, atomic_write_json
    from .metrics import NeighborIndex, memorization_audit
    from .plotting import nearest_neighbor_figure

    train = load_train(args.train)
    samples = load_samples(args.samples, like_shape=tuple(train.shape[1:]))
    if tuple(samples.shape[1:]) != tuple(train.shape[1:]):
        raise DataError(f"samples have shape {tuple(samples.shape[1:])} but the training set {tuple(train.shape[1:])}")
    index = NeighborIndex(train)                      # sharded across ranks under torchrun
    audit = memorization_audit(samples, index, threshold=args.threshold, k=3)
    frac = audit["memorized_fraction"]
    res = {"train": args.train, "samples": args.samples, "n_samples": int(samples.shape[0]),
           "n_train": int(train.shape[0]), "threshold": args.threshold, "memorized_fraction": frac,
           "nn_ratio_median": float(torch.as_tensor(audit["ratios"]).median()),
           "distance_summary": audit["distance_summary"]}
    if not is_main_process():                         # under torchrun only rank 0 writes
        return 0
    out = Path(args.out)
    fig = nearest_neighbor_figure(samples, train, k=3, n_show=min(args.n_show, samples.shape[0]),
                                  neighbors=(audit["dist"], audit["idx"]))
    import matplotlib.pyplot as plt

    atomic_write(out / "nearest_neighbors.png", lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    atomic_write_json(out / "audit.json", res)
    print(f"memorized fraction {frac:.3f} ({int(round(frac * samples.shape[0]))}/{samples.shape[0]} samples with "
          f"d(NN1)/d(NN2) < {args.threshold:.3g}); median ratio {res['nn_ratio_median']:.3f}; "
          f"figure {out / 'nearest_neighbors.png'}")
    return 0


# ------------------------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="smoothscore", description="Smoothed empirical scores, memorization and interpolation in "
                "diffusion models (Chen 2025; Zhou, Zhang, Wright 2026).", formatter_class=_fmt_help())
    p.add_argument("--version", action="version", version="smoothscore 0.1.0")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    sub.required = True

    sp = sub.add_parser("list", help="list experiments, one line each", formatter_class=_fmt_help())
    sp.set_defaults(func=cmd_list)

    sp = sub.add_parser("reproduce", help="run experiments and write a report", formatter_class=_fmt_help(),
                        description="Run experiments (names or groups: chen, zhou, all) and write OUT/report.html, "
                                    "OUT/<experiment>/results.json and figures.")
    sp.add_argument("names", nargs="*", help="experiment names or groups (default: all)")
    sp.add_argument("--preset", default="quick",
                    help="quick (minutes on a CPU), paper (larger runs; GPU recommended), or an experiment's own "
                         "preset such as paper-celeba64 for zhou-small-data")
    sp.add_argument("--out", default="runs/reproduce", help="output folder")
    sp.add_argument("--seed", type=int, default=0, help="random seed")
    sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                    help="override a config value of every selected experiment (JSON value)")
    sp.add_argument("--data", default=None, help="dataset of the experiments that train on one (zhou-small-data, "
                    "zhou-cost): digits or folder:PATH (same as --set data=...)")
    sp.add_argument("--quiet", action="store_true", help="no progress output")
    sp.set_defaults(func=cmd_reproduce)

    sp = sub.add_parser("audit", help="memorization audit of samples against a training set",
                        formatter_class=_fmt_help())
    sp.add_argument("--train", required=True, help="training data: digits, digits16, folder:PATH, FILE.npz/.npy")
    sp.add_argument("--samples", required=True, help="samples: FILE.npz/.npy or a folder of images")
    sp.add_argument("--threshold", type=float, default=1 / 3, help="memorized when d(NN1)/d(NN2) < threshold")
    sp.add_argument("--out", default="runs/audit", help="output folder (audit.json, nearest_neighbors.png)")
    sp.add_argument("--n-show", type=int, default=8, help="samples shown in the nearest-neighbour figure")
    sp.set_defaults(func=cmd_audit)

    try:
        from .cli_train import add_sample_parser, add_train_parser
    except ImportError:  # pragma: no cover - during development only
        pass
    else:
        add_train_parser(sub)
        add_sample_parser(sub)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from .distributed import process_group

        with process_group() as (rank, _):          # torchrun: gloo on CPU, NCCL on CUDA; torn down at the end
            if rank and hasattr(args, "quiet"):
                args.quiet = True
            return int(args.func(args) or 0)
    except SmoothScoreError as e:
        print(f"smoothscore: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except FileNotFoundError as e:
        print(f"smoothscore: error: file not found: {e.filename or e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("smoothscore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
