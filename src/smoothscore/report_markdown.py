"""``summary.md``: the results table of a run folder in Markdown (README's results table is this file, copied).

One row per experiment: seeds, CPU seconds (all seeds), wall seconds of the longest job, pass / fail /
inconclusive counts, and every claim that did not pass with its per-seed values and threshold; then a total line.
Written by :func:`smoothscore.report.write_report` beside ``summary.json`` and ``report.html`` (so ``reproduce``
and ``smoothscore report DIR... --out OUT`` both produce it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .io import atomic_write_text
from .verdict import FAIL, INCONCLUSIVE, PASS, count, verdict_of


def _num(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    return f"{v:.3g}"


def _values(c: dict[str, Any]) -> str:
    vals = c.get("values") or [c.get("value")]
    return ", ".join(_num(v) for v in vals)


def markdown_table(results: list[dict[str, Any]]) -> str:
    """The Markdown results table of ``results`` (merged experiment results, as ``load_results`` returns)."""
    lines = [
        "| experiment | seeds | CPU s | pass | fail | inconclusive "
        "| claims not passing: (per-seed values) op threshold |",
        "|---|---|---|---|---|---|---|",
    ]
    tot = {PASS: 0, FAIL: 0, INCONCLUSIVE: 0}
    cpu_total = 0.0
    for r in results:
        n = count(r["claims"])
        for k in tot:
            tot[k] += n[k]
        cpu = r.get("cpu_s")
        cpu_total += float(cpu or 0.0)
        bad = [
            f"{verdict_of(c)}: `{c['id']}` ({_values(c)}) {c['op']} {_num(c['threshold'])}"
            for c in r["claims"]
            if verdict_of(c) != PASS
        ]
        seeds = r.get("seeds") or [r.get("seed")]
        lines.append(
            f"| `{r['experiment']}` | {len(seeds)} | {_num(cpu) if cpu is not None else '?'} | {n[PASS]} | {n[FAIL]} | "
            f"{n[INCONCLUSIVE]} | {'; '.join(bad) or '—'} |"
        )
    total = sum(tot.values())
    lines.append(
        f"\nAll: {tot[PASS]} of {total} claims pass, {tot[FAIL]} fail, {tot[INCONCLUSIVE]} inconclusive; "
        f"{cpu_total:.0f} CPU s over {len(results)} experiments."
    )
    return "\n".join(lines) + "\n"


def write_markdown(results: list[dict[str, Any]], out: Path) -> Path:
    """Write ``OUT/summary.md`` (atomically) and return its path."""
    return atomic_write_text(Path(out) / "summary.md", markdown_table(results))
