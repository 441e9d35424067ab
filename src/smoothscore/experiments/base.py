"""Experiment registry and the run context every experiment writes into.

An experiment is a function ``run(ctx: RunContext) -> None`` registered with :func:`experiment`. It reads its
settings from ``ctx.config`` (the chosen preset, merged with overrides), and records

* ``ctx.metric(name, value, ci=None)`` — numbers for ``results.json`` (``ci``: a bootstrap interval over samples,
  :mod:`smoothscore.metrics.bootstrap`);
* ``ctx.claim(id, statement, value, op, threshold, details="", *, ci=None, deterministic=False)`` — a claim with a
  threshold fixed *before* the run and a verdict computed from the measured value;
* ``ctx.finding(id, text, value=None)`` — an observation without a pass/fail threshold;
* ``ctx.save_figure(fig, name, caption)`` / ``ctx.add_artifact(path, caption)`` — figures (PNG) and other files.

:func:`run` is called once per seed (``ctx.seed``). An experiment that trains networks says so at registration
(``@experiment(..., trains=True)``): the runner (:mod:`smoothscore.runner`) then runs it over several seeds (the
preset's ``"seeds"`` count, or ``reproduce --seeds``) and merges its claims **by claim id** into per-seed values and
a pass / fail / inconclusive verdict (:mod:`smoothscore.verdict`); a claim of such an experiment that does not depend
on the seed (an exact score, a closed form) is marked ``deterministic=True`` and keeps one value. An experiment that
trains nothing runs one seed and each claim keeps one value. :mod:`smoothscore.report` writes the HTML report.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch

from ..device import intra_op_threads, resolve_dtype
from ..errors import ConfigError, UnknownNameError, did_you_mean
from ..io import atomic_write
from ..registry import Registry
from ..seeding import derive_seed, numpy_rng, torch_generator
from ..verdict import holds

experiments: Registry = Registry("experiment")


@dataclass
class Claim:
    id: str
    statement: str
    value: Any
    op: str
    threshold: Any
    passed: bool | None
    details: str = ""
    ci: list[float] | None = None  # bootstrap interval of the value over samples (one seed)
    deterministic: bool = False  # the value does not depend on the training seed


@dataclass
class Finding:
    id: str
    text: str
    value: Any = None


@dataclass
class Figure:
    path: str  # relative to the experiment folder
    caption: str
    kind: str = "image"  # "image" (png/gif) or "video" (mp4)


@dataclass
class ExperimentSpec:
    name: str
    fn: Callable[[RunContext], None]
    title: str
    groups: tuple
    presets: dict[str, dict[str, Any]]
    description: str = ""
    trains: bool = False
    cost: dict[str, float] = field(default_factory=dict)  # CPU seconds of one job per preset (scheduling only)
    threads: int | None = None  # intra-op CPU threads while it runs (None: the process setting)
    streams: tuple[str, ...] = ()  # the random streams it draws from (``family:*`` admits any member)

    def job_cost(self, preset: str) -> float:
        """Expected CPU seconds of one (experiment, seed) job at ``preset`` (0 when unknown)."""
        return float(self.cost.get(preset, 0.0))

    def n_seeds(self, preset: str) -> int:
        """Default number of seeds of ``preset``: its ``"seeds"`` key for an experiment that trains networks (3 when
        absent), else 1."""
        return int(self.presets[preset].get("seeds", 3)) if self.trains else 1


#: ``threads`` not given: the package policy's
_POLICY = object()


def _package_policy(fn) -> dict:
    """The ``POLICY`` dict of the package holding ``fn``'s module (empty when there is none)."""
    package = sys.modules.get(fn.__module__.rpartition(".")[0])
    return dict(getattr(package, "POLICY", None) or {})


