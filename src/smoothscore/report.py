"""Run experiments and write ``results.json`` per experiment plus one self-contained ``report.html``.

Layout of an output folder ``OUT``::

    OUT/report.html            all experiments: claims table, figures (embedded), configs
    OUT/summary.json           one line per experiment: status, claims passed/failed
    OUT/<experiment>/results.json   config, seed, versions, device, metrics, claims with verdicts, figures
    OUT/<experiment>/*.png|gif      figures
"""
from __future__ import annotations

import base64
import html
import json
import platform
import shutil
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from .device import describe_device, resolve_device
from .errors import ConfigError, SmoothScoreError
from .experiments.base import RunContext, experiments, load_all
from .io import atomic_write_json, atomic_write_text, to_jsonable


def versions() -> Dict[str, str]:
    import numpy

    out = {"python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__,
           "numpy": numpy.__version__}
    try:
        from importlib.metadata import version

        out["smoothscore"] = version("smoothscore")
    except Exception:  # pragma: no cover - not installed as a distribution
        out["smoothscore"] = "unknown"
    for mod in ("faiss", "ot", "sklearn", "scipy", "matplotlib"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            pass
    return out


def run_experiment(name: str, preset: str, out_dir: Path, *, seed: int = 0, device="auto", progress: bool = True,
                   overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Run one registered experiment and write its ``results.json``; returns the results dict."""
    spec = load_all().get(name)
    if preset not in spec.presets:
        raise ConfigError(f"experiment {name!r} has no preset {preset!r}; presets: {', '.join(spec.presets)}")
    config = dict(spec.presets[preset])
    config.update(overrides or {})
    dev = resolve_device(device)
    ctx = RunContext(name=name, preset=preset, out_dir=Path(out_dir) / name, config=config, seed=seed, device=dev,
                     progress=progress)
    created = [d for d in (ctx.out_dir.parent, ctx.out_dir) if not d.exists()]
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    status, error = "ok", None
    t0 = time.time()
    torch.manual_seed(seed)
    try:
        spec.fn(ctx)
    except SmoothScoreError:        # bad input: leave no partial output behind (only folders this run created)
        for d in reversed(created):
            shutil.rmtree(d, ignore_errors=True)
        raise
    except Exception as e:  # an experiment bug must not lose the other experiments' results
        status, error = "error", "".join(traceback.format_exception(type(e), e, e.__traceback__))
    res = {
        "experiment": name, "title": spec.title, "groups": list(spec.groups), "description": spec.description,
        "preset": preset, "config": config, "seed": seed, "device": describe_device(dev), "versions": versions(),
        "command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t0)),
        "duration_s": round(time.time() - t0, 2), "status": status, "error": error,
        "metrics": ctx.metrics, "claims": [asdict(c) for c in ctx.claims],
        "findings": [asdict(f) for f in ctx.findings], "figures": [asdict(f) for f in ctx.figures],
        "notes": ctx.notes,
    }
    res = to_jsonable(res)
    atomic_write_json(ctx.out_dir / "results.json", res)
    return res


def run_many(names: List[str], preset: str, out: Path, **kw) -> List[Dict[str, Any]]:
    out = Path(out)
    results = []
    for n in names:
        if kw.get("progress", True):
            print(f"[smoothscore] running {n} (preset {preset}) ...", file=sys.stderr, flush=True)
        r = run_experiment(n, preset, out, **kw)
        verdicts = [c["passed"] for c in r["claims"]]
        if kw.get("progress", True):
            print(f"[smoothscore]   {n}: {r['status']} in {r['duration_s']:.1f}s; claims passed "
                  f"{sum(v is True for v in verdicts)}/{len(verdicts)}", file=sys.stderr, flush=True)
        results.append(r)
    write_summary(results, out)
    write_html(results, out)
    return results


def write_summary(results: List[Dict[str, Any]], out: Path) -> Path:
    rows = [{"experiment": r["experiment"], "status": r["status"], "duration_s": r["duration_s"],
             "claims_passed": sum(c["passed"] is True for c in r["claims"]),
             "claims_failed": sum(c["passed"] is False for c in r["claims"]),
             "claims_undecided": sum(c["passed"] is None for c in r["claims"])} for r in results]
    return atomic_write_json(Path(out) / "summary.json", {"experiments": rows})


# ---------------------------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222}h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}td,th{border:1px solid #ccc;padding:.3em .6em;
vertical-align:top;text-align:left}th{background:#f3f3f3}.pass{background:#e3f6e3}.fail{background:#fbe3e3}
.undecided{background:#fff6d6}figure{display:inline-block;margin:.6em;max-width:100%;vertical-align:top}
figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.88em;color:#444;max-width:900px}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.85em}.small{font-size:.85em;color:#555}
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and len(v) > 8:
        return html.escape(json.dumps(v[:8])[:-1] + ", ...]")
    return html.escape(json.dumps(v) if not isinstance(v, str) else v)


def _verdict(p: Optional[bool]) -> tuple[str, str]:
    return ("pass", "PASS") if p is True else ("fail", "FAIL") if p is False else ("undecided", "undecided")


def _embed(path: Path) -> str:
    mime = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".mp4": "video/mp4",
            ".svg": "image/svg+xml"}.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_html(results: List[Dict[str, Any]], out: Path) -> str:
    out = Path(out)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>smoothscore report</title>"
             f"<style>{_CSS}</style></head><body><h1>smoothscore report</h1>"]
    n_pass = sum(c["passed"] is True for r in results for c in r["claims"])
    n_fail = sum(c["passed"] is False for r in results for c in r["claims"])
    n_und = sum(c["passed"] is None for r in results for c in r["claims"])
    v = results[0]["versions"] if results else {}
    parts.append(f"<p class='small'>Generated {time.strftime('%Y-%m-%d %H:%M:%S')} &middot; torch {v.get('torch')} "
                 f"&middot; python {v.get('python')} &middot; device {html.escape(results[0]['device']) if results else ''}"
                 f"</p><p><b>{n_pass}</b> claims pass, <b>{n_fail}</b> fail, <b>{n_und}</b> undecided across "
                 f"{len(results)} experiments. A failed claim is a measured disagreement, reported as is.</p>")
    # overview table
    parts.append("<h2>All claims</h2><table><tr><th>experiment</th><th>claim</th><th>measured</th><th>threshold</th>"
                 "<th>verdict</th></tr>")
    for r in results:
        for c in r["claims"]:
            cls, word = _verdict(c["passed"])
            parts.append(f"<tr class='{cls}'><td><a href='#{r['experiment']}'>{html.escape(r['experiment'])}</a></td>"
                         f"<td>{html.escape(c['statement'])}</td><td>{_fmt(c['value'])}</td>"
                         f"<td>{html.escape(c['op'])} {_fmt(c['threshold'])}</td><td>{word}</td></tr>")
    parts.append("</table>")
    for r in results:
        name = r["experiment"]
        parts.append(f"<h2 id='{html.escape(name)}'>{html.escape(name)}: {html.escape(r['title'])}</h2>")
        parts.append(f"<p class='small'>preset <b>{html.escape(r['preset'])}</b>, seed {r['seed']}, "
                     f"{r['duration_s']:.1f} s, status <b>{html.escape(r['status'])}</b></p>")
        if r.get("description"):
            parts.append(f"<p>{html.escape(r['description'])}</p>")
        if r.get("error"):
            parts.append(f"<pre class='fail'>{html.escape(r['error'])}</pre>")
        if r["claims"]:
            parts.append("<table><tr><th>claim</th><th>measured</th><th>threshold</th><th>verdict</th><th>details</th></tr>")
            for c in r["claims"]:
                cls, word = _verdict(c["passed"])
                parts.append(f"<tr class='{cls}'><td>{html.escape(c['statement'])}</td><td>{_fmt(c['value'])}</td>"
                             f"<td>{html.escape(c['op'])} {_fmt(c['threshold'])}</td><td>{word}</td>"
                             f"<td>{html.escape(c.get('details') or '')}</td></tr>")
            parts.append("</table>")
        if r["findings"]:
            parts.append("<ul>" + "".join(f"<li>{html.escape(f['text'])}</li>" for f in r["findings"]) + "</ul>")
        for fig in r["figures"]:
            p = out / name / fig["path"]
            if not p.exists():
                continue
            if fig.get("kind") == "video":
                parts.append(f"<figure><video controls src='{_embed(p)}'></video><figcaption>"
                             f"{html.escape(fig['caption'])}</figcaption></figure>")
            else:
                parts.append(f"<figure><img src='{_embed(p)}' alt='{html.escape(fig['path'])}'><figcaption>"
                             f"{html.escape(fig['caption'])}</figcaption></figure>")
        for n in r.get("notes", []):
            parts.append(f"<p class='small'>{html.escape(n)}</p>")
        if r["metrics"]:
            parts.append("<details><summary>metrics</summary><table>" + "".join(
                f"<tr><td>{html.escape(k)}</td><td>{_fmt(val)}</td></tr>" for k, val in r["metrics"].items())
                + "</table></details>")
        parts.append(f"<details><summary>config</summary><pre>{html.escape(json.dumps(r['config'], indent=2))}</pre>"
                     "</details>")
    parts.append("</body></html>")
    return "".join(parts)


def write_html(results: List[Dict[str, Any]], out: Path) -> Path:
    return atomic_write_text(Path(out) / "report.html", render_html(results, Path(out)))


def load_results(out: Path) -> List[Dict[str, Any]]:
    """Read every ``results.json`` under ``out`` (to re-render a report)."""
    return [json.loads(p.read_text()) for p in sorted(Path(out).glob("*/results.json"))]
