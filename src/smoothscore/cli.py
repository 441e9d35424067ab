"""The ``smoothscore`` command.

Subcommands: ``list``, ``reproduce``, ``report``, ``audit``, ``train``, ``sample`` (``train`` lives in
:mod:`smoothscore.cli_train`, ``sample`` in :mod:`smoothscore.cli_sample`). User errors print one line and exit with
code 2, never a traceback.

Started by ``torchrun`` (``torchrun --nproc_per_node N -m smoothscore ...``), every command runs in a process group
(:func:`smoothscore.distributed.process_group`): training is data-parallel, nearest-neighbour searches are sharded
across the ranks, and only rank 0 writes outputs and prints.

Imports of the library sit inside the command functions on purpose: ``smoothscore --help``, ``list`` and argument
errors answer without importing torch (a few seconds), and each command loads only what it uses.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from .cli_train import _fmt, add_command
from .errors import ConfigError, DataError, SmoothScoreError, did_you_mean

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage + message."""

    def error(self, message: str):  # noqa: D401 - argparse API
        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:  # argparse's own choices (--model, --conditioning, ...): add the closest name
            message += did_you_mean(m.group(1), re.findall(r"'([^']*)'", m.group(2)))
        self.exit(EXIT_USAGE, f"smoothscore: error: {message} (see --help)\n")