def experiment(
    name: str,
    title: str,
    presets: dict[str, dict[str, Any]] | tuple[dict[str, Any], dict[str, Any]],
    *,
    trains: bool = False,
    cost: dict[str, float] | float | None = None,
    streams: tuple | list = (),
    description: str = "",
    groups: tuple | list | None = None,
    threads: int | None | object = _POLICY,
):
    """Register ``fn(ctx)`` as experiment ``name``.

    ``presets`` must contain ``quick`` (complete) and ``paper``; every preset other than ``quick`` lists only what
    differs from ``quick`` (it is merged over a copy of it). ``presets=(QUICK, PAPER)`` is short for
    ``{"quick": QUICK, "paper": PAPER}``. ``trains=True`` for an experiment that trains networks (run over seeds; a
    preset's ``"seeds"`` key is its default count). ``cost``: CPU seconds of one job (one seed) per preset (a
    number: the quick preset's), used only to start the longest jobs first. ``streams``: the names of the random
    streams ``fn`` draws (:meth:`RunContext.seed_for`); a name ending in ``:*`` admits every ``family:member``; a
    stream not declared raises :class:`ConfigError` when drawn. ``groups`` and ``threads`` (intra-op CPU threads
    while ``fn`` runs; small-tensor experiments take 1: threading buys nothing there and costs much on a shared
    machine) default to the ``POLICY`` dict of the experiment's package (``chen``: groups ``chen, paper-a`` and one
    thread; ``zhou``; ``zoo``)."""

    if isinstance(presets, tuple):
        presets = {"quick": presets[0], "paper": presets[1]}
    if isinstance(cost, int | float):
        cost = {"quick": float(cost)}

    def deco(fn):
        policy = _package_policy(fn)
        grp = policy.get("groups", ()) if groups is None else groups
        nthreads = policy.get("threads") if threads is _POLICY else threads
        missing = {"quick", "paper"} - set(presets)
        if missing:
            raise ValueError(f"experiment {name}: presets missing {sorted(missing)}")
        desc = description or (fn.__doc__ or "").strip()
        merged = {p: cfg if p == "quick" else {**presets["quick"], **cfg} for p, cfg in presets.items()}
        # every experiment that trains networks takes ``precision`` (RunContext.precision): float32 unless set
        full = {p: ({"precision": "float32"} | dict(cfg)) if trains else cfg for p, cfg in merged.items()}
        for p, cfg in full.items():
            if "seeds" in cfg and (not trains or int(cfg["seeds"]) < 1):
                raise ValueError(
                    f"experiment {name}: preset {p!r} has 'seeds' but "
                    + ("the experiment trains nothing" if not trains else "it is below 1")
                )
        declared = tuple(streams)

        @functools.wraps(fn)
        def run(ctx):
            ctx.streams = declared
            with intra_op_threads(nthreads):
                return fn(ctx)

        spec = ExperimentSpec(name, run, title, tuple(grp), full, desc, trains, dict(cost or {}), nthreads, declared)
        experiments.register(name, spec)
        return fn

    return deco


def check_precision(value: Any) -> str:
    """``value`` as a ``precision`` setting (float32 / float64); :class:`ConfigError` naming the key otherwise."""
    try:
        resolve_dtype(value)
    except ConfigError:
        raise ConfigError(f"precision must be float32 or float64; got {value!r}") from None
    return str(value)


