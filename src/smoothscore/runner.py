"""Run experiments as (experiment, seed) jobs: seeds, shards, local processes, resume; merge the seeds of each
experiment into one ``results.json``.

Layout of an output folder ``OUT`` (every job writes only its own folder, so shards and resumed runs share it)::

    OUT/<experiment>/seed-<s>/results.json   one job: config, seed, versions, device, threads, metrics, claims
    OUT/<experiment>/seed-<s>/*.png|gif      its figures
    OUT/<experiment>/results.json            the seeds merged by claim id (values, mean, spread, verdict)
    OUT/report.html, OUT/summary.json        every experiment present in OUT (:mod:`smoothscore.report`)

* An experiment registered with ``trains=True`` runs over seeds: ``seeds`` when given, else ``seed, seed + 1, ...``
  (the preset's ``"seeds"`` count); any other experiment runs the first seed only.
* ``shard=(i, n)`` keeps jobs ``i - 1, i - 1 + n, ...`` of the ordered job list (experiments in the given order,
  seeds ascending): the ``n`` shards partition the jobs, the same way on every machine.
* ``jobs=N`` runs jobs in ``N`` local processes (``spawn``), each with ``threads`` torch threads (default
  ``cpu_count // N``).
* ``resume=True`` skips a job whose ``results.json`` exists with status ok and the same preset, config and seed
  (a job folder is written with its ``results.json`` last and atomically, so a killed job is simply re-run);
  ``overwrite=True`` first removes every result in ``OUT``. Otherwise an experiment that runs replaces its own
  folder and leaves the other experiments' results in ``OUT`` — the report lists them all.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .device import describe_device, resolve_device
from .errors import ConfigError, DataError, SmoothScoreError
from .experiments.base import RunContext, load_all
from .io import atomic_write_json, to_jsonable
from .merge import JOB_PREFIX, merge_experiment
from .provenance import cpu_seconds, versions
from .report import write_report


@dataclass(frozen=True)
class Job:
    experiment: str
    seed: int
    seeds: tuple[int, ...]  # the experiment's whole seed plan (recorded; the merge uses it)


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]`` (distinct non-negative integers)."""
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip() != ""]
    except ValueError:
        raise ConfigError(f"--seeds expects comma-separated integers such as 0,1,2; got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds expects distinct non-negative integers such as 0,1,2; got {text!r}")
    return seeds


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)`` with ``1 <= i <= n``."""
    try:
        i, n = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise ConfigError(f"--shard expects I/N such as 1/4; got {text!r}") from None
    if not 1 <= i <= n:
        raise ConfigError(f"--shard I/N needs 1 <= I <= N; got {text!r}")
    return i, n


def experiment_config(name: str, preset: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The preset merged with ``overrides`` (the ``"seeds"`` count is the runner's, not the experiment's)."""
    spec = load_all().get(name)
    if preset not in spec.presets:
        raise ConfigError(f"experiment {name!r} has no preset {preset!r}; presets: {', '.join(spec.presets)}")
    config = {k: v for k, v in spec.presets[preset].items() if k != "seeds"}
    config.update(overrides or {})
    if not spec.trains:  # nothing is trained: a run-wide precision (reproduce --precision) does not apply
        config.pop("precision", None)
    return to_jsonable(config)


def plan(names: Sequence[str], preset: str, *, seed: int = 0, seeds: Sequence[int] | None = None) -> list[Job]:
    """Every (experiment, seed) job, experiments in the given order, seeds ascending."""
    reg = load_all()
    out: list[Job] = []
    for n in names:
        spec = reg.get(n)
        if preset not in spec.presets:
            raise ConfigError(f"experiment {n!r} has no preset {preset!r}; presets: {', '.join(spec.presets)}")
        s = sorted(seeds) if seeds else [int(seed) + k for k in range(spec.n_seeds(preset))]
        s = s if spec.trains else s[:1]
        out.extend(Job(n, x, tuple(s)) for x in s)
    return out


def shard(jobs: Sequence[Job], i: int, n: int) -> list[Job]:
    """Jobs ``i - 1, i - 1 + n, ...`` (1-based shard ``i`` of ``n``)."""
    return [j for k, j in enumerate(jobs) if k % n == i - 1]


