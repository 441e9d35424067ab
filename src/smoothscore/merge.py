"""Merging the seed jobs of one experiment folder (``OUT/<experiment>/seed-<s>/results.json``) into the folder's
``results.json``: claims merged by id over seeds (:func:`smoothscore.verdict.merge_claims`), missing seeds listed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .io import atomic_write_json, to_jsonable
from .verdict import count, merge_claims

#: folder-name prefix of one seed job inside an experiment folder
JOB_PREFIX = "seed-"


def job_results(exp_dir: Path) -> list[dict[str, Any]]:
    """Every job ``results.json`` under ``exp_dir`` (with ``_dir``, its folder name), by seed."""
    out = []
    for p in sorted(Path(exp_dir).glob(f"{JOB_PREFIX}*/results.json")):
        try:
            r = json.loads(p.read_text())
        except ValueError:
            continue  # an unreadable job is re-run by --resume and ignored here
        r["_dir"] = p.parent.name
        out.append(r)
    return sorted(out, key=lambda r: r["seed"])


def merge_experiment(
    exp_dir: Path,
    *,
    seeds: Sequence[int] | None = None,
    preset: str | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Merge the seed jobs of one experiment folder into ``exp_dir/results.json`` (returned; ``None`` when there is
    no job). Only jobs with the given preset and config are merged (default: those of the most recent job), and
    only the given seeds (default: the most recent job's plan); seeds of the plan without a job are listed in
    ``missing_seeds``."""
    exp_dir = Path(exp_dir)
    runs = job_results(exp_dir)
    if not runs:
        return None
    latest = max(runs, key=lambda r: r.get("started", ""))
    preset = latest["preset"] if preset is None else preset
    config = latest["config"] if config is None else to_jsonable(config)
    seeds = list(latest.get("seeds") or [latest["seed"]]) if seeds is None else list(seeds)
    runs = [r for r in runs if r["preset"] == preset and r["config"] == config and r["seed"] in seeds]
    if not runs:
        return None
    first = runs[0]
    trains = bool(first.get("trains"))
    done = [r["seed"] for r in runs]
    notes = list(first.get("notes", []))
    missing = [s for s in seeds if s not in done]
    if missing:
        notes.append(f"seeds {missing} of the plan {seeds} have no result yet; verdicts use seeds {done}")
    if trains and len(done) > 1:
        notes.append(f"figures, metrics and findings shown are seed {first['seed']}'s; claims merge seeds {done}")
    errors = [f"seed {r['seed']}: {r['error']}" for r in runs if r["status"] != "ok"]
    figures = [dict(f, path=f"{first['_dir']}/{f['path']}") for f in first.get("figures", [])]
    merged = {
        "experiment": first["experiment"],
        "title": first["title"],
        "groups": first["groups"],
        "description": first["description"],
        "trains": trains,
        "preset": preset,
        "config": config,
        "seed": first["seed"],
        "seeds": done,
        "planned_seeds": seeds,
        "missing_seeds": missing,
        "device": first["device"],
        "threads": first.get("threads"),
        "versions": first["versions"],
        "command": first["command"],
        "started": min(r["started"] for r in runs),
        "duration_s": round(sum(r["duration_s"] for r in runs), 2),
        "cpu_s": round(sum(r.get("cpu_s") or 0.0 for r in runs), 2),
        "status": "ok" if not errors else "error",
        "error": "\n".join(errors) or None,
        "metrics": first["metrics"],
        "intervals": first.get("intervals", {}),
        "claims": merge_claims(runs, done, trains=trains),
        "findings": first["findings"],
        "figures": figures,
        "notes": notes,
        "runs": [
            {k: r.get(k) for k in ("seed", "status", "started", "duration_s", "cpu_s", "device", "threads", "command")}
            | {"dir": r["_dir"]}
            for r in runs
        ],
    }
    merged["verdicts"] = count(merged["claims"])
    merged = to_jsonable(merged)
    atomic_write_json(exp_dir / "results.json", merged)
    return merged
