"""The report of a result folder: ``summary.json`` and one self-contained ``report.html`` over **every** experiment
present in the folder (running experiments is :mod:`smoothscore.runner`'s, merging their seeds
:mod:`smoothscore.merge`'s).

The report shows, for each claim, its per-seed values (with bootstrap intervals over samples where recorded), the
mean and spread over seeds, the threshold and the verdict (pass / fail / inconclusive, :mod:`smoothscore.verdict`);
inconclusive claims are counted apart and listed in their own table. The HTML depends only on the results (no
clock), so the same results give the same report.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from .io import atomic_write_json, atomic_write_text
from .merge import merge_experiment
from .report_markdown import write_markdown
from .verdict import INCONCLUSIVE, LEVEL, count, verdict_of


def load_results(out: Path) -> list[dict[str, Any]]:
    """The merged ``results.json`` of every experiment in ``out`` (by name); an experiment folder whose seed jobs
    were never merged (a killed run) is merged first."""
    res = []
    for d in sorted(p for p in Path(out).iterdir() if p.is_dir()) if Path(out).is_dir() else []:
        p = d / "results.json"
        r = json.loads(p.read_text()) if p.exists() else None
        if r is None or "runs" not in r:
            r = merge_experiment(d) or r
        if r is not None:
            res.append(r)
    return res


def write_report(out: Path) -> list[dict[str, Any]]:
    """Write ``summary.json``, ``summary.md`` and ``report.html`` of every experiment in ``out``; returns their
    results."""
    results = load_results(out)
    write_summary(results, out)
    write_markdown(results, out)
    write_html(results, out)
    return results


def write_summary(results: list[dict[str, Any]], out: Path) -> Path:
    rows = []
    for r in results:
        n = count(r["claims"])
        rows.append(
            {
                "experiment": r["experiment"],
                "status": r["status"],
                "duration_s": r["duration_s"],
                "cpu_s": r.get("cpu_s"),
                "seeds": r.get("seeds", [r.get("seed")]),
                "claims_passed": n["pass"],
                "claims_failed": n["fail"],
                "claims_inconclusive": n[INCONCLUSIVE],
                "claims_undecided": n[INCONCLUSIVE],
                "inconclusive": [c["id"] for c in r["claims"] if verdict_of(c) == INCONCLUSIVE],
            }
        )
    return atomic_write_json(Path(out) / "summary.json", {"experiments": rows})


# ---------------------------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222}h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}td,th{border:1px solid #ccc;padding:.3em .6em;
vertical-align:top;text-align:left}th{background:#f3f3f3}.pass{background:#e3f6e3}.fail{background:#fbe3e3}
.inconclusive{background:#fff6d6}figure{display:inline-block;margin:.6em;max-width:100%;vertical-align:top}
figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.88em;color:#444;max-width:900px}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.85em}.small{font-size:.85em;color:#555}
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and len(v) > 8:
        return html.escape(json.dumps(v[:8])[:-1] + ", ...]")
    return html.escape(json.dumps(v) if not isinstance(v, str) else v)


def _with_ci(v: Any, ci: list[float] | None) -> str:
    return _fmt(v) + (f" <span class='small'>[{_fmt(ci[0])}, {_fmt(ci[1])}]</span>" if ci else "")


def _seed_values(c: dict[str, Any]) -> str:
    values = c.get("values", [c["value"]])
    seeds = c.get("seeds", [None] * len(values))
    cis = c.get("cis") or [c.get("ci")] * len(values)
    if len(values) == 1:
        return _with_ci(values[0], cis[0])
    return "<br>".join(f"s{s}: {_with_ci(v, ci)}" for s, v, ci in zip(seeds, values, cis))


def _summary(c: dict[str, Any]) -> str:
    if c.get("deterministic", True) or c.get("mean") is None or len(c.get("values", [])) < 2:
        return "one value" if c.get("deterministic", True) else "&mdash;"
    b = c.get("bound")
    return f"{_fmt(c['mean'])} &plusmn; {_fmt(c['spread'])}" + (
        f"<br><span class='small'>one-sided {int(LEVEL * 100)}% bounds [{_fmt(b[0])}, {_fmt(b[1])}]</span>" if b else ""
    )


def _claim_row(c: dict[str, Any], lead: str = "") -> str:
    w = verdict_of(c)
    return (
        f"<tr class='{w}'>{lead}<td>{html.escape(c['statement'])}</td><td>{_seed_values(c)}</td>"
        f"<td>{_summary(c)}</td><td>{html.escape(c['op'])} {_fmt(c['threshold'])}</td><td>{w.upper()}</td>"
    )


_HEAD = (
    "<th>claim</th><th>measured (per seed; [90% bootstrap interval over samples])</th>"
    "<th>mean &plusmn; sd over seeds</th><th>threshold</th><th>verdict</th>"
)


def _embed(path: Path) -> str:
    mime = {
        ".png": "image/png",
        ".gif": "image/gif",
        ".jpg": "image/jpeg",
        ".mp4": "video/mp4",
        ".svg": "image/svg+xml",
    }.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _experiment_section(r: dict[str, Any], out: Path) -> list[str]:
    name = r["experiment"]
    seeds = r.get("seeds", [r.get("seed")])
    parts = [
        f"<h2 id='{html.escape(name)}'>{html.escape(name)}: {html.escape(r['title'])}</h2>",
        f"<p class='small'>preset <b>{html.escape(r['preset'])}</b>, seed{'s' if len(seeds) > 1 else ''} "
        f"{', '.join(map(str, seeds))}{' (trains networks)' if r.get('trains') else ''}, "
        f"{r['duration_s']:.1f} s wall, {r.get('cpu_s') or 0:.0f} s CPU, {r.get('threads')} torch thread(s), "
        f"device {html.escape(str(r['device']))}, status <b>{html.escape(r['status'])}</b></p>",
    ]
    if r.get("description"):
        parts.append(f"<p>{html.escape(r['description'])}</p>")
    if r.get("error"):
        parts.append(f"<pre class='fail'>{html.escape(r['error'])}</pre>")
    if r["claims"]:
        parts.append(f"<table><tr>{_HEAD}<th>details</th></tr>")
        parts.extend(_claim_row(c) + f"<td>{html.escape(c.get('details') or '')}</td></tr>" for c in r["claims"])
        parts.append("</table>")
    if r["findings"]:
        parts.append("<ul>" + "".join(f"<li>{html.escape(f['text'])}</li>" for f in r["findings"]) + "</ul>")
    for fig in r["figures"]:
        p = out / name / fig["path"]
        if not p.exists():
            continue
        tag = (
            f"<video controls src='{_embed(p)}'></video>"
            if fig.get("kind") == "video"
            else f"<img src='{_embed(p)}' alt='{html.escape(fig['path'])}'>"
        )
        parts.append(f"<figure>{tag}<figcaption>{html.escape(fig['caption'])}</figcaption></figure>")
    for n in r.get("notes", []):
        parts.append(f"<p class='small'>{html.escape(n)}</p>")
    iv = r.get("intervals", {})
    if r["metrics"]:
        parts.append(
            "<details><summary>metrics</summary><table>"
            + "".join(
                f"<tr><td>{html.escape(k)}</td><td>{_with_ci(val, iv.get(k))}</td></tr>"
                for k, val in r["metrics"].items()
            )
            + "</table></details>"
        )
    parts.append(
        f"<details><summary>config</summary><pre>{html.escape(json.dumps(r['config'], indent=2))}</pre></details>"
    )
    return parts


def render_html(results: list[dict[str, Any]], out: Path) -> str:
    out = Path(out)
    claims = [(r, c) for r in results for c in r["claims"]]
    n = count([c for _, c in claims])
    n_seeded = sum(not c.get("deterministic", True) for _, c in claims)
    v = results[0]["versions"] if results else {}
    started = max((r.get("started", "") for r in results), default="")
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>smoothscore report</title>"
        f"<style>{_CSS}</style></head><body><h1>smoothscore report</h1>",
        f"<p class='small'>Latest run started {html.escape(started)} &middot; torch {v.get('torch')} &middot; "
        f"python {v.get('python')} &middot; device {html.escape(str(results[0]['device'])) if results else ''}"
        f"</p><p><b>{n['pass']}</b> claims pass, <b>{n['fail']}</b> fail, and <b>{n[INCONCLUSIVE]}</b> are "
        f"inconclusive, across {len(results)} experiments ({n_seeded} claims on trained networks measured over "
        f"seeds). A failed claim is a measured disagreement, reported as is.</p>",
        "<p class='small'>Verdict rule: a claim on trained networks passes when it holds in every seed and the "
        f"one-sided {int(LEVEL * 100)}% Student-t bound of its mean over seeds clears the threshold; it fails "
        "when "
        "the opposite holds likewise; otherwise (including a single seed) it is inconclusive. A deterministic "
        "claim has one value and passes or fails.</p>",
    ]
    incon = [(r, c) for r, c in claims if verdict_of(c) == INCONCLUSIVE]
    if incon:
        parts.append(f"<h2>Inconclusive claims ({len(incon)})</h2><table><tr><th>experiment</th>{_HEAD}</tr>")
        parts.extend(
            _claim_row(c, f"<td><a href='#{r['experiment']}'>{html.escape(r['experiment'])}</a></td>") + "</tr>"
            for r, c in incon
        )
        parts.append("</table>")
    parts.append(f"<h2>All claims</h2><table><tr><th>experiment</th>{_HEAD}</tr>")
    parts.extend(
        _claim_row(c, f"<td><a href='#{r['experiment']}'>{html.escape(r['experiment'])}</a></td>") + "</tr>"
        for r, c in claims
    )
    parts.append("</table>")
    for r in results:
        parts.extend(_experiment_section(r, out))
    parts.append("</body></html>")
    return "".join(parts)


def write_html(results: list[dict[str, Any]], out: Path) -> Path:
    return atomic_write_text(Path(out) / "report.html", render_html(results, Path(out)))
