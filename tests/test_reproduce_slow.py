"""The quick presets end to end (make test-slow), and the same verdicts with 1 and with 2 torch threads (issue 10).

One test, two runs (so the whole file fits 16 minutes wall on 2 cores):

1. every experiment of both papers at the quick preset, every job with **2** torch threads (2 local processes):
   every experiment runs, every claim gets a value and a verdict, every figure exists, the report embeds them;
2. the experiments that train networks again, every job with **1** torch thread (2 processes).

A different thread count changes the float rounding of every reduction, as another CPU would; training amplifies it,
so per-seed values differ between the runs. The verdicts over seeds must not flip: no claim may pass in one run and
fail in the other, and Paper B's main ordering (``unconditioned-memorizes-less``) must be decided the same way in
both. A claim whose seeds straddle its threshold may move between a decision and "inconclusive" (that is what the
inconclusive band is for); such moves are printed, not hidden. Why identical verdicts are not asserted
(issue 10 item 4 asks for them): training amplifies the rounding difference -- zhou-small-data's UNets (seed 0, 1,200
steps) end with EMA weights 0.76% (conditioned) and 8.5% (unconditioned) apart -- so another thread count is close to
another seed, and claims whose seeds straddle a boundary move (measured: 16 of 18 verdicts identical;
``temperature-pixel-memorizes-less`` inconclusive -> fail at values -0.047, -0.016, 0.0 vs -0.062, -0.094, -0.016;
``temperature-feature-quality`` inconclusive -> pass at 2.39, 1.26, 0.25 vs 1.38, 1.06, 0.22). Float64 (``precision:
float64``) does not remove it: the unconditioned UNet's training is chaotic and grows even float64 rounding to 5% of
its weights by step 1,200 (docs/reports.md). Paper A's experiments pin one intra-op thread whatever the setting
(``@experiment(..., threads=1)``): their computation is the same in both runs, so run 2 leaves them out
(run 1 checks them end to end)."""

import json
import os

import pytest

from smoothscore.experiments.base import load_all, resolve_names
from smoothscore.runner import run_many
from smoothscore.verdict import VERDICTS


def _check(results, out):
    for r in results:
        assert r["status"] == "ok", (r["experiment"], r["error"])
        assert r["claims"], r["experiment"]
        assert r["missing_seeds"] == [], r["experiment"]
        for c in r["claims"]:
            assert c["value"] is not None and c["verdict"] in VERDICTS, (r["experiment"], c["id"])
            if c["deterministic"]:
                assert c["verdict"] != "inconclusive", (r["experiment"], c["id"], c["values"])
        for f in r["figures"]:
            assert (out / r["experiment"] / f["path"]).stat().st_size > 1000
        saved = json.loads((out / r["experiment"] / "results.json").read_text())
        assert {"config", "seeds", "versions", "device", "threads", "runs"} <= set(saved)
    html = (out / "report.html").read_text()
    assert html.count("data:image/") >= sum(len(r["figures"]) for r in results)


def _verdicts(results, names):
    return {(r["experiment"], c["id"]): c["verdict"] for r in results if r["experiment"] in names for c in r["claims"]}


@pytest.mark.slow
def test_quick_presets_end_to_end_and_same_verdicts_with_1_and_2_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # 2 processes x 2 threads on 2 cores: no spinning threads
    names = resolve_names([])  # both papers (zoo has its own slow test)
    reg = load_all()
    trained = [
        n for n in names if reg.get(n).trains and reg.get(n).n_seeds("quick") > 1 and "paper-a" not in reg.get(n).groups
    ]
    assert {"zhou-small-data", "zhou-expansiveness"} <= set(trained)
    two = run_many(names, "quick", tmp_path / "two", jobs=2, threads=2, progress=False)
    _check(two, tmp_path / "two")
    assert {r["threads"] for r in two if r["experiment"] in trained} == {2}
    one = run_many(trained, "quick", tmp_path / "one", jobs=2, threads=1, progress=False)
    assert {r["threads"] for r in one} == {1}
    v1, v2 = _verdicts(one, trained), _verdicts(two, trained)
    assert v1.keys() == v2.keys()
    flips = {k: (v1[k], v2[k]) for k in v1 if {v1[k], v2[k]} == {"pass", "fail"}}
    assert not flips, flips
    moved = {k: (v1[k], v2[k]) for k in v1 if v1[k] != v2[k]}
    print(f"verdicts identical for {len(v1) - len(moved)} of {len(v1)} claims; moved (1 thread, 2 threads): {moved}")
    key = ("zhou-small-data", "unconditioned-memorizes-less")
    assert v1[key] == v2[key] != "inconclusive", (v1[key], v2[key])
    # Paper B's main memorization ordering is decided at the quick budget
    small = {c["id"]: c["verdict"] for r in two if r["experiment"] == "zhou-small-data" for c in r["claims"]}
    assert small["unconditioned-memorizes-less"] != "inconclusive", small
    if os.environ.get("SMOOTHSCORE_KEEP_SLOW_RUN"):  # for regenerating the README table from this run
        import shutil

        shutil.copytree(tmp_path / "two", os.environ["SMOOTHSCORE_KEEP_SLOW_RUN"], dirs_exist_ok=True)