@dataclass
class RunContext:
    name: str
    preset: str
    out_dir: Path
    config: dict[str, Any]
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    progress: bool = True
    metrics: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    intervals: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    #: random streams the experiment declared (``None``: any name); set by :func:`experiment`'s wrapper
    streams: tuple[str, ...] | None = None
    #: every stream name drawn so far
    streams_used: set[str] = field(default_factory=set)

    # -- randomness ----------------------------------------------------------
    def seed_for(self, name: str) -> int:
        """The seed of random stream ``name`` of this run (:func:`smoothscore.seeding.derive_seed`): the same for
        the same ``(ctx.seed, name)``, independent of every other stream and seed."""
        self._check_stream(name)
        return derive_seed(self.seed, name)

    def rng(self, name: str):
        """A numpy Generator on random stream ``name`` (:func:`smoothscore.seeding.numpy_rng`)."""
        self._check_stream(name)
        return numpy_rng(self.seed, name)

    def generator(self, name: str, device: torch.device | str | None = "cpu") -> torch.Generator:
        """A torch Generator on random stream ``name`` (seeded with :meth:`seed_for`)."""
        self._check_stream(name)
        return torch_generator(self.seed, name, device)

    def _check_stream(self, name: str) -> None:
        if not isinstance(name, str):
            raise ConfigError(f"a random stream is named by a string; got {name!r}")
        if self.streams is not None and not stream_declared(name, self.streams):
            raise ConfigError(
                f"experiment {self.name}: random stream {name!r} is not declared; declared: {', '.join(self.streams)}"
            )
        self.streams_used.add(name)

    def get(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)

    @property
    def precision(self) -> str:
        """Arithmetic of the run's trained networks and of what they produce (training, sampling, the feature
        classifier): config ``precision``, ``"float32"`` (default) or ``"float64"`` (~3x the CPU time). float32
        rounding differs between CPUs and thread counts and training amplifies it; float64 keeps trainings that are
        not chaotic machine-independent, a chaotic one amplifies even float64 rounding (docs/reports.md, "Verdicts
        on another machine")."""
        return check_precision(self.config.get("precision") or "float32")

    @property
    def dtype(self) -> torch.dtype:
        """:attr:`precision` as a torch dtype."""
        return resolve_dtype(self.precision)

    # -- recording -----------------------------------------------------------
    def metric(self, name: str, value: Any, ci: list[float] | None = None) -> Any:
        """Record a metric; ``ci`` an optional ``[lo, hi]`` bootstrap interval over samples."""
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().tolist() if value.numel() > 1 else float(value)
        self.metrics[name] = value
        if ci is not None:
            self.intervals[name] = [float(ci[0]), float(ci[1])]
        return value

    def claim(
        self,
        id: str,
        statement: str,
        value: Any,
        op: str,
        threshold: Any,
        details: str = "",
        *,
        ci: list[float] | None = None,
        deterministic: bool = False,
    ) -> Claim:
        """Record a claim ``value op threshold``; ``op`` in ``>=, >, <=, <, ==, is`` (``is`` for booleans).

        ``passed`` is this seed's verdict; a NaN or ``None`` value yields ``None`` (undecided). ``ci``: a bootstrap
        interval of the value over samples; ``deterministic=True``: the value does not depend on the seed (an exact
        score in an experiment that also trains networks) — merged over seeds it keeps one value. The verdict over
        seeds is :func:`smoothscore.verdict.merge_claims`'s.
        """
        if isinstance(value, torch.Tensor):
            value = float(value)
        passed = holds(value, op, threshold)
        c = Claim(
            id,
            statement,
            value,
            op,
            threshold,
            passed,
            details,
            None if ci is None else [float(ci[0]), float(ci[1])],
            bool(deterministic),
        )
        self.claims.append(c)
        return c

    def finding(self, id: str, text: str, value: Any = None) -> Finding:
        f = Finding(id, text, value)
        self.findings.append(f)
        return f

    def note(self, text: str) -> None:
        self.notes.append(text)

    def path(self, name: str) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / name

    def save_figure(self, fig, name: str, caption: str, dpi: int = 110) -> Path:
        """Save a matplotlib figure atomically as ``name`` (.png added if missing) and close it."""
        if not name.endswith(".png"):
            name += ".png"
        p = atomic_write(self.path(name), lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png"))
        plt.close(fig)
        self.figures.append(Figure(name, caption))
        return p

    def add_artifact(self, name: str, caption: str, kind: str = "image") -> None:
        """Register a file already written under ``out_dir`` (e.g. a GIF animation) as a figure."""
        self.figures.append(Figure(name, caption, kind))


def stream_declared(name: str, declared) -> bool:
    """Whether stream ``name`` is in ``declared`` (exactly, or as a member of a declared ``family:*``)."""
    return name in declared or (":" in name and name.split(":", 1)[0] + ":*" in declared)


#: modules that failed to import (name -> error line); one broken experiment must not stop the others
IMPORT_ERRORS: dict[str, str] = {}


def load_all() -> Registry:
    """Import every module of :mod:`smoothscore.experiments` and of its packages (``chen``, ``zhou``, ``zoo``) so
    that each registers itself. A module that fails to import is recorded in :data:`IMPORT_ERRORS` (shown by
    ``smoothscore list`` and ``reproduce``; a test asserts there are none) instead of breaking every run."""
    from .. import experiments as pkg  # the package holding this module: importable only once it has loaded

    prefix = f"{pkg.__name__}."
    for mod in pkgutil.walk_packages(pkg.__path__, prefix, onerror=lambda name: None):
        short = mod.name[len(prefix) :]
        if not mod.ispkg and short != "base" and not short.rsplit(".", 1)[-1].startswith("_"):
            try:
                importlib.import_module(mod.name)
            except Exception as e:  # noqa: BLE001 - reported, not hidden
                IMPORT_ERRORS[short] = f"{type(e).__name__}: {e}"
    return experiments


def resolve_names(names: list[str]) -> list[str]:
    """Expand experiment names and group names (``chen``, ``zhou``, ``zoo``, ``all``) into experiment names, in
    order. No names means both papers (``chen`` and ``zhou``, the main job); ``all`` adds the ``zoo`` beyond them."""
    reg = load_all()
    if not names:
        names = ["chen", "zhou"]
    out: list[str] = []
    for n in names:
        if n == "all":
            hits = reg.names()
        elif n in reg:
            hits = [n]
        else:
            hits = [k for k, spec in reg.items() if n in spec.groups]
            if not hits:
                groups = sorted({g for _, s in reg.items() for g in s.groups})

                raise UnknownNameError(
                    f"unknown experiment or group {n!r}{did_you_mean(n, reg.names() + groups)}; "
                    f"groups: {', '.join(groups)}; "
                    f"experiments: {', '.join(reg.names())}"
                )
        out.extend(h for h in hits if h not in out)
    return out
