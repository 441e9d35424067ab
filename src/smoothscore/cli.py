"""The ``smoothscore`` command.

Subcommands: ``list``, ``reproduce``, ``report``, ``audit``, ``train``, ``sample`` (``train``/``sample`` live in
:mod:`smoothscore.cli_train`). User errors print one line and exit with code 2, never a traceback.
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
    from .experiments.base import IMPORT_ERRORS, load_all

    reg = load_all()
    width = max((len(n) for n in reg.names()), default=10)
    for name, spec in reg.items():
        seeds = f" (trains networks: {spec.n_seeds('quick')} seeds quick, {spec.n_seeds('paper')} paper)" \
            if spec.trains else ""
        print(f"{name:<{width}}  [{','.join(spec.groups)}]  {spec.title}{seeds}")
    for mod, err in IMPORT_ERRORS.items():
        print(f"warning: experiment module {mod} failed to import: {err}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------- reproduce
def cmd_reproduce(args) -> int:
    from .device import resolve_device
    from .experiments.base import IMPORT_ERRORS, resolve_names
    from .runner import parse_seeds, parse_shard, plan, run_many

    names = resolve_names(args.names)           # unknown names fail here, before anything is written
    for mod, err in IMPORT_ERRORS.items():
        print(f"warning: experiment module {mod} failed to import: {err}", file=sys.stderr)
    overrides = _parse_overrides(args.set)
    if args.data:
        overrides["data"] = args.data
    seeds = parse_seeds(args.seeds) if args.seeds else None
    shard = parse_shard(args.shard) if args.shard else None
    plan(names, args.preset, seed=args.seed, seeds=seeds)     # unknown presets fail here too
    resolve_device(args.device)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a folder")
    results = run_many(names, args.preset, out, seed=args.seed, seeds=seeds, jobs=args.jobs, shard_spec=shard,
                       resume=args.resume, overwrite=args.overwrite, threads=args.threads, device=args.device,
                       progress=not args.quiet, overrides=overrides)
    _print_summary(results, out)
    return 1 if any(r["status"] != "ok" for r in results) else 0


def _print_summary(results, out: Path) -> None:
    from .verdict import count

    n_err = sum(r["status"] != "ok" for r in results)
    claims = [c for r in results for c in r["claims"]]
    n = count(claims)
    print(f"{len(results)} experiments, {n['pass']}/{len(claims)} claims pass, {n['fail']} fail, "
          f"{n['inconclusive']} inconclusive{f', {n_err} experiment(s) FAILED TO RUN' if n_err else ''}. "
          f"Report: {out / 'report.html'}")


# ---------------------------------------------------------------------------------------------- report
def cmd_report(args) -> int:
    from .runner import merge_folders

    out = Path(args.out) if args.out else Path(args.dirs[0])
    results = merge_folders([Path(d) for d in args.dirs], out)
    _print_summary(results, out)
    return 0


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


def cmd_audit(args) -> int:
    import torch

    from .data import load_dataset
    from .io import atomic_write_json
    from .metrics import distance_summary, memorization_fraction, nn_ratio
    from .plotting import nearest_neighbor_figure

    train = load_dataset(args.train).x
    samples = load_samples(args.samples, like_shape=tuple(train.shape[1:]))
    if tuple(samples.shape[1:]) != tuple(train.shape[1:]):
        raise DataError(f"samples have shape {tuple(samples.shape[1:])} but the training set {tuple(train.shape[1:])}")
    ratios = nn_ratio(samples, train)
    frac = memorization_fraction(samples, train, threshold=args.threshold)
    summ = distance_summary(samples, train)
    out = Path(args.out)
    fig = nearest_neighbor_figure(samples, train, k=3, n_show=min(args.n_show, samples.shape[0]))
    from .io import atomic_write

    import matplotlib.pyplot as plt

    atomic_write(out / "nearest_neighbors.png", lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    res = {"train": args.train, "samples": args.samples, "n_samples": int(samples.shape[0]),
           "n_train": int(train.shape[0]), "threshold": args.threshold, "memorized_fraction": float(frac),
           "nn_ratio_median": float(torch.as_tensor(ratios).median()), "distance_summary": summ}
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
                        description="Run experiments (names or groups: chen, zhou, all) as (experiment, seed) jobs and "
                                    "write OUT/<experiment>/seed-<s>/ (results.json, figures), the seeds merged in "
                                    "OUT/<experiment>/results.json, and OUT/report.html over every experiment in OUT "
                                    "(an experiment that runs replaces only its own folder).")
    sp.add_argument("names", nargs="*", help="experiment names or groups (default: all)")
    sp.add_argument("--preset", default="quick",
                    help="quick (minutes on a CPU), paper (larger runs; GPU recommended), or an experiment's own "
                         "preset such as paper-celeba64 for zhou-small-data")
    sp.add_argument("--out", default="runs/reproduce", help="output folder")
    sp.add_argument("--seed", type=int, default=0,
                    help="first seed: an experiment that trains networks runs seeds SEED, SEED+1, ... (its preset's "
                         "default count); any other experiment runs SEED only")
    sp.add_argument("--seeds", default=None, metavar="S1,S2,...",
                    help="the seeds of the experiments that train networks, e.g. 0,1,2 (overrides --seed and the "
                         "preset's count; other experiments run the first)")
    sp.add_argument("--jobs", type=int, default=1, help="run the (experiment, seed) jobs in N local processes")
    sp.add_argument("--threads", type=int, default=None,
                    help="torch threads per job (default: all cores with --jobs 1, cores / N with --jobs N)")
    sp.add_argument("--shard", default=None, metavar="I/N",
                    help="run only shard I of N of the (experiment, seed) jobs (deterministic); merge the shards' "
                         "folders with `smoothscore report`")
    sp.add_argument("--resume", action="store_true",
                    help="keep the jobs already finished in --out with the same preset, config and seed")
    sp.add_argument("--overwrite", action="store_true", help="remove every result in --out first")
    sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                    help="override a config value of every selected experiment (JSON value)")
    sp.add_argument("--data", default=None, help="dataset of the experiments that train on one (zhou-small-data, "
                    "zhou-cost): digits or folder:PATH (same as --set data=...)")
    sp.add_argument("--quiet", action="store_true", help="no progress output")
    sp.set_defaults(func=cmd_reproduce)

    sp = sub.add_parser("report", help="merge result folders (shards, machines) into one report",
                        formatter_class=_fmt_help(),
                        description="Merge the (experiment, seed) results of one or more result folders into OUT and "
                                    "write OUT/report.html: the same report as a single run of all their jobs.")
    sp.add_argument("dirs", nargs="+", metavar="DIR", help="result folders written by `smoothscore reproduce`")
    sp.add_argument("--out", default=None, help="merged folder (default: the first DIR, merged in place)")
    sp.set_defaults(func=cmd_report)

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