def longest_first(jobs: Sequence[Job], preset: str) -> list[Job]:
    """``jobs`` in the order a pool of processes should start them: by the experiments' cost per job
    (``@experiment(cost=...)``) descending, then training experiments before the others, else as planned. Greedy
    longest-processing-time order: no long job starts last, so the idle tail of the other processes stays short."""
    reg = load_all()
    return sorted(jobs, key=lambda j: (-reg.get(j.experiment).job_cost(preset), not reg.get(j.experiment).trains))


def job_dir(out: Path, job: Job) -> Path:
    return Path(out) / job.experiment / f"{JOB_PREFIX}{job.seed}"


def run_experiment(
    name: str,
    preset: str,
    out_dir: Path,
    *,
    seed: int = 0,
    device="auto",
    progress: bool = True,
    overrides: dict[str, Any] | None = None,
    folder: Path | None = None,
    seeds: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Run one registered experiment for one seed and write ``results.json`` into ``folder`` (default
    ``out_dir/name``); returns the results dict. An experiment bug is recorded (status ``error``), bad input
    (:class:`~smoothscore.errors.SmoothScoreError`) is raised after removing the folders this call created."""
    spec = load_all().get(name)
    config = experiment_config(name, preset, overrides)
    dev = resolve_device(device)
    folder = Path(folder) if folder is not None else Path(out_dir) / name
    ctx = RunContext(name=name, preset=preset, out_dir=folder, config=config, seed=seed, device=dev, progress=progress)
    created = [d for d in (folder.parent.parent, folder.parent, folder) if not d.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    status, error = "ok", None
    t0, c0 = time.time(), cpu_seconds()
    torch.manual_seed(seed)
    try:
        spec.fn(ctx)
    except SmoothScoreError:  # bad input: leave no partial output behind (only folders this run created)
        for d in reversed(created):
            shutil.rmtree(d, ignore_errors=True)
        raise
    except Exception as e:  # an experiment bug must not lose the other experiments' results
        status, error = "error", "".join(traceback.format_exception(type(e), e, e.__traceback__))
    res = {
        "experiment": name,
        "title": spec.title,
        "groups": list(spec.groups),
        "description": spec.description,
        "trains": spec.trains,
        "preset": preset,
        "config": config,
        "seed": seed,
        "seeds": list(seeds) if seeds else [seed],
        "device": describe_device(dev),
        "threads": torch.get_num_threads(),
        "versions": versions(),
        "command": " ".join(sys.argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t0)),
        "duration_s": round(time.time() - t0, 2),
        "cpu_s": round(cpu_seconds() - c0, 2),
        "status": status,
        "error": error,
        "metrics": ctx.metrics,
        "intervals": ctx.intervals,
        "claims": [asdict(c) for c in ctx.claims],
        "findings": [asdict(f) for f in ctx.findings],
        "figures": [asdict(f) for f in ctx.figures],
        "notes": ctx.notes,
    }
    res = to_jsonable(res)
    atomic_write_json(folder / "results.json", res)
    return res


def _run_job(
    job: Job, preset: str, out: Path, kw: dict[str, Any], threads: int | None, modules: Sequence[str] = ()
) -> dict[str, Any]:
    """One job in this process (also the entry point of ``--jobs`` worker processes)."""
    for m in modules:  # experiments registered outside smoothscore.experiments (plugins, tests)
        importlib.import_module(m)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        d = job_dir(out, job)
        shutil.rmtree(d, ignore_errors=True)  # a killed earlier attempt leaves no stale files behind
        return run_experiment(job.experiment, preset, out, seed=job.seed, folder=d, seeds=job.seeds, **kw)
    finally:
        torch.set_num_threads(before)


def _worker_init() -> None:
    """A ``--jobs`` worker dies with its parent (Linux ``PR_SET_PDEATHSIG``): a killed ``reproduce`` leaves no
    orphan still writing into the folder that ``--resume`` will use."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))
    except (OSError, AttributeError):  # not Linux: orphans finish their current job, then exit
        pass


def _finished(out: Path, job: Job, preset: str, config: dict[str, Any]) -> bool:
    p = job_dir(out, job) / "results.json"
    try:
        r = json.loads(p.read_text())
    except (OSError, ValueError):
        return False
    return (
        r.get("status") == "ok"
        and r.get("preset") == preset
        and r.get("config") == config
        and r.get("seed") == job.seed
    )


def _is_experiment_dir(d: Path) -> bool:
    return d.is_dir() and ((d / "results.json").exists() or any(d.glob(f"{JOB_PREFIX}*/results.json")))


def clean(out: Path) -> None:
    """Remove every result in ``out`` (experiment folders, report, summary); other files are left alone."""
    out = Path(out)
    if not out.is_dir():
        return
    for d in out.iterdir():
        if _is_experiment_dir(d):
            shutil.rmtree(d)
    for f in ("report.html", "summary.json"):
        (out / f).unlink(missing_ok=True)


def run_many(
    names: list[str],
    preset: str,
    out: Path,
    *,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    jobs: int = 1,
    shard_spec: tuple[int, int] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    threads: int | None = None,
    device="auto",
    progress: bool = True,
    overrides: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run the (experiment, seed) jobs of ``names`` into ``out``, merge each experiment's seeds and write the report
    of every experiment in ``out``; returns the merged results of ``names`` (see the module docstring)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"output folder {out} exists and is not a folder")
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    if jobs < 1 or (threads is not None and threads < 1):
        raise ConfigError("--jobs and --threads must be at least 1")
    all_jobs = plan(names, preset, seed=seed, seeds=seeds)
    mine = shard(all_jobs, *shard_spec) if shard_spec else all_jobs
    configs = {n: experiment_config(n, preset, overrides) for n in names}
    if overwrite:
        clean(out)
    elif not resume and not shard_spec:  # a plain run replaces the folders of the experiments it runs
        for n in names:
            shutil.rmtree(out / n, ignore_errors=True)
    todo = [j for j in mine if not (resume and _finished(out, j, preset, configs[j.experiment]))]
    say = (lambda m: print(f"[smoothscore] {m}", file=sys.stderr, flush=True)) if progress else (lambda m: None)
    if len(todo) < len(mine):
        say(f"resume: {len(mine) - len(todo)} finished job(s) kept")
    kw = dict(device=device, progress=progress and jobs == 1, overrides=overrides)
    reg = load_all()
    modules = sorted({reg.get(j.experiment).fn.__module__ for j in todo} - {"__main__"})
    if jobs > 1 and threads is None:
        threads = max(1, (os.cpu_count() or 1) // jobs)

    def report(job: Job, r: dict[str, Any]) -> None:
        v = [c["passed"] for c in r["claims"]]
        say(
            f"  {job.experiment} seed {job.seed}: {r['status']} in {r['duration_s']:.1f}s (cpu {r['cpu_s']:.0f}s, "
            f"{r['threads']} threads); claims holding {sum(x is True for x in v)}/{len(v)}"
        )

    if jobs == 1 or len(todo) <= 1:
        for j in todo:
            say(f"running {j.experiment} seed {j.seed} (preset {preset}) ...")
            report(j, _run_job(j, preset, out, kw, threads))
    else:
        say(f"running {len(todo)} jobs in {jobs} processes, {threads} torch thread(s) each ...")
        first = longest_first(todo, preset)
        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init
        ) as pool:
            futs = {pool.submit(_run_job, j, preset, out, kw, threads, modules): j for j in first}
            try:
                for f in as_completed(futs):
                    report(futs[f], f.result())
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    plans = {j.experiment: j.seeds for j in all_jobs}
    merged = {n: merge_experiment(out / n, seeds=plans[n], preset=preset, config=configs[n]) for n in names}
    others = [d.name for d in sorted(out.iterdir()) if _is_experiment_dir(d) and d.name not in merged]
    if others:
        say(f"the report also lists {len(others)} experiment(s) already in {out}: {', '.join(others)}")
    write_report(out)
    return [merged[n] for n in names if merged[n] is not None]


def merge_folders(dirs: Sequence[Path], out: Path) -> list[dict[str, Any]]:
    """Copy the job folders of every result folder in ``dirs`` into ``out`` (a later folder's job replaces an
    earlier one's), merge each experiment and write the report of ``out``; returns the merged results."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"output folder {out} exists and is not a folder")
    found, touched = 0, set()
    for d in map(Path, dirs):
        if not d.is_dir():
            raise DataError(f"result folder not found: {d}")
        for p in sorted(d.glob(f"*/{JOB_PREFIX}*/results.json")):
            found += 1
            src, dst = p.parent, out / p.parent.parent.name / p.parent.name
            touched.add(dst.parent)
            if src.resolve() != dst.resolve():
                shutil.rmtree(dst, ignore_errors=True)
                shutil.copytree(src, dst)
    if not found:
        raise DataError(f"no experiment results under {', '.join(map(str, dirs))}")
    for e in sorted(touched):
        merge_experiment(e)
    return write_report(out)
