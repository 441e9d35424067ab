"""The stratified sample of mutation testing: N mutants drawn per core module, and the per-module kill-rate estimate.

``mutation/run.py --per-module N --seed S`` draws, in every module of ``mutation/modules.toml``, the N mutants of
smallest SHA-256 of ``S:key`` (``key`` being run.py's ``module:operator:occurrence:line text``), equivalent mutants
included in the draw so that their share is estimated too. The same source and seed give the same sample on every
machine; another seed gives an independent one. A module's kill rate is killed / (killed + survived) over the drawn
non-equivalent mutants (a timeout or a broken import counts as killed, as in cosmic-ray), reported with its 95% Wilson
score interval (Wilson, J. Am. Stat. Assoc. 22 (1927) 209; eq. 3 of Brown, Cai & DasGupta, Stat. Sci. 16 (2001) 101).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% (by default) Wilson score interval of a binomial proportion with ``k`` successes in ``n`` trials:
    ``(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)``, with ``p = k/n``; ``(0, 1)`` when ``n == 0``."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"wilson_interval needs 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p, z2 = k / n, z * z
    centre = p + z2 / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    lo, hi = (centre - half) / (1 + z2 / n), (centre + half) / (1 + z2 / n)
    return max(0.0, lo), min(1.0, hi)


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def stratified_draw(state: dict, n: int, seed: int) -> tuple[set[str], list[dict]]:
    """The ``n`` mutants of one prepared module (run.py's ``prepare_module`` state) of smallest seeded hash, equivalent
    ones included: ``(job ids to run, equivalent mutants drawn)``."""
    if n < 1:
        raise ValueError(f"--per-module needs at least 1 mutant per module, got {n}")
    pool = [(_rank(seed, k), "run", j) for k, j in state["candidates"]]
    pool += [(_rank(seed, e["key"]), "equivalent", e) for e in state["equivalents"]]
    drawn = sorted(pool, key=lambda t: t[0])[:n]
    return {j for _, kind, j in drawn if kind == "run"}, [e for _, kind, e in drawn if kind == "equivalent"]


def module_row(r: dict, drawn_equivalent: list[dict]) -> dict:
    """The sample estimate of one module's results (run.py's ``execute_module``): counts, kill rate and interval."""
    killed = r["killed"] + r["incompetent"]
    judged = killed + r["survived"]
    lo, hi = wilson_interval(killed, judged)
    return {
        "module": r["module"],
        "mutants": r["mutants"],
        "sampled": r["run"] + len(drawn_equivalent),
        "killed": killed,
        "survived": r["survived"],
        "timeout": r["timeout"],
        "equivalent": len(drawn_equivalent),
        "kill_rate": killed / judged if judged else None,
        "interval": [lo, hi],
        "seconds": r["seconds"],
        "tests": r["tests"],
        "survivors": r["survivors"],
        "equivalents_drawn": drawn_equivalent,
    }


def rate_cell(rate: float | None, min_kill: float, digits: int = 1) -> str:
    """A kill rate as a table cell: ``n/a`` when nothing was judged, flagged when below ``min_kill``."""
    if rate is None:
        return "n/a"
    return f"{100 * rate:.{digits}f}%" + ("" if rate >= min_kill else " (below target)")


def table_head(command: str, columns: list[str], aligns: list[str]) -> list[str]:
    """The command line and a markdown table header (``aligns``: ``"---"`` or ``"---:"`` per column)."""
    return [f"Command: `{command}`", "", "| " + " | ".join(columns) + " |", "| " + " | ".join(aligns) + " |"]


def write_survivors(path: Path, title: str, command: str, results: list[dict], with_tests: bool) -> None:
    """The survivors report: per surviving mutant its module, line and operator, (optionally) the module's test
    files that let it through, and the diff."""
    sv = [f"# {title}", "", f"Command: `{command}`", ""]
    for r in results:
        for s in r["survivors"]:
            sv += [f"## `{r['module']}`:{s['line']} {s['operator']}", ""]
            sv += [f"tests: {', '.join(r['tests'])}", ""] if with_tests else []
            sv += ["```diff", s["diff"].strip(), "```", ""]
    path.write_text("\n".join(sv) + "\n")


def write_sample_reports(rows: list[dict], out: Path, command: str, min_kill: float) -> None:
    """``sample_kill_rates.md`` (the per-module table of docs/mutation.md, pooled line last), ``sample_survivors.md``
    (location, operator, diff and the tests that let each survivor through) and ``sample_results.json``."""
    out.mkdir(parents=True, exist_ok=True)
    cols = ["module", "mutants", "sampled", "killed", "survived", "timeout", "equivalent", "kill rate", "95% interval"]
    cols.append("s")
    lines = table_head(command, cols, ["---"] + ["---:"] * 7 + ["---", "---:"])
    for r in rows:
        lo, hi = r["interval"]
        lines.append(
            f"| `{r['module']}` | {r['mutants']} | {r['sampled']} | {r['killed']} | {r['survived']} | {r['timeout']} "
            f"| {r['equivalent']} | {rate_cell(r['kill_rate'], min_kill, 0)} | {100 * lo:.0f}-{100 * hi:.0f}% "
            f"| {r['seconds']} |"
        )
    killed, survived = sum(r["killed"] for r in rows), sum(r["survived"] for r in rows)
    lo, hi = wilson_interval(killed, killed + survived)
    rate = f"{100 * killed / (killed + survived):.1f}%" if killed + survived else "n/a"
    lines.append(
        f"| all ({len(rows)} modules) | {sum(r['mutants'] for r in rows)} | {sum(r['sampled'] for r in rows)} "
        f"| {killed} | {survived} | {sum(r['timeout'] for r in rows)} | {sum(r['equivalent'] for r in rows)} "
        f"| {rate} | {100 * lo:.1f}-{100 * hi:.1f}% | {round(sum(r['seconds'] for r in rows), 1)} |"
    )
    (out / "sample_kill_rates.md").write_text("\n".join(lines) + "\n")
    write_survivors(out / "sample_survivors.md", "Surviving mutants of the stratified sample", command, rows, True)
    (out / "sample_results.json").write_text(json.dumps(rows, indent=1))
