"""Experiment framework and report: results.json contents, claims verdicts, self-contained HTML."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from smoothscore.errors import ConfigError  # noqa: E402
from smoothscore.experiments.base import experiment, experiments  # noqa: E402
from smoothscore.report import load_results  # noqa: E402
from smoothscore.runner import run_many  # noqa: E402

if "test-dummy" not in experiments:

    @experiment(
        "test-dummy",
        title="dummy",
        groups=("testgroup",),
        presets={"quick": {"n": 3, "boom": False}, "paper": {"n": 30, "boom": False}},
    )
    def _dummy(ctx):
        """A dummy experiment used by the tests."""
        if ctx.get("boom"):
            raise RuntimeError("experiment bug")
        ctx.metric("n_squared", ctx.config["n"] ** 2)
        ctx.claim("c1", "n is at least 2", ctx.config["n"], ">=", 2)
        ctx.claim("c2", "n is below 2", ctx.config["n"], "<", 2)
        ctx.claim("c3", "undecided", float("nan"), "<", 1)
        ctx.finding("f1", "a finding")
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, ctx.config["n"]])
        ctx.save_figure(fig, "line", "a line")


def test_run_writes_results_and_html(tmp_path):
    res = run_many(["test-dummy"], "quick", tmp_path, seed=7, device="cpu", progress=False, overrides={"n": 4})
    r = json.loads((tmp_path / "test-dummy" / "results.json").read_text())
    assert r == res[0]
    assert r["config"] == {"n": 4, "boom": False} and r["seed"] == 7 and r["device"] == "cpu"
    assert {"python", "torch", "numpy", "smoothscore"} <= set(r["versions"])
    assert r["metrics"]["n_squared"] == 16
    verdicts = {c["id"]: c["passed"] for c in r["claims"]}
    assert verdicts == {"c1": True, "c2": False, "c3": None}
    assert r["seeds"] == [7] and r["figures"][0]["path"] == "seed-7/line.png"
    assert (tmp_path / "test-dummy" / "seed-7" / "line.png").stat().st_size > 1000
    assert [c["verdict"] for c in r["claims"]] == ["pass", "fail", "inconclusive"]
    assert all(c["values"] == [c["value"]] for c in r["claims"][:2])
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html and "n is at least 2" in html and "FAIL" in html and "INCONCLUSIVE" in html
    assert load_results(tmp_path)[0]["experiment"] == "test-dummy"
    row = json.loads((tmp_path / "summary.json").read_text())["experiments"][0]
    assert (row["claims_passed"], row["claims_failed"], row["claims_inconclusive"]) == (1, 1, 1)
    assert row["inconclusive"] == ["c3"]


def test_experiment_bug_is_recorded_not_lost(tmp_path):
    res = run_many(["test-dummy"], "quick", tmp_path, progress=False, overrides={"boom": True})
    assert res[0]["status"] == "error" and "experiment bug" in res[0]["error"]
    assert "experiment bug" in (tmp_path / "report.html").read_text()


def test_claim_operators():
    from pathlib import Path

    from smoothscore.experiments.base import RunContext

    ctx = RunContext("x", "quick", Path("."), {})
    assert ctx.claim("a", "", 0.5, "<=", 0.5).passed is True
    assert ctx.claim("b", "", 0.5, ">", 0.5).passed is False
    assert ctx.claim("c", "", "chords", "==", "chords").passed is True
    assert ctx.claim("d", "", None, ">=", 1).passed is None
    with pytest.raises(ConfigError):
        ctx.claim("e", "", 1, "~", 1)