def _parse_overrides(items: list[str]) -> dict:
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
        seeds = (
            f" (trains networks: {spec.n_seeds('quick')} seeds quick, {spec.n_seeds('paper')} paper)"
            if spec.trains
            else ""
        )
        print(f"{name:<{width}}  [{','.join(spec.groups)}]  {spec.title}{seeds}")
    for mod, err in IMPORT_ERRORS.items():
        print(f"warning: experiment module {mod} failed to import: {err}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------- reproduce
def cmd_reproduce(args) -> int:
    from ._checks import check_overrides, check_preset
    from .device import resolve_device
    from .distributed import is_main_process, rank_output_dir
    from .experiments.base import IMPORT_ERRORS, check_precision, load_all, resolve_names
    from .runner import parse_seeds, parse_shard, plan, run_many

    names = resolve_names(args.names)  # unknown names fail here, before anything is written
    for mod, err in IMPORT_ERRORS.items():
        print(f"warning: experiment module {mod} failed to import: {err}", file=sys.stderr)
    reg = load_all()
    for n in names:
        check_preset(reg.get(n).presets, args.preset, n)
    # unknown or ill-typed --set keys fail here, before anything is written
    overrides = check_overrides({n: reg.get(n).presets[args.preset] for n in names}, _parse_overrides(args.set))
    if args.data:
        overrides["data"] = args.data
    if args.precision:
        overrides["precision"] = args.precision
    if "precision" in overrides:  # checked here so that a bad value exits 2 before any job starts
        check_precision(overrides["precision"])
    seeds = parse_seeds(args.seeds) if args.seeds else None
    shard = parse_shard(args.shard) if args.shard else None
    plan(names, args.preset, seed=args.seed, seeds=seeds)
    resolve_device(args.device)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a folder")
    with rank_output_dir(out) as where:  # under torchrun only rank 0 writes into --out
        # the options that pass unchanged from the command line to run_many
        same = {k: getattr(args, k) for k in ("seed", "jobs", "resume", "overwrite", "threads", "device")}
        results = run_many(
            names,
            args.preset,
            where,
            seeds=seeds,
            shard_spec=shard,
            progress=not args.quiet,
            overrides=overrides,
            **same,
        )
    if is_main_process():
        _print_summary(results, out)
    return 1 if any(r["status"] != "ok" for r in results) else 0


def _print_summary(results, out: Path) -> None:
    from .verdict import count

    n_err = sum(r["status"] != "ok" for r in results)
    claims = [c for r in results for c in r["claims"]]
    n = count(claims)
    print(
        f"{len(results)} experiments, {n['pass']}/{len(claims)} claims pass, {n['fail']} fail, "
        f"{n['inconclusive']} inconclusive{f', {n_err} experiment(s) FAILED TO RUN' if n_err else ''}. "
        f"Report: {out / 'report.html'}"
    )


# ---------------------------------------------------------------------------------------------- report
def cmd_report(args) -> int:
    from .runner import merge_folders

    out = Path(args.out) if args.out else Path(args.dirs[0])
    results = merge_folders([Path(d) for d in args.dirs], out)
    _print_summary(results, out)
    return 0


# ----------------------------------------------------------------------------------------------- audit
def cmd_audit(args) -> int:
    import torch

    if (args.samples is None) == (args.model is None):
        raise ConfigError("audit needs exactly one of --samples and --model")
    if args.model is not None:
        from .audit_model import cmd_audit_model

        args.diffusers = args.model.startswith("diffusers:")
        args.model = args.model.removeprefix("diffusers:")
        args.data = None
        return cmd_audit_model(args)

    from .data.loading import load_samples, load_train
    from .distributed import is_main_process
    from .io import atomic_savefig, atomic_write_json, check_output_dir
    from .metrics import memorization_audit
    from .plotting import nearest_neighbor_figure
    from .search import NeighborIndex

    out = check_output_dir(Path(args.out), "--out")
    if not 0 < args.threshold <= 1:
        raise ConfigError(f"--threshold must be in (0, 1]; got {args.threshold}")
    train = load_train(args.train)
    # never resized or converted silently: a different shape is refused unless --resize, which then says what it did
    samples, note = load_samples(args.samples, tuple(train.shape[1:]), resize=args.resize)
    if note and is_main_process():
        print(note)
    index = NeighborIndex(train)  # sharded across ranks under torchrun
    audit = memorization_audit(samples, index, threshold=args.threshold, k=3)
    frac = audit["memorized_fraction"]
    res = {
        "train": args.train,
        "samples": args.samples,
        "n_samples": int(samples.shape[0]),
        "n_train": int(train.shape[0]),
        "threshold": args.threshold,
        "memorized_fraction": frac,
        "nn_ratio_median": float(torch.as_tensor(audit["ratios"]).median()),
        "distance_summary": audit["distance_summary"],
        "resized": note,
    }
    if not is_main_process():  # under torchrun only rank 0 writes
        return 0
    import matplotlib.pyplot as plt

    fig = nearest_neighbor_figure(
        samples, train, k=3, n_show=min(max(args.n_show, 1), samples.shape[0]), neighbors=(audit["dist"], audit["idx"])
    )
    try:
        atomic_savefig(out / "nearest_neighbors.png", fig, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    atomic_write_json(out / "audit.json", res)
    print(
        f"memorized fraction {frac:.3f} ({int(round(frac * samples.shape[0]))}/{samples.shape[0]} samples with "
        f"d(NN1)/d(NN2) < {args.threshold:.3g}); median ratio {res['nn_ratio_median']:.3f}; "
        f"figure {out / 'nearest_neighbors.png'}"
    )
    return 0


# ------------------------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="smoothscore",
        description="Smoothed empirical scores, memorization and interpolation in "
        "diffusion models (Chen 2025; Zhou, Zhang, Wright 2026).",
        formatter_class=_fmt(),
    )
    p.add_argument("--version", action="version", version="smoothscore 0.1.0")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    sub.required = True

    sp = add_command(sub, "list", "list experiments, one line each")
    sp.set_defaults(func=cmd_list)

    sp = add_command(
        sub,
        "reproduce",
        "run experiments and write a report",
        description="Run experiments (names or groups: chen, zhou, all) as (experiment, seed) jobs and "
        "write OUT/<experiment>/seed-<s>/ (results.json, figures), the seeds merged in "
        "OUT/<experiment>/results.json, and OUT/report.html over every experiment in OUT "
        "(an experiment that runs replaces only its own folder).",
    )
    sp.add_argument("names", nargs="*", help="experiment names or groups (default: all)")
    sp.add_argument(
        "--preset",
        default="quick",
        help="quick (minutes on a CPU), paper (larger runs; GPU recommended), or an experiment's own "
        "preset such as paper-celeba64 for zhou-small-data",
    )
    sp.add_argument("--out", default="runs/reproduce", help="output folder")
    sp.add_argument(
        "--seed",
        type=int,
        default=0,
        help="first seed: an experiment that trains networks runs seeds SEED, SEED+1, ... (its preset's "
        "default count); any other experiment runs SEED only",
    )
    sp.add_argument(
        "--seeds",
        default=None,
        metavar="S1,S2,...",
        help="the seeds of the experiments that train networks, e.g. 0,1,2 (overrides --seed and the "
        "preset's count; other experiments run the first)",
    )
    sp.add_argument("--jobs", type=int, default=1, help="run the (experiment, seed) jobs in N local processes")
    sp.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per job (default: all cores with --jobs 1, cores / N with --jobs N)",
    )
    sp.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="run only shard I of N of the (experiment, seed) jobs (deterministic); merge the shards' "
        "folders with `smoothscore report`",
    )
    sp.add_argument(
        "--resume",
        action="store_true",
        help="keep the jobs already finished in --out with the same preset, config and seed",
    )
    sp.add_argument("--overwrite", action="store_true", help="remove every result in --out first")
    sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    sp.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="override a config value of every selected experiment (JSON value)",
    )
    sp.add_argument(
        "--data",
        default=None,
        help="dataset of the experiments that train on one (zhou-small-data, "
        "zhou-cost): digits or folder:PATH (same as --set data=...)",
    )
    sp.add_argument(
        "--precision",
        choices=("float32", "float64"),
        default=None,
        help="arithmetic of the trained networks (default: the preset's, float32); float64 (~3x the CPU time) "
        "makes non-chaotic trainings machine-independent (docs/reports.md; same as --set precision=...)",
    )
    sp.add_argument("--quiet", action="store_true", help="no progress output")
    sp.set_defaults(func=cmd_reproduce)

    sp = add_command(
        sub,
        "report",
        "merge result folders (shards, machines) into one report",
        description="Merge the (experiment, seed) results of one or more result folders into OUT and "
        "write OUT/report.html: the same report as a single run of all their jobs.",
    )
    sp.add_argument("dirs", nargs="+", metavar="DIR", help="result folders written by `smoothscore reproduce`")
    sp.add_argument("--out", default=None, help="merged folder (default: the first DIR, merged in place)")
    sp.set_defaults(func=cmd_report)

    sp = add_command(sub, "audit", "memorization audit of samples against a training set")
    sp.add_argument("--train", required=True, help="training data: digits, digits16, folder:PATH, FILE.npz/.npy")
    sp.add_argument("--samples", default=None, help="samples: FILE.npz/.npy or a folder of images")
    sp.add_argument(
        "--model",
        default=None,
        help="instead of --samples: a `smoothscore train` folder or diffusers:PATH; it is sampled and audit.html "
        "written (fraction with its interval, d1/d2 histogram, most-copied training images)",
    )
    sp.add_argument("--n", type=int, default=64, help="--model: samples drawn")
    sp.add_argument("--steps", type=int, default=32, help="--model: sampler steps")
    sp.add_argument("--seed", type=int, default=0, help="--model: sampling seed")
    sp.add_argument("--sigma-max", type=float, default=None, help="--model: initial noise (default: the trained max)")
    sp.add_argument("--device", default="auto", help="--model: auto, cpu, cuda")
    sp.add_argument("--threshold", type=float, default=1 / 3, help="memorized when d(NN1)/d(NN2) < threshold")
    sp.add_argument("--out", default="runs/audit", help="output folder (audit.json, nearest_neighbors.png)")
    sp.add_argument("--n-show", type=int, default=8, help="samples shown in the nearest-neighbour figure")
    sp.add_argument(
        "--resize",
        action="store_true",
        help="resize samples whose shape differs from the training "
        "set's (bicubic; RGB <-> grey), and say what was resized; without it they are refused",
    )
    sp.set_defaults(func=cmd_audit)

    try:
        from .cli_sample import add_sample_parser
        from .cli_train import add_train_parser
    except ImportError:  # pragma: no cover - during development only
        pass
    else:
        add_train_parser(sub)
        add_sample_parser(sub)
    return p


def _fail(message: str) -> int:
    """Print one line (messages quoting other libraries' errors may hold newlines) and return exit code 2."""
    line = " ".join(message.split())
    print(f"smoothscore: error: {line}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # usage errors (one line, see _Parser.error), --help, --version: return the code
        return int(e.code or 0) if not isinstance(e.code, str) else EXIT_USAGE
    try:
        from .distributed import process_group

        with process_group() as (rank, _):  # torchrun: gloo on CPU, NCCL on CUDA; torn down at the end
            if rank and hasattr(args, "quiet"):
                args.quiet = True
            return int(args.func(args) or 0)
    except SmoothScoreError as e:
        return _fail(str(e))
    except FileNotFoundError as e:
        return _fail(f"file not found: {e.filename or e}")
    except OSError as e:  # the environment (permissions, disk, ...), not a bug: one line too
        return _fail(f"{e.strerror or e}{f': {e.filename}' if e.filename else ''}")
    except KeyboardInterrupt:
        print("smoothscore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
