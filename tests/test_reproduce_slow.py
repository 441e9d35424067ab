"""The quick presets end to end (make test-slow): every experiment runs, every claim gets a measured value and a
verdict, every figure exists, and the report embeds them."""
import json

import pytest

from smoothscore.experiments.base import resolve_names
from smoothscore.report import run_many


def _check(results, out):
    for r in results:
        assert r["status"] == "ok", (r["experiment"], r["error"])
        assert r["claims"], r["experiment"]
        for c in r["claims"]:
            assert c["value"] is not None and c["passed"] is not None, (r["experiment"], c["id"])
        for f in r["figures"]:
            assert (out / r["experiment"] / f["path"]).stat().st_size > 1000
        saved = json.loads((out / r["experiment"] / "results.json").read_text())
        assert {"config", "seed", "versions", "device"} <= set(saved)
    html = (out / "report.html").read_text()
    assert html.count("data:image/") >= sum(len(r["figures"]) for r in results)


@pytest.mark.slow
def test_reproduce_chen_quick(tmp_path):
    names = resolve_names(["chen"])
    _check(run_many(names, "quick", tmp_path, progress=False), tmp_path)


@pytest.mark.slow
def test_reproduce_zhou_quick_exact_experiments(tmp_path):
    # zhou-small-data has its own slow test (tests/test_zhou_experiments_b.py)
    names = [n for n in resolve_names(["zhou"]) if n != "zhou-small-data"]
    _check(run_many(names, "quick", tmp_path, progress=False), tmp_path)
