"""Mutation testing of the core modules with cosmic-ray (issue 18): per-module kill rates and a survivors report.

For every module of ``mutation/modules.toml`` it makes a cosmic-ray session (``cosmic-ray init``: one mutant per
operator occurrence), keeps the operators listed there, marks the equivalent mutants of
``mutation/equivalent.toml`` (not counted), optionally keeps a deterministic sample (``--sample N``: the N mutants
of smallest SHA-256 of ``module:operator:occurrence:line text``, so the same code gives the same sample on every
machine), and runs each remaining mutant against that module's own tests (``pytest -x``). cosmic-ray mutates files
in place, so everything runs in throw-away copies of ``src/`` and ``tests/`` under ``--work`` (one per job); the
working tree is never touched.

Outputs in ``--out``: ``kill_rates.md`` (the table of docs/mutation.md), ``survivors.md`` (each surviving mutant:
module, line, operator, diff), ``results.json``. Exit status 1 when a module's kill rate (killed / (killed +
survived); a mutant that breaks or hangs the tests counts as killed, as in cosmic-ray) is below ``--min-kill``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import toml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sample  # noqa: E402  (mutation/sample.py, beside this script)

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "mutation"


def load_plan(path: Path = HERE / "modules.toml") -> tuple[list[re.Pattern], dict]:
    cfg = toml.loads(path.read_text())
    ops = [re.compile(p) for p in cfg["operators"]["include"]]
    return ops, cfg["modules"]


def load_equivalent(path: Path = HERE / "equivalent.toml") -> list[dict]:
    return toml.loads(path.read_text()).get("mutant", []) if path.exists() else []


def _line(tree: Path, module: str, lineno: int) -> str:
    lines = (tree / "src" / "smoothscore" / module).read_text().splitlines()
    return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""


def _key(module: str, op: str, occ: int, text: str) -> str:
    return hashlib.sha256(f"{module}:{op}:{occ}:{text}".encode()).hexdigest()


def _mutated_line(tree: Path, module: str, op: str, occurrence: int, lineno: int) -> str:
    """The stripped source line ``lineno`` of ``module`` after cosmic-ray's mutation ``(op, occurrence)``."""
    from cosmic_ray.mutating import mutate_code
    from cosmic_ray.plugins import get_operator

    code = mutate_code((tree / "src" / "smoothscore" / module).read_text(), get_operator(op)(), occurrence)
    lines = (code or "").splitlines()
    return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""


def _is_equivalent(eq: list[dict], module: str, op: str, text: str, mutated=None) -> str | None:
    """The reason of the first equivalent.toml entry matching module, operator and stripped line (and, when the
    entry has ``mutated``, the stripped mutated line, from ``mutated()``, for one of several mutants of a line)."""
    for e in eq:
        if e["module"] == module and re.fullmatch(e["operator"], op) and e["line"].strip() == text:
            if "mutated" not in e or (mutated is not None and mutated() == e["mutated"].strip()):
                return e["reason"]
    return None


def make_tree(work: Path, name: str) -> Path:
    tree = work / name
    shutil.rmtree(tree, ignore_errors=True)
    ign = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
    shutil.copytree(ROOT / "src", tree / "src", ignore=ign)
    shutil.copytree(ROOT / "tests", tree / "tests", ignore=ign)
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def prepare_module(tree: Path, module: str, spec: dict, ops, eq, timeout: float) -> dict:
    """``cosmic-ray init`` of one module in ``tree``, operators and functions filtered, equivalents marked: the
    session state (candidates as ``(sample key, job id)``) for :func:`execute_module`."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    tests = [f"tests/{t}" for t in spec["tests"]]
    missing = [t for t in tests if not (tree / t).exists()]
    if missing:
        raise SystemExit(f"mutation/modules.toml: {module}: no such test file(s) {missing}")
    slug = module.replace("/", "_").replace(".py", "")
    cfg_path, db = tree / f"{slug}.toml", tree / f"{slug}.sqlite"
    db.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", *tests]
    cfg = {
        "module-path": f"src/smoothscore/{module}",
        "timeout": float(timeout),
        "excluded-modules": [],
        "test-command": " ".join(cmd),
        "distributor": {"name": "local"},
    }
    cfg_path.write_text(toml.dumps({"cosmic-ray": cfg}))
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    init = [sys.executable, "-m", "cosmic_ray.cli", "init", str(cfg_path), str(db)]
    subprocess.run(init, cwd=tree, env=env, check=True)
    funcs = set(spec.get("functions", []))
    counts = {"mutants": 0, "run": 0, "equivalent": 0, "killed": 0, "survived": 0, "incompetent": 0, "timeout": 0}
    equivalents, keep, skip = [], [], []
    with use_db(str(db), WorkDB.Mode.open) as wdb:
        for item in wdb.work_items:
            m = item.mutations[0]
            op = m.operator_name
            outside = funcs and (m.definition_name or "").split(".")[-1] not in funcs
            if outside or not any(p.fullmatch(op) for p in ops):
                skip.append(item.job_id)
                continue
            counts["mutants"] += 1
            text = _line(tree, module, m.start_pos[0])
            key = _key(module, op, m.occurrence, text)
            occ, ln = m.occurrence, m.start_pos[0]
            why = _is_equivalent(eq, module, op, text, lambda: _mutated_line(tree, module, op, occ, ln))  # noqa: B023
            if why:
                counts["equivalent"] += 1
                equivalents.append({"line": m.start_pos[0], "operator": op, "text": text, "reason": why, "key": key})
                skip.append(item.job_id)
                continue
            keep.append((key, item.job_id))
        if skip:
            wdb.set_multiple_results(skip, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
    keep.sort()
    return {
        "module": module,
        "spec": spec,
        "tree": tree,
        "cfg": cfg_path,
        "db": db,
        "env": env,
        "counts": counts,
        "equivalents": equivalents,
        "candidates": keep,
    }


def execute_module(st: dict, chosen: set[str] | None) -> dict:
    """Run the candidates of a prepared session (only the job ids in ``chosen`` when given): counts, survivors."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    tree, cfg_path, db, env, counts = st["tree"], st["cfg"], st["db"], st["env"], st["counts"]
    module, spec, equivalents = st["module"], st["spec"], st["equivalents"]
    keep = [j for _, j in st["candidates"] if chosen is None or j in chosen]
    drop = [j for _, j in st["candidates"] if chosen is not None and j not in chosen]
    if drop:
        with use_db(str(db), WorkDB.Mode.open) as wdb:
            wdb.set_multiple_results(drop, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
    t0 = time.time()
    if keep:
        subprocess.run(
            [sys.executable, "-m", "cosmic_ray.cli", "exec", str(cfg_path), str(db)],
            cwd=tree,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    survivors = []
    with use_db(str(db), WorkDB.Mode.open) as wdb:
        for item, res in wdb.completed_work_items:
            if res.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            counts["run"] += 1
            outcome = res.test_outcome.value if res.test_outcome is not None else "incompetent"
            counts[outcome] += 1
            counts["timeout"] += outcome == "killed" and res.output == "timeout"
            if outcome == "survived":
                m = item.mutations[0]
                survivors.append({"line": m.start_pos[0], "operator": m.operator_name, "diff": res.diff or ""})
    done = counts["killed"] + counts["incompetent"]
    rate = done / (done + counts["survived"]) if done + counts["survived"] else None
    return {
        "module": module,
        **counts,
        "kill_rate": rate,
        "seconds": round(time.time() - t0, 1),
        "survivors": sorted(survivors, key=lambda s: s["line"]),
        "equivalents": equivalents,
        "tests": spec["tests"],
    }


def write_reports(results: list[dict], out: Path, command: str, min_kill: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    cols = ["module", "mutants", "equivalent", "run", "killed", "survived", "kill rate", "seconds"]
    rows = sample.table_head(command, cols, ["---"] + ["---:"] * 7)
    for r in results:
        rows.append(
            f"| `{r['module']}` | {r['mutants']} | {r['equivalent']} | {r['run']} | "
            f"{r['killed'] + r['incompetent']} | {r['survived']} | {sample.rate_cell(r['kill_rate'], min_kill)} "
            f"| {r['seconds']} |"
        )
    (out / "kill_rates.md").write_text("\n".join(rows) + "\n")
    sample.write_survivors(out / "survivors.md", "Surviving mutants", command, results, False)
    (out / "results.json").write_text(json.dumps(results, indent=1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="cosmic-ray over the core modules (mutation/modules.toml)")
    ap.add_argument("--modules", nargs="*", help="modules (paths under src/smoothscore) to run; default: all")
    ap.add_argument("--sample", type=int, default=None, help="deterministic sample of N mutants per module")
    ap.add_argument("--total", type=int, default=None, help="deterministic sample of N mutants over all modules")
    ap.add_argument("--per-module", type=int, default=None, help="stratified sample: N mutants drawn in each module")
    ap.add_argument("--seed", type=int, default=0, help="seed of the --per-module draw")
    ap.add_argument("--jobs", type=int, default=2, help="modules run in parallel (one tree copy each)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds one mutant's tests may take")
    ap.add_argument("--min-kill", type=float, default=0.9, help="target kill rate per module")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "mutants" / "work")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "mutants")
    args = ap.parse_args(argv)
    # the sessions run with the tree copy as working directory: relative folders are taken from here, once
    args.work, args.out = args.work.resolve(), args.out.resolve()
    if sum(a is not None for a in (args.sample, args.total, args.per_module)) > 1:
        ap.error("--sample, --total and --per-module are alternatives: give one")
    ops, modules = load_plan()
    eq = load_equivalent()
    names = args.modules or list(modules)
    unknown = [n for n in names if n not in modules]
    if unknown:
        ap.error(f"not in mutation/modules.toml: {unknown}")
    # every module's session is made first (AST only, fast), so that a sample can be drawn over all of them; each
    # job then runs whole modules in its own copy of the tree (the session files live beside the copy they mutate)
    jobs = max(1, args.jobs)
    trees = [make_tree(args.work, f"tree{w}") for w in range(jobs)]
    with ThreadPoolExecutor(jobs) as ex:
        made = ex.map(
            lambda a: prepare_module(trees[a[0] % jobs], a[1], modules[a[1]], ops, eq, args.timeout), enumerate(names)
        )
        states = {st["module"]: st for st in made}
    chosen = None
    if args.sample is not None:
        chosen = {j for st in states.values() for _, j in st["candidates"][: args.sample]}
    if args.total is not None:
        pool = sorted(c for st in states.values() for c in st["candidates"])
        chosen = {j for _, j in pool[: args.total]}
    drawn_eq = {}
    if args.per_module is not None:
        chosen = set()
        for name, st in states.items():
            jobs_drawn, drawn_eq[name] = sample.stratified_draw(st, args.per_module, args.seed)
            chosen |= jobs_drawn
    by_tree = {str(t): [n for n in names if states[n]["tree"] == t] for t in trees}
    command = ("python mutation/run.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    done, lock = {}, threading.Lock()

    def run_tree(tree):
        for name in by_tree[str(tree)]:
            r = execute_module(states[name], chosen)
            rate = "n/a" if r["kill_rate"] is None else f"{100 * r['kill_rate']:.1f}%"
            print(
                f"{name:32s} run {r['run']:4d} survived {r['survived']:3d} kill {rate} ({r['seconds']} s)", flush=True
            )
            with lock:  # the sample's reports are rewritten after every module, so a stopped run keeps what it measured
                done[name] = r
                if args.per_module is not None:
                    rows = [sample.module_row(done[n], drawn_eq[n]) for n in names if n in done]
                    sample.write_sample_reports(rows, args.out, command, args.min_kill)

    with ThreadPoolExecutor(jobs) as ex:
        list(ex.map(run_tree, trees))
    results = [done[n] for n in names]
    write_reports(results, args.out, command, args.min_kill)
    if args.total is not None:  # a pooled sample has too few mutants per module for per-module rates: gate on the pool
        killed = sum(r["killed"] + r["incompetent"] for r in results)
        survived = sum(r["survived"] for r in results)
        rate = killed / max(1, killed + survived)
        print(f"pooled sample: {killed} killed, {survived} survived, kill rate {100 * rate:.1f}%")
        return 0 if rate >= args.min_kill else 1
    low = [r["module"] for r in results if r["kill_rate"] is not None and r["kill_rate"] < args.min_kill]
    print(f"reports: {args.out}/kill_rates.md, {args.out}/survivors.md")
    if low:
        print(f"below the {100 * args.min_kill:.0f}% target: {', '.join(low)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
